import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createMediaInspectionActivities } from '../../src/activities/media-inspection.js';
import type { MediaInspectionResult } from '../../src/jobs/contracts.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { renderTestVideo } from '../fixtures/media.js';

const heicFixture = new URL('../fixtures/red-64x48.heic', import.meta.url);

describe('upload inspection', () => {
  let dir: string;
  let tools: MediaTools;
  let storage: LocalMediaStorage;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-inspection-'));
    const found = await findMediaTools({ maxConcurrent: 1, nice: 10 });
    assert.ok(found, 'ffmpeg ships with the npm dependencies');
    tools = found;
    storage = new LocalMediaStorage(dir, { publicUrl: 'http://api.test', secret: 'secret' });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  // A fuzzer's upload timed out after 15 s in CI: its ffprobe waited for the one media slot of a
  // 2-core worker behind the renders of earlier vlogs.
  it('reads an upload while renders hold every media slot of the worker', async () => {
    const key = `uploads/${randomUUID()}/clip.mp4`;
    const clip = await renderTestVideo(tools.ffmpeg, 1, { size: '320x240' });
    await storage.putStream(key, Readable.from([clip]), 'video/mp4');
    let releaseRender!: () => void;
    const render = tools.processes.run(
      undefined,
      () => new Promise<void>((resolve) => (releaseRender = resolve)),
    );
    try {
      assert.deepEqual(tools.processes.usage, { running: 1, waiting: 0 });
      const activities = createMediaInspectionActivities({
        mediaStorage: storage,
        mediaTools: tools,
      });
      const result = await new MockActivityEnvironment().run(
        (input) => activities.inspectStoredMedia(input),
        {
          files: [{ key, kind: 'video' as const }],
        },
      );
      assert.deepEqual(result, {
        inspected: true,
        files: [{ readable: true, width: 320, height: 240, durationSeconds: 1 }],
      });
      assert.deepEqual(
        tools.processes.usage,
        { running: 1, waiting: 0 },
        'the render kept its slot',
      );
    } finally {
      releaseRender();
      await render;
    }
  });

  // npm's ffprobe reads no HEIC photo: an iPhone's photo of any size passed the upload's limits.
  it('reads the size of a photo ffprobe cannot read, and says which file it cannot read at all', async () => {
    const heic = `uploads/${randomUUID()}/IMG_0002.HEIC`;
    const junk = `uploads/${randomUUID()}/notes.heic`;
    await storage.putStream(heic, Readable.from([await readFile(heicFixture)]), 'image/heic');
    await storage.putStream(junk, Readable.from([Buffer.from('not a photo')]), 'image/heic');
    const activities = createMediaInspectionActivities({
      mediaStorage: storage,
      mediaTools: tools,
    });
    const result: MediaInspectionResult = await new MockActivityEnvironment().run(
      (input) => activities.inspectStoredMedia(input),
      {
        files: [
          { key: heic, kind: 'image' as const },
          { key: junk, kind: 'image' as const },
        ],
      },
    );
    assert.ok(result.inspected);
    assert.deepEqual(result.files[0], {
      readable: true,
      width: 64,
      height: 48,
      durationSeconds: null,
    });
    assert.equal(result.files[1]?.readable, false);
  });
});
