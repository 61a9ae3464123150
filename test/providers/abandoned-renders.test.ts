import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { abandonedRenderMs, removeAbandonedRenders } from '../../src/providers/local-generator.js';
import { captureLogs } from '../support/logs.js';

describe('the folders of abandoned local renders', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  /** A render's folder with its input and part of its video, last written `ageMs` ago. */
  async function renderFolder(workDir: string, name: string, ageMs: number): Promise<string> {
    const dir = path.join(workDir, name);
    await mkdir(dir, { recursive: true });
    const written = new Date(Date.now() - ageMs);
    for (const file of ['input-00', 'video.mp4']) {
      await writeFile(path.join(dir, file), 'bytes');
      await utimes(path.join(dir, file), written, written);
    }
    await utimes(dir, written, written);
    return dir;
  }

  it('removes those nothing wrote to for ten minutes, and keeps a render still writing', async () => {
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-render-work-'));
    dirs.push(workDir);
    await renderFolder(workDir, 'renders-vlog-a-attempt-1', abandonedRenderMs + 60_000);
    await renderFolder(workDir, 'renders-vlog-b-attempt-2', 5_000);
    // An old folder whose video ffmpeg is still writing.
    const writing = await renderFolder(workDir, 'renders-vlog-c-attempt-1', 3_600_000);
    await writeFile(path.join(writing, 'video.mp4'), 'more bytes');
    const { logger, lines } = captureLogs();

    await removeAbandonedRenders(workDir, logger);

    assert.deepEqual((await readdir(workDir)).sort(), [
      'renders-vlog-b-attempt-2',
      'renders-vlog-c-attempt-1',
    ]);
    const removed = lines().filter(
      (line) => line['msg'] === 'removed the folder of an abandoned render',
    );
    assert.deepEqual(
      removed.map((line) => line['folder']),
      [path.join(workDir, 'renders-vlog-a-attempt-1')],
    );
  });

  it('does nothing where no render ever ran', async () => {
    const { logger, lines } = captureLogs();
    await removeAbandonedRenders(
      path.join(os.tmpdir(), `vlogflow-no-renders-${process.pid}`),
      logger,
    );
    assert.deepEqual(lines(), []);
  });
});
