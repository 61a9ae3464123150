// Progress streams over real sockets: what a HEAD of one answers, on every route that serves a
// stream, and that it holds nothing open.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import type { JobStatus } from '../../src/jobs/model.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { jobRecord, vlogInput } from '../support/jobs.js';
import { parseMetrics } from '../support/metrics.js';

describe('progress streams', () => {
  let h: Harness;
  let base: string;
  const owner = `streamer-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness();
    base = await h.api.listen();
  });
  after(() => h.stop());

  /** A job of the owner's in `status`, its row written directly (no workflow runs it). */
  async function storedJob(kind: 'ai' | 'vlog', status: JobStatus): Promise<string> {
    const job =
      kind === 'ai'
        ? jobRecord({
            id: `ai-${randomUUID()}`,
            kind: 'ai',
            type: 'SUBGOAL_GENERATION',
            ownerId: owner,
            input: { goal: 'Sail', maxItems: 3, language: 'en' },
          })
        : jobRecord({
            id: `vlog-${randomUUID()}`,
            kind: 'vlog',
            type: 'VLOG',
            ownerId: owner,
            input: vlogInput(),
          });
    await insertJob(h.db, job, status);
    return job.id;
  }

  const streamPath = (kind: 'ai' | 'vlog', id: string) =>
    kind === 'ai' ? `/api/ai/jobs/${id}/events` : `/api/vlogs/${id}/events`;

  const openStreams = async () => {
    const response = await h.api.app.inject({ method: 'GET', url: '/metrics' });
    return parseMetrics(response.body).value('vlogflow_sse_streams_open');
  };

  /** The URL of a signed link to the stream at `path`, which opens it without a token. */
  async function signedLink(path: string): Promise<string> {
    const link = await h.user(owner).post(`${path}/link`);
    assert.equal(link.statusCode, 201, link.body);
    return `${base}${link.json<{ url: string }>().url}`;
  }

  /** A request that fails the test, rather than hang it, when no answer comes. */
  const send = (url: string, method: 'GET' | 'HEAD', headers: Record<string, string>) =>
    fetch(url, { method, headers, signal: AbortSignal.timeout(5_000) });

  for (const [kind, status, withLink] of [
    ['vlog', 'queued', false],
    ['vlog', 'running', true],
    ['ai', 'running', false],
    ['ai', 'pending', true],
    ['ai', 'completed', false],
  ] as const) {
    const how = withLink ? 'through a signed link' : 'with a token';
    it(`answer a HEAD at once, as a GET, opening nothing: ${status} ${kind}, ${how}`, async () => {
      const id = await storedJob(kind, status);
      const path = streamPath(kind, id);
      const headers: Record<string, string> = withLink
        ? {}
        : { authorization: await h.user(owner).authorization() };
      const url = withLink ? await signedLink(path) : `${base}${path}`;
      const open = await openStreams();

      const head = await send(url, 'HEAD', headers);
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal(await openStreams(), open, 'a HEAD holds no stream open');

      const get = await send(url, 'GET', headers);
      assert.equal(get.status, 200);
      for (const name of ['content-type', 'cache-control', 'x-accel-buffering']) {
        assert.equal(head.headers.get(name), get.headers.get(name), name);
      }
      assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
      await get.body?.cancel();
      await eventually(openStreams, (now) => now === open, { what: 'the GET stream closed' });
    });
  }
});
