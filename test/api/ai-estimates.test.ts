import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import type { JobStatus } from '../../src/jobs/model.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';
import { jobRecord } from '../support/jobs.js';

interface AiJobView {
  status: string;
  createdAt: string;
  startedAt: string | null;
  estimatedCompletionAt: string | null;
}

// The harness runs no worker: the rows are written as the workflows would have, with the times
// that make a wait in line stand out from a run.
describe("an AI job's estimated completion", () => {
  let h: Harness;
  let planner: UserClient;
  const user = `planner-${randomUUID().slice(0, 8)}`;
  const type = 'ACTION_GENERATION';
  const runMs = 10_000;
  const now = Date.now();

  async function addJob(row: {
    status: JobStatus;
    createdAt: number;
    startedAt?: number;
    completedAt?: number;
    concurrencyKey?: string;
  }): Promise<string> {
    const job = jobRecord({
      id: `ai-${randomUUID()}`,
      kind: 'ai',
      type,
      ownerId: user,
      input: { goal: 'g', subGoal: 's', maxItems: 3, language: 'en' },
      createdAt: new Date(row.createdAt).toISOString(),
      concurrencyKey: row.concurrencyKey ?? null,
    });
    await insertJob(h.db, job, row.status);
    await h.db
      .updateTable('jobs')
      .set({
        started_at: row.startedAt === undefined ? null : new Date(row.startedAt),
        completed_at: row.completedAt === undefined ? null : new Date(row.completedAt),
      })
      .where('id', '=', job.id)
      .execute();
    return job.id;
  }

  async function view(id: string): Promise<AiJobView> {
    const response = await planner.get(`/api/ai/jobs/${id}`);
    assert.equal(response.statusCode, 200, response.body);
    return response.json<AiJobView>();
  }

  before(async () => {
    h = await startHarness();
    planner = h.user(user);
  });
  after(() => h.stop());

  it('counts from the start of the run, with the run time of completed jobs, and gives none while queued', async () => {
    // Completed jobs that each waited 50 minutes behind their key, then ran 10 s.
    for (let i = 0; i < 3; i += 1) {
      const startedAt = now - 3_600_000 + 50 * 60_000 + i * 1_000;
      await addJob({
        status: 'completed',
        createdAt: now - 3_600_000,
        startedAt,
        completedAt: startedAt + runMs,
        concurrencyKey: 'plan',
      });
    }
    const running = await addJob({
      status: 'processing',
      createdAt: now - 30 * 60_000,
      startedAt: now - 5_000,
      concurrencyKey: 'plan',
    });
    const queued = await addJob({
      status: 'queued',
      createdAt: now - 20 * 60_000,
      concurrencyKey: 'plan',
    });
    const pending = await addJob({ status: 'pending', createdAt: now });

    const runningView = await view(running);
    assert.equal(
      Date.parse(runningView.estimatedCompletionAt!) - Date.parse(runningView.startedAt!),
      runMs,
      'the run time after its start, not the wait in line after its acceptance',
    );
    assert.equal((await view(queued)).estimatedCompletionAt, null);
    const pendingView = await view(pending);
    assert.equal(
      Date.parse(pendingView.estimatedCompletionAt!) - Date.parse(pendingView.createdAt),
      runMs,
    );
  });
});
