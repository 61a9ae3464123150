import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import type { JobStatus } from '../../src/jobs/model.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';
import { jobRecord } from '../support/jobs.js';

interface Page {
  jobs: { id: string; type: string; status: string; createdAt: string }[];
  nextCursor: string | null;
}

const types = ['SUBGOAL_GENERATION', 'ACTION_GENERATION', 'TASK_GENERATION'] as const;

describe('AI job history', () => {
  let h: Harness;
  let historian: UserClient;
  const user = `historian-${randomUUID().slice(0, 8)}`;
  const base = Date.parse('2026-11-01T00:00:00.000Z');
  let counter = 0;

  /** An AI job row `minutes` after the base time; several share a timestamp, to test ties. */
  async function addJob(minutes: number, status: JobStatus = 'completed') {
    counter += 1;
    const job = jobRecord({
      id: `ai-${String(counter).padStart(4, '0')}-${randomUUID().slice(0, 4)}`,
      kind: 'ai',
      type: types[counter % 3],
      ownerId: user,
      input: { goal: `goal ${counter}`, maxItems: 3, language: 'en' },
      createdAt: new Date(base + minutes * 60_000).toISOString(),
    });
    await insertJob(h.db, job, status);
    return job.id;
  }

  async function page(query: string): Promise<Page> {
    const response = await historian.get(`/api/ai/jobs?${query}`);
    assert.equal(response.statusCode, 200, response.body);
    return response.json<Page>();
  }

  before(async () => {
    h = await startHarness();
    historian = h.user(user);
  });
  after(() => h.stop());

  it('pages newest first without skipping or repeating rows while new jobs arrive', async () => {
    const initial: string[] = [];
    for (let index = 0; index < 25; index += 1) {
      initial.push(await addJob(Math.floor(index / 3), index % 4 === 0 ? 'failed' : 'completed'));
    }
    const seen: Page['jobs'] = [];
    let cursor: string | null = null;
    let minutes = 1_000;
    do {
      const current: Page = await page(`limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...current.jobs);
      cursor = current.nextCursor;
      // Newer jobs arrive between pages; they belong before the first page, not in this walk.
      await addJob((minutes += 1), 'pending');
    } while (cursor);
    const ids = seen.map((job) => job.id);
    assert.equal(new Set(ids).size, ids.length, 'no row repeated');
    assert.deepEqual([...ids].sort(), [...initial].sort(), 'no row skipped');
    const order = seen.map((job) => `${job.createdAt} ${job.id}`);
    assert.deepEqual(order, [...order].sort().reverse(), 'newest first, ties by id');
  });

  it('filters by type, status and date range, and bounds the page size', async () => {
    const tasks = await page('type=TASK_GENERATION&limit=100');
    assert.ok(tasks.jobs.length > 0);
    assert.ok(tasks.jobs.every((job) => job.type === 'TASK_GENERATION'));
    const failed = await page('status=failed&limit=100');
    assert.equal(failed.jobs.length, 7);
    const range = await page(
      `createdFrom=${new Date(base + 2 * 60_000).toISOString()}&createdTo=${new Date(base + 4 * 60_000).toISOString()}&limit=100`,
    );
    assert.equal(range.jobs.length, 6);
    assert.ok(
      range.jobs.every(
        (job) =>
          Date.parse(job.createdAt) >= base + 2 * 60_000 &&
          Date.parse(job.createdAt) < base + 4 * 60_000,
      ),
    );
    const tooBig = await historian.get('/api/ai/jobs?limit=101');
    assert.equal(tooBig.statusCode, 400);
    const badType = await historian.get('/api/ai/jobs?type=POEMS');
    assert.equal(badType.statusCode, 400);
    assert.match(badType.body, /querystring\.type/);
  });
});
