// A signed stream link is a credential for one thing only: the progress stream of the job it
// was made for, on the route of that job's kind. Anywhere else it opens nothing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import { startHarness, type Harness } from '../support/harness.js';
import { jobRecord } from '../support/jobs.js';

describe('stream links', () => {
  let h: Harness;
  const owner = `streamer-${randomUUID().slice(0, 8)}`;
  const ai = jobRecord({
    id: `ai-${randomUUID()}`,
    kind: 'ai',
    type: 'SUBGOAL_GENERATION',
    ownerId: owner,
    input: { goal: 'Sail', maxItems: 3, language: 'en' },
  });
  const probe = jobRecord({ ownerId: owner });
  let access = '';

  before(async () => {
    h = await startHarness();
    for (const job of [ai, probe]) await insertJob(h.db, job, 'failed');
    const link = await h.user(owner).post(`/api/ai/jobs/${ai.id}/events/link`);
    assert.equal(link.statusCode, 201, link.body);
    access = new URL(link.json<{ url: string }>().url, 'http://api.test').searchParams.get(
      'access',
    )!;
  });
  after(() => h.stop());

  const without = (url: string) => h.api.app.inject({ method: 'GET', url });

  it('opens the stream it was made for (the control)', async () => {
    const response = await without(`/api/ai/jobs/${ai.id}/events?access=${access}`);
    assert.equal(response.statusCode, 200, response.body);
    assert.match(response.body, /event: end/);
  });

  for (const [what, url] of [
    ["the same job on another kind's stream route", () => `/api/vlogs/${ai.id}/events`],
    ["another job's stream", () => `/api/ai/jobs/${probe.id}/events`],
    ['the job itself', () => `/api/ai/jobs/${ai.id}`],
    ['the job in the combined list', () => `/api/jobs/${ai.id}`],
    ['a new link', () => `/api/ai/jobs/${ai.id}/events/link`],
  ] as const) {
    it(`opens nothing else, with 403 STREAM_LINK_INVALID: ${what}`, async () => {
      const method = url().endsWith('/link') ? 'POST' : 'GET';
      const response = await h.api.app.inject({ method, url: `${url()}?access=${access}` });
      assert.equal(response.statusCode, 403, response.body);
      assert.equal(response.json<{ error: { code: string } }>().error.code, 'STREAM_LINK_INVALID');
    });
  }
});
