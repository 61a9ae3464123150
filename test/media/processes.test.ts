import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MediaProcessPool } from '../../src/media/processes.js';
import {
  findMediaTools,
  MediaToolInterrupted,
  probeMedia,
  runFfmpeg,
  type MediaTools,
} from '../../src/media/tools.js';
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

/** The process group of a running process, from /proc/<pid>/stat (field 5). */
async function processGroupOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** The ffmpeg processes running in `cwd`. */
async function ffmpegIn(cwd: string): Promise<{ pid: number; command: string }[]> {
  return (await processesWorkingIn(cwd)).filter((process) => process.command.endsWith('ffmpeg'));
}

/** The heap in use after full collections (gc exposed at run time: the runner passes no flag). */
function heapAfterGc(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
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
    try {
      assert.deepEqual(tools.processes.usage, { running: 2, waiting: 1 });
      // Only an ffprobe of this clip: other test files run ffprobe from the same directory.
      const probes = (await processesWorkingIn(process.cwd())).filter(
        ({ command, args }) => command === tools.ffprobe && args.includes(clip),
      );
      assert.deepEqual(probes, [], 'no ffprobe runs while the probe waits');
    } finally {
      // Released even when an assertion failed, so the pool's slots are free for the next test.
      for (const hold of held) hold.resolve();
      await Promise.all(holders);
    }
    const probe = await probing;
    assert.equal(probe.durationSeconds !== null && probe.durationSeconds > 0, true);
    assert.deepEqual(tools.processes.usage, { running: 0, waiting: 0 });
  });

  it('a render runs in a process group of its own, and a signal from elsewhere ends it as an interruption naming the signal', async () => {
    const cases = [
      { target: 'ffmpeg', signal: 'SIGKILL', stoppedBy: 'signal SIGKILL' },
      // ffmpeg catches SIGTERM (and SIGINT): it stops and exits 255.
      {
        target: 'ffmpeg',
        signal: 'SIGTERM',
        stoppedBy: 'a signal (SIGINT or SIGTERM, exit code 255)',
      },
      // Its supervisor passes the signal on and says so.
      { target: 'supervisor', signal: 'SIGINT', stoppedBy: 'signal SIGINT' },
    ] as const;
    for (const { target, signal, stoppedBy } of cases) {
      const cwd = path.join(dir, `stopped-${target}-${signal}`);
      await mkdir(cwd);
      const supervisors: number[] = [];
      let reports = 0;
      // Aborted only when an assertion fails first, so no render outlives the test.
      const controller = new AbortController();
      const run = runFfmpeg(tools, idleRender, {
        totalSeconds: 600,
        cwd,
        signal: controller.signal,
        onProgress: () => (reports += 1),
        onSpawn: (pid) => supervisors.push(pid),
      }).catch((error: unknown) => error);
      try {
        // Once ffmpeg reports progress it has set up its signal handlers.
        await eventually(
          async () => reports,
          (count) => count > 0,
          { what: 'ffmpeg rendering', timeoutMs: 15_000 },
        );
        const [ffmpeg] = await ffmpegIn(cwd);
        // A terminal's Ctrl-C goes to this process' group, never to the render's.
        assert.equal(await processGroupOf(ffmpeg!.pid), supervisors[0]);
        assert.notEqual(await processGroupOf(ffmpeg!.pid), await processGroupOf(process.pid));
        process.kill(target === 'ffmpeg' ? ffmpeg!.pid : supervisors[0]!, signal);
        const error = await run;
        assert.ok(error instanceof MediaToolInterrupted, `${signal}: ${String(error)}`);
        assert.equal(error.message, `render interrupted: ffmpeg was stopped by ${stoppedBy}`);
        assert.deepEqual(await ffmpegIn(cwd), []);
      } finally {
        controller.abort();
        await run;
      }
    }
  });

  it('keeps nothing of a run once it is over, cancelled or not', async () => {
    // A worker's one pool runs every ffmpeg and ffprobe for weeks: joined with the pool's stop
    // by AbortSignal.any, each run left about 60 bytes behind on Node 20 (6 MB per 100,000).
    const pool = new MediaProcessPool({ maxConcurrent: 2, nice: 10 });
    const runs = async (count: number) => {
      for (let index = 0; index < count; index += 1) {
        const activity = new AbortController();
        await pool.run(
          activity.signal,
          (signal) =>
            new Promise<void>((resolve) => {
              // As a tool does: it listens to its run's signal until it exits.
              const exited = () => {
                signal.removeEventListener('abort', exited);
                resolve();
              };
              signal.addEventListener('abort', exited, { once: true });
              if (index % 2 === 0) activity.abort(new Error('the activity was cancelled'));
              else setImmediate(exited);
            }),
        );
      }
    };
    await runs(1_000);
    const before = heapAfterGc();
    await runs(100_000);
    const grown = heapAfterGc() - before;
    assert.ok(grown < 1_500_000, `100,000 runs left ${grown} bytes in the heap`);
    assert.deepEqual(pool.usage, { running: 0, waiting: 0 });
  });

  it('stopping the pool ends its renders and probes at once as interruptions, and refuses new ones', async () => {
    const clip = path.join(dir, 'stopped-clip.mp4');
    await writeFile(clip, await renderTestVideo(tools.ffmpeg, 1));
    const stopping: MediaTools = {
      ...tools,
      processes: new MediaProcessPool({ maxConcurrent: 1, nice: 7 }),
    };
    const cwd = path.join(dir, 'stopped-pool');
    await mkdir(cwd);
    const render = runFfmpeg(stopping, idleRender, {
      totalSeconds: 600,
      cwd,
      signal: new AbortController().signal,
      onProgress: () => undefined,
    }).catch((error: unknown) => error);
    await eventually(
      () => ffmpegIn(cwd),
      (found) => found.length === 1,
      { what: 'ffmpeg rendering', timeoutMs: 15_000 },
    );
    const waitingProbe = probeMedia(stopping, clip, 'video').catch((error: unknown) => error);
    try {
      assert.deepEqual(stopping.processes.usage, { running: 1, waiting: 1 });

      stopping.processes.stop();
      const shutdown = 'was stopped by this worker shutting down';
      const rendered = await render;
      assert.ok(rendered instanceof MediaToolInterrupted, String(rendered));
      assert.equal(rendered.message, `render interrupted: ffmpeg ${shutdown}`);
      assert.deepEqual(await ffmpegIn(cwd), [], 'ffmpeg exited before the render rejected');
      const probed = await waitingProbe;
      assert.ok(probed instanceof MediaToolInterrupted, String(probed));
      assert.equal(probed.message, `probe interrupted: ffprobe ${shutdown}`);
      await assert.rejects(probeMedia(stopping, clip, 'video'), {
        message: `probe interrupted: ffprobe ${shutdown}`,
      });
      assert.deepEqual(stopping.processes.usage, { running: 0, waiting: 0 });
    } finally {
      stopping.processes.stop();
      await Promise.all([render, waitingProbe]);
    }
  });
});
