import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createMediaInspectionActivities } from '../../src/activities/media-inspection.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { renderTestVideo } from '../fixtures/media.js';

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
});
