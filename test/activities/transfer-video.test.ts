import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createVlogActivities } from '../../src/kinds/vlog/activities/index.js';
import { transferPartBytes } from '../../src/kinds/vlog/activities/transfer.js';
import { loadConfig } from '../../src/config.js';
import { vlogVideoKey } from '../../src/jobs/storage-keys.js';
import { createProviders } from '../../src/providers/index.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { mediaUri } from '../../src/storage/object-storage.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

// The transfer moves a generated video: afterwards it is stored once, at its delivery key, and
// a retry of a transfer whose result was lost finds it there instead of failing.
describe('transferVideo', () => {
  let test: TestDatabase;
  const storage = new LocalMediaStorage(path.join(os.tmpdir(), `vlogflow-move-${randomUUID()}`), {
    publicUrl: 'http://api.test',
    secret: 's',
  });

  before(async () => {
    test = await createTestDatabase();
  });
  after(async () => {
    await test.drop();
  });

  function activities() {
    return createVlogActivities({
      db: test.db,
      mediaStorage: storage,
      providers: createProviders(loadConfig({}), { mediaStorage: storage, mediaTools: null }),
      mediaTools: null,
    });
  }

  it('leaves exactly one copy, and a repeated transfer succeeds without the source', async () => {
    const jobId = `vlog_${randomUUID()}`;
    const sourceKey = `renders/${jobId}/attempt-1/video.mp4`;
    const bytes = Buffer.alloc(2 * transferPartBytes + 1_000, 7);
    await storage.putStream(sourceKey, Readable.from([bytes]), 'video/mp4');
    assert.equal((await storage.head(sourceKey))?.size, bytes.length, 'the render is stored');
    const input = {
      jobId,
      sourceUri: mediaUri(sourceKey),
      destinationKey: vlogVideoKey(jobId),
      mimeType: 'video/mp4',
    };
    const acts = activities();
    const transferVideo = (given: typeof input) => acts.transferVideo(given);

    const first = await new MockActivityEnvironment().run(transferVideo, input);
    assert.deepEqual(first, { bytes: bytes.length, parts: 3, resumedParts: 0 });
    assert.equal(await storage.head(sourceKey), null, 'the generated copy is still stored');
    assert.equal((await storage.head(input.destinationKey))?.size, bytes.length);

    const again = await new MockActivityEnvironment().run(transferVideo, input);
    assert.deepEqual(again, { bytes: bytes.length, parts: 3, resumedParts: 3 });
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.getStream(input.destinationKey))
      chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(bytes));
  });

  it('fails for good when neither the generated nor a delivered video exists', async () => {
    const jobId = `vlog_${randomUUID()}`;
    const acts = activities();
    await assert.rejects(
      new MockActivityEnvironment().run((given) => acts.transferVideo(given), {
        jobId,
        sourceUri: mediaUri(`renders/${jobId}/attempt-1/video.mp4`),
        destinationKey: vlogVideoKey(jobId),
        mimeType: 'video/mp4',
      }),
      (error) =>
        error instanceof ApplicationFailure &&
        error.type === 'TRANSFER_FAILED' &&
        error.nonRetryable,
    );
  });
});
