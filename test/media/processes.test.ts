import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MediaProcessPool } from '../../src/media/processes.js';
import { findMediaTools, probeMedia, runFfmpeg, type MediaTools } from '../../src/media/tools.js';
import { renderTestVideo } from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { processesWorkingIn } from '../support/processes.js';

/** An ffmpeg run that costs almost no CPU and lasts until it is aborted. */
const idleRender = ['-re', '-f', 'lavfi', '-i', 'color=c=black:s=16x16:r=5', '-f', 'null', '-'];

/** The nice value of a running process, from /proc/<pid>/stat (field 19). */
async function niceOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('media processes', () => {
  let dir: string;
  let tools: MediaTools;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-processes-'));
    const found = await findMediaTools({ maxConcurrent: 2, nice: 7 });
    assert.ok(found, 'ffmpeg ships with the npm dependencies');
    tools = found;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('runs in order of arrival, never more at once than the bound', async () => {
    const pool = new MediaProcessPool({ maxConcurrent: 2, nice: 10 });
    const started: number[] = [];
    const finish = Array.from({ length: 6 }, deferred);
    let running = 0;
    let mostAtOnce = 0;
    const runs = finish.map((done, index) =>
      pool.run(undefined, async () => {
        started.push(index);
        running += 1;
        mostAtOnce = Math.max(mostAtOnce, running);
        await done.promise;
        running -= 1;
      }),
    );
    await eventually(
      async () => started.length,
      (count) => count === 2,
      { what: 'two started' },
    );
    assert.deepEqual(pool.usage, { running: 2, waiting: 4 });
    // Finishing out of order frees slots that go to the waiters in the order they came.
    for (const index of [1, 0, 3, 2, 5, 4]) finish[index]!.resolve();
    await Promise.all(runs);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.equal(mostAtOnce, 2);
    assert.deepEqual(pool.usage, { running: 0, waiting: 0 });
  });

  it('ffmpeg waits for a slot, runs at the configured nice value, and an abort while waiting rejects at once and frees nothing', async () => {
    const folders = [0, 1, 2, 3].map((index) => path.join(dir, `render-${index}`));
    // Every folder first: the renders must ask for slots in this order, not in the order their
    // folders happen to be made.
    await Promise.all(folders.map((cwd) => mkdir(cwd)));
    const renders = folders.map((cwd) => {
      const controller = new AbortController();
      const spawned: number[] = [];
      const run = runFfmpeg(tools, idleRender, {
        totalSeconds: 600,
        cwd,
        signal: controller.signal,
        onProgress: () => undefined,
        onSpawn: (pid) => spawned.push(pid),
      });
      return { cwd, controller, spawned, run: run.catch((error: unknown) => error) };
    });
    const ffmpegIn = async (cwd: string) =>
      (await processesWorkingIn(cwd)).filter((process) => process.command.endsWith('ffmpeg'));
    const runningCount = async () =>
      (await Promise.all(renders.map(({ cwd }) => ffmpegIn(cwd)))).filter((found) => found.length)
        .length;
    try {
      await eventually(
        async () => (await ffmpegIn(renders[0]!.cwd)).concat(await ffmpegIn(renders[1]!.cwd)),
        (found) => found.length === 2,
        { what: 'the first two ffmpeg running', timeoutMs: 15_000 },
      );
      assert.deepEqual(tools.processes.usage, { running: 2, waiting: 2 });
      assert.equal(await runningCount(), 2);
      assert.deepEqual(
        renders.map(({ spawned }) => spawned.length),
        [1, 1, 0, 0],
      );
      for (const { pid } of await ffmpegIn(renders[0]!.cwd)) assert.equal(await niceOf(pid), 7);

      const reason = new Error('cancelled while waiting');
      const abortedAt = performance.now();
      renders[3]!.controller.abort(reason);
      assert.equal(await renders[3]!.run, reason);
      assert.ok(performance.now() - abortedAt < 100, 'the abort rejected at once');
      assert.deepEqual(tools.processes.usage, { running: 2, waiting: 1 });
      assert.equal(renders[3]!.spawned.length, 0);
      assert.equal(renders[2]!.spawned.length, 0, 'the abandoned place freed no slot');

      renders[0]!.controller.abort();
      await renders[0]!.run;
      const [third] = await eventually(
        () => ffmpegIn(renders[2]!.cwd),
        (found) => found.length === 1,
        { what: 'the waiting render started', timeoutMs: 15_000 },
      );
      assert.equal(await niceOf(third!.pid), 7);
      assert.ok((await runningCount()) <= 2);
      assert.deepEqual(tools.processes.usage, { running: 2, waiting: 0 });
    } finally {
      for (const { controller } of renders) controller.abort();
      await Promise.all(renders.map(({ run }) => run));
    }
    assert.deepEqual(tools.processes.usage, { running: 0, waiting: 0 });
  });

  it('a waiting probe starts no process, so its timeout has not started, until a slot frees', async () => {
    const clip = path.join(dir, 'clip.mp4');
    await writeFile(clip, await renderTestVideo(tools.ffmpeg, 1));
    const held = [deferred(), deferred()];
    const holders = held.map((hold) => tools.processes.run(undefined, () => hold.promise));
    const probing = probeMedia(tools, clip, 'video');
    assert.deepEqual(tools.processes.usage, { running: 2, waiting: 1 });
    const probes = (await processesWorkingIn(process.cwd())).filter(
      ({ command }) => command === tools.ffprobe,
    );
    assert.deepEqual(probes, [], 'no ffprobe runs while the probe waits');
    for (const hold of held) hold.resolve();
    await Promise.all(holders);
    const probe = await probing;
    assert.equal(probe.durationSeconds !== null && probe.durationSeconds > 0, true);
    assert.deepEqual(tools.processes.usage, { running: 0, waiting: 0 });
  });
});
