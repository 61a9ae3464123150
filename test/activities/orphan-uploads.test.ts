// The uploads an API left when it died mid-request: the media sweep deletes those no job uses
// and none can any more, and keeps those a job uses or may still use.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { sql } from 'kysely';
import { createMediaRetentionActivities } from '../../src/activities/media-retention.js';
import { insertJob } from '../../src/db/jobs.js';
import { claimUploadBatch, recordUploadBatch } from '../../src/db/upload-batches.js';
import type {
  DeleteOrphanUploadsInput,
  DeleteOrphanUploadsResult,
} from '../../src/jobs/contracts.js';
import type { Providers } from '../../src/providers/index.js';
import { uploadFolder } from '../../src/kinds/vlog/upload-rules.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, vlogInput } from '../support/jobs.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

const hourMs = 3_600_000;

describe('deleteOrphanUploads', () => {
  const temporal = testTemporal();
  let database: TestDatabase;
  let dir: string;
  let storage: LocalMediaStorage;
  const started: string[] = [];

  before(async () => {
    database = await createTestDatabase();
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-orphans-'));
    storage = new LocalMediaStorage(dir, { publicUrl: 'http://api.test', secret: 'secret' });
  });
  after(async () => {
    for (const id of started) {
      await temporal.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await temporal.close();
    await database.drop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const run = (input: DeleteOrphanUploadsInput): Promise<DeleteOrphanUploadsResult> => {
    const activities = createMediaRetentionActivities({
      db: database.db,
      mediaStorage: storage,
      providers: {} as Providers,
      temporalClient: temporal.client,
    });
    return new MockActivityEnvironment().run(
      (given: DeleteOrphanUploadsInput) => activities.deleteOrphanUploads(given),
      input,
    );
  };

  /** An upload's folder as an API leaves it: recorded, a file stored, one cut off mid-write. */
  async function upload(ageMs: number): Promise<{ batchId: string; key: string }> {
    const batchId = randomUUID();
    await recordUploadBatch(database.db, { batchId, ownerId: 'alice' });
    await sql`update upload_batches set created_at = now() - ${ageMs} * interval '1 millisecond'
      where batch_id = ${batchId}`.execute(database.db);
    const key = `${uploadFolder(batchId)}00-a.jpg`;
    await storage.putStream(key, Readable.from([Buffer.from('jpeg')]), 'image/jpeg');
    await writeFile(
      path.join(dir, `${uploadFolder(batchId)}01-b.mp4.${randomUUID()}.partial`),
      'half',
    );
    return { batchId, key };
  }

  const stored = async (batchId: string) =>
    readdir(path.join(dir, uploadFolder(batchId))).catch(() => null);

  const recorded = async () =>
    (await database.db.selectFrom('upload_batches').select('batch_id').execute())
      .map((row) => row.batch_id)
      .sort();

  it('deletes what no job uses or can use, keeps what one does or may, and forgets what is settled', async () => {
    // Cut off before it was a job: no job was named.
    const neverClaimed = await upload(2 * hourMs);
    // Named a job, then the API died before the start: no row, no workflow.
    const claimedNeverStarted = await upload(2 * hourMs);
    await claimUploadBatch(database.db, claimedNeverStarted.batchId, `vlog-${randomUUID()}`);
    // Named a job whose workflow started; its first activity has not written the row yet.
    const starting = await upload(2 * hourMs);
    const startingJob = `vlog-${randomUUID()}`;
    await claimUploadBatch(database.db, starting.batchId, startingJob);
    await temporal.client.workflow.start('vlogJob', {
      taskQueue: uniqueTaskQueue('nobody-polls'),
      workflowId: startingJob,
      args: [],
    });
    started.push(startingJob);
    // A vlog of it was recorded, and the API died before it forgot the folder.
    const made = await upload(2 * hourMs);
    const madeJob = `vlog-${randomUUID()}`;
    await claimUploadBatch(database.db, made.batchId, madeJob);
    const media = [
      {
        key: made.key,
        name: 'a.jpg',
        contentType: 'image/jpeg',
        kind: 'image' as const,
        size: 4,
        sha256: 'e'.repeat(64),
      },
    ];
    await insertJob(
      database.db,
      jobRecord({ id: madeJob, kind: 'vlog', type: 'VLOG', input: vlogInput({ media }) }),
      'analyzing',
    );
    // A replay of an Idempotency-Key: the key's job exists, with the first request's files.
    const replay = await upload(2 * hourMs);
    await claimUploadBatch(database.db, replay.batchId, madeJob);
    // Still arriving, for all the sweep knows.
    const young = await upload(0);

    const result = await run({ olderThanMs: hourMs, limit: 10, afterBatchId: null });

    assert.equal(result.checked, 5);
    assert.equal(result.deletedBatches, 3);
    for (const gone of [neverClaimed, claimedNeverStarted, replay]) {
      assert.equal(await stored(gone.batchId), null, `${gone.batchId} left behind`);
    }
    for (const kept of [starting, made, young]) {
      assert.ok(await storage.head(kept.key), `${kept.batchId} deleted`);
    }
    // The vlog's folder is its own now (its retention deletes it); the starting one is
    // checked again by the next run, the young one once it is old.
    assert.deepEqual(await recorded(), [starting.batchId, young.batchId].sort());
  });

  it('goes through the folders in order of id, from where the last call stopped', async () => {
    await database.db.deleteFrom('upload_batches').execute();
    const batches = await Promise.all([upload(2 * hourMs), upload(2 * hourMs), upload(2 * hourMs)]);
    const ids = batches.map((batch) => batch.batchId).sort();
    const first = await run({ olderThanMs: hourMs, limit: 2, afterBatchId: null });
    assert.deepEqual(first, { checked: 2, deletedBatches: 2, lastBatchId: ids[1] });
    const second = await run({ olderThanMs: hourMs, limit: 2, afterBatchId: first.lastBatchId });
    assert.deepEqual(second, { checked: 1, deletedBatches: 1, lastBatchId: ids[2] });
    assert.deepEqual(await recorded(), []);
  });
});
