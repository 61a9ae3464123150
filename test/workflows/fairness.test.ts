// Fairness: the API starts every job with its owner's fairness key, which its activities
// inherit, and the dev server runs the fair matcher (temporal/dev-server.ts). On a worker with
// one activity slot, another user's job must not wait behind one user's whole backlog.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config.js';
import { createProviders } from '../../src/providers/index.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { eventually } from '../support/eventually.js';
import { testEnv } from '../support/env.js';
import { startHarness, type Harness } from '../support/harness.js';

const workflowsPath = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../src/workflows/index.ts',
);

describe('fairness between users', () => {
  let h: Harness;
  before(async () => {
    // No worker yet: the jobs queue up first, as under load.
    h = await startHarness({ env: { USER_MAX_JOBS_IN_FLIGHT: '100' } });
  });
  after(async () => {
    await h.stop();
  });

  it("runs another user's job before one user's backlog drains", async () => {
    const backlog = 12;
    const probe = { steps: 2, stepDelayMs: 0 };
    const alice = h.user(`alice-${randomUUID()}`);
    const bob = h.user(`bob-${randomUUID()}`);
    const aliceJobs: string[] = [];
    for (let i = 0; i < backlog; i += 1) aliceJobs.push((await alice.startJob('probe', probe)).id);
    const bobJob = (await bob.startJob('probe', probe)).id;

    const mediaStorage = new LocalMediaStorage(
      path.join(os.tmpdir(), `vlogflow-media-${randomUUID()}`),
      { publicUrl: 'http://127.0.0.1', secret: 'test' },
    );
    const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
    const worker = await Worker.create({
      connection,
      namespace: testEnv.temporalNamespace,
      taskQueue: h.taskQueue,
      workflowsPath,
      activities: createActivities({
        db: h.db,
        mediaStorage,
        providers: createProviders(loadConfig({}), { mediaStorage, mediaTools: null }),
        mediaTools: null,
      }),
      // One step at a time: every job's activities wait in the server's backlog for it.
      maxConcurrentActivityTaskExecutions: 1,
      activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 1 },
      shutdownGraceTime: '1s',
    });
    const finished = await worker.runUntil(
      eventually(
        async () => {
          const rows = await h.db
            .selectFrom('jobs')
            .select(['id', 'status', 'completed_at'])
            .where('id', 'in', [...aliceJobs, bobJob])
            .execute();
          return rows;
        },
        (rows) => rows.every((row) => row.status === 'completed'),
        { what: 'every job completed', timeoutMs: 120_000, intervalMs: 200 },
      ),
    );
    await connection.close();

    const order = finished
      .sort((a, b) => a.completed_at!.getTime() - b.completed_at!.getTime())
      .map((row) => row.id);
    const bobsPlace = order.indexOf(bobJob);
    // In arrival order (no fairness), the backlog's steps and Bob's interleave to the end, and
    // Bob's job is among the last to complete.
    assert.ok(
      bobsPlace < backlog / 2,
      `Bob's job completed in place ${bobsPlace + 1} of ${order.length}, behind Alice's backlog`,
    );
  });
});
