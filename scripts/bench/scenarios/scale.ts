// `npm run bench -- scale`: thousands of vlogs of one user waiting on a slow Veo, on a stack of
// the scenario's own (its load must not reach the other scenarios). Fake Veo keeps every
// generation running for `--generation-seconds`; VEO_MAX_CONCURRENT_OPERATIONS and the
// video-generation queue's rate (QUEUE_VIDEO_GENERATION_RATE_PER_SECOND) are set low, so most
// vlogs wait for the provider. Each vlog is a real upload (a 64×64 JPEG, a few hundred bytes:
// the API takes no stored media, and the smallest photo keeps the load on the waiting). The
// worker serves every queue but the upload inspection's: with no worker there, the API stores
// uploads with their limits unchecked, as it does wherever nobody runs ffprobe, instead of
// holding each upload for an ffprobe on a worker that runs one at a time (the upload scenario
// measures uploads).
//
// Figures, side by side in one run: a fresh AI job and a fresh vlog of another user,
// submit→completed with the vlogs waiting ÷ the same idle before they were submitted; the
// worker's peak RSS ÷ its RSS idle (target: at most 300 MB); the most Veo requests fake Veo saw
// in any second (less half an interval) and any minute ÷ the configured rate. Notes say where
// the fresh AI job spent its time (its history), what the worker's main thread held (its
// metrics), and what kept the machine busy while every vlog waited (CPU, the worker's tasks
// by type).
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { taskQueueDomains } from '../../../src/capacity/task-queues.js';
import { findMediaTools } from '../../../src/media/tools.js';
import { jobStatuses } from '../../../src/jobs/model.js';
import { multipartBody, renderTestPhoto, renderTestVideo } from '../../../test/fixtures/media.js';
import { freePort } from '../../../test/support/ports.js';
import { inParallel, timed, type Scenario } from '../scenario.js';
import type { BenchStack } from '../stack.js';
import { printFigure, printNote } from '../stats.js';

const bulkUser = 'bench-scale-bulk';
const freshUser = 'bench-scale-fresh';
const mb = 2 ** 20;

/**
 * A process's resident set in bytes (VmRSS). Sampled rather than read as the high-water mark
 * (VmHWM), which would count the worker's start-up.
 */
async function residentSet(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

export const scaleScenario: Scenario = {
  name: 'scale',
  summary:
    '10,000 vlogs waiting on a slow Veo: a fresh job of another user, worker RSS, the rate Veo sees',
  async run({ size, smoke, ownStack }) {
    const vlogs = size('vlogs', 10_000, 50);
    const submitters = size('submitters', 16, 4);
    const generationSeconds = size('generation-seconds', 60, 2);
    const operations = size('veo-operations', 10, 3);
    const ratePerSecond = size('veo-rate', 1, 2);
    // On a busy two-core machine the worker brings 10,000 vlogs to Veo in about an hour.
    const settleMinutes = size('settle-minutes', 60, 2);
    const busySeconds = size('busy-seconds', 30, 5);

    const tools = await findMediaTools();
    if (!tools) throw new Error('No ffmpeg found');
    const metricsPort = await freePort();
    const stack = await ownStack({
      veo: true,
      builtWorker: true,
      env: {
        WORKER_QUEUES: taskQueueDomains.filter((domain) => domain !== 'inspection').join(','),
        METRICS_PORT: String(metricsPort),
        VEO_MAX_CONCURRENT_OPERATIONS: String(operations),
        QUEUE_VIDEO_GENERATION_RATE_PER_SECOND: String(ratePerSecond),
        // Under --smoke the waits shrink with the generations, so the scenario takes seconds.
        ...(smoke && { VIDEO_POLL_INTERVAL_MS: '500', PROVIDER_QUOTA_RECHECK_MS: '500' }),
      },
    });
    try {
      stack.google.scenario.generationMs = generationSeconds * 1000;
      // describeVideo measures the delivered video and grabs its thumbnail: it must be a video.
      stack.google.scenario.videoContent = await renderTestVideo(tools.ffmpeg, 4);
      const photo = await renderTestPhoto(tools.ffmpeg, 'jpg', { size: '64x64' });
      const form = (title: string) =>
        multipartBody({ title, durationSeconds: '4' }, [
          { field: 'media', filename: 'photo.jpg', contentType: 'image/jpeg', bytes: photo },
        ]);
      const worker = stack.workers[0]!.child.pid!;
      printNote(
        `${vlogs} vlogs of one user (a ${photo.length}-byte JPEG each, ${submitters} uploads at a time); ` +
          `Veo generations take ${generationSeconds} s, at most ${operations} at once, ` +
          `video-generation queue rate ${ratePerSecond}/s`,
      );

      // Another user's jobs, one at a time: AI jobs (the median of three), then a vlog.
      const freshJobs = async (phase: string) => {
        const ai: { ms: number; id: string }[] = [];
        for (let job = 0; job < 3; job += 1) {
          const id = await stack.submitAi(freshUser);
          ai.push({ ms: await timed(() => stack.result(id)), id });
        }
        const middle = ai.sort((a, b) => a.ms - b.ms)[1]!;
        printNote(
          `${phase}: the median fresh AI job (${middle.ms.toFixed(0)} ms) ${await whereItWaited(stack, middle.id)}`,
        );
        return {
          ai: middle.ms,
          vlog: await timed(async () =>
            stack.result(
              await submitVlog(stack, freshUser, form('Fresh'), `fresh-${phase}`),
              900_000,
            ),
          ),
        };
      };
      await stack.result(await stack.submitAi(freshUser));
      const idle = await freshJobs('idle');
      const idleRss = await residentSet(worker);
      printNote(`idle: ${await workerHeap(metricsPort)}`);

      let peakRss = idleRss;
      // Where the peak came, and what the main thread held then: the rest is the workflow
      // thread and native memory.
      let stage = 'submitting';
      let atPeak = '';
      let reported = idleRss;
      const sampler = setInterval(() => {
        void residentSet(worker).then(
          (rss) => {
            peakRss = Math.max(peakRss, rss);
            if (rss < reported + 4 * mb) return;
            reported = rss;
            const during = stage;
            void workerHeap(metricsPort).then(
              (heap) => (atPeak = `while ${during}: ${heap}`),
              () => undefined,
            );
          },
          () => undefined,
        );
      }, 500);
      try {
        const resent = { count: 0 };
        const submitting = await timed(() =>
          inParallel(vlogs, submitters, async (index) => {
            await submitVlog(stack, bulkUser, form(`Bulk ${index}`), `bulk-${index}`, resent);
            if ((index + 1) % 1_000 === 0) printNote(`${index + 1} vlogs submitted`);
          }),
        );
        printNote(
          `${vlogs} vlogs submitted in ${(submitting / 1000).toFixed(1)} s (${((vlogs * 1000) / submitting).toFixed(1)}/s; ${resent.count} requests sent again)`,
        );
        stage = 'bringing the vlogs to Veo';
        const settling = await timed(() => untilAllWaiting(stack, vlogs, settleMinutes));
        stage = 'every vlog waiting';
        printNote(
          `every vlog waiting on Veo (generating) ${(settling / 1000).toFixed(1)} s after the last submission`,
        );
        printNote(await busyWhileWaiting(worker, metricsPort, busySeconds * 1000));
        const loaded = await freshJobs('loaded');
        peakRss = Math.max(peakRss, await residentSet(worker));
        printNote(`loaded: ${await workerHeap(metricsPort)}`);
        printNote(
          `worker RSS peak ${(peakRss / mb).toFixed(0)} MB; its last rise of 4 MB ${atPeak}`,
        );

        printFigure(
          'scale fresh ai job',
          { label: `AI job of another user, ${vlogs} vlogs waiting`, value: loaded.ai, unit: 'ms' },
          { label: 'the same idle', value: idle.ai, unit: 'ms' },
          '≤ 2',
        );
        printFigure(
          'scale fresh vlog',
          {
            label: `vlog of another user, ${vlogs} vlogs waiting`,
            value: loaded.vlog / 1000,
            unit: 's',
          },
          { label: 'the same idle', value: idle.vlog / 1000, unit: 's' },
          '≤ 2',
        );
        printFigure(
          'scale worker RSS',
          { label: `worker peak, ${vlogs} vlogs waiting`, value: peakRss / mb, unit: 'MB' },
          { label: 'worker idle', value: idleRss / mb, unit: 'MB' },
          'peak ≤ 300 MB',
        );
      } catch (error) {
        // A run that stops early still says how much memory its vlogs in flight took.
        printNote(`worker RSS at most ${(peakRss / mb).toFixed(0)} MB before it stopped`);
        throw error;
      } finally {
        clearInterval(sampler);
      }
      const { google } = stack;
      // Counted over windows short of a second by the lateness a request may have on its way
      // (mostVeoRequestsInASecond); the count over whole seconds is in the note below.
      const perSecond = google.mostVeoRequestsInASecond(ratePerSecond);
      printFigure(
        'scale veo requests per second',
        {
          label: `most Veo requests in any ${perSecond.windowMs} ms`,
          value: perSecond.most,
          unit: '',
        },
        { label: 'the configured rate', value: ratePerSecond, unit: '' },
        '≤ 1',
      );
      printFigure(
        'scale veo requests per minute',
        {
          label: 'most Veo requests in any minute',
          value: google.mostVeoRequestsWithin(60_000),
          unit: '',
        },
        { label: 'the configured rate × 60', value: ratePerSecond * 60, unit: '' },
        '≤ 1',
      );
      printNote(
        `Veo saw ${google.veoRequestTimes.length} requests (${google.calls.predictLongRunning} submissions, ` +
          `${google.calls.fetchPredictOperation} checks), at most ${google.mostVeoRequestsWithin(1_000)} ` +
          `in any second, at most ${google.maxRunningOperations} operations at once (limit ${operations})`,
      );
    } catch (error) {
      throw new Error(`${String(error)}\n${stack.outputTail(40)}`, { cause: error });
    } finally {
      await stack.stop();
    }
  },
};

/**
 * Where a job spent its time, from its history: its workflow tasks queued on the server
 * (scheduled→started) and on the worker (started→completed, with the local activities they
 * ran), its activities queued and running.
 */
async function whereItWaited(stack: BenchStack, workflowId: string): Promise<string> {
  const history = await stack.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  const at = new Map<number, number>();
  const sums = { taskQueued: 0, taskOnWorker: 0, tasks: 0, activityQueued: 0, activityRunning: 0 };
  for (const event of history.events ?? []) {
    const time = Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
    at.set(Number(event.eventId), time);
    const since = (id: unknown) => time - (at.get(Number(id)) ?? time);
    if (event.workflowTaskStartedEventAttributes) {
      sums.tasks += 1;
      sums.taskQueued += since(event.workflowTaskStartedEventAttributes.scheduledEventId);
    }
    if (event.workflowTaskCompletedEventAttributes)
      sums.taskOnWorker += since(event.workflowTaskCompletedEventAttributes.startedEventId);
    if (event.activityTaskStartedEventAttributes)
      sums.activityQueued += since(event.activityTaskStartedEventAttributes.scheduledEventId);
    if (event.activityTaskCompletedEventAttributes)
      sums.activityRunning += since(event.activityTaskCompletedEventAttributes.startedEventId);
  }
  return (
    `spent ${sums.taskQueued.toFixed(0)} ms with its ${sums.tasks} workflow tasks queued on the ` +
    `server, ${sums.taskOnWorker.toFixed(0)} ms with them on the worker, ` +
    `${sums.activityQueued.toFixed(0)} ms with its activities queued, ` +
    `${sums.activityRunning.toFixed(0)} ms with them running`
  );
}

/** The worker's resident set and its main thread's V8 heap, as its `GET /metrics` says. */
async function workerHeap(metricsPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]) / mb;
  return (
    `worker RSS ${value('process_resident_memory_bytes').toFixed(0)} MB, main-thread heap ` +
    `${value('nodejs_heap_size_used_bytes').toFixed(0)} MB used of ` +
    `${value('nodejs_heap_size_total_bytes').toFixed(0)} MB, external ` +
    `${value('nodejs_external_memory_bytes').toFixed(0)} MB (the workflow thread and native ` +
    `memory are the rest)`
  );
}

/** What the worker did, per type: the SDK's counters a busy-while-waiting note shows. */
const workCounters = {
  temporal_workflow_task_execution_latency_seconds_count: 'workflow tasks',
  temporal_sticky_cache_miss_total: 'sticky cache misses',
  temporal_local_activity_execution_latency_seconds_count: 'local activities',
  temporal_activity_execution_latency_seconds_count: 'activities',
};

/** The worker's work counters from a `GET /metrics` text, keyed "what (type)". */
function workDone(text: string): Map<string, number> {
  const done = new Map<string, number>();
  for (const [, name, labels, value] of text.matchAll(/^(\w+)\{([^}]*)\} (\S+)$/gm)) {
    const what = workCounters[name as keyof typeof workCounters];
    if (!what) continue;
    const type = /(?:activity|workflow)_type="([^"]*)"/.exec(labels!)?.[1] ?? 'any';
    const key = `${what} (${type})`;
    done.set(key, (done.get(key) ?? 0) + Number(value));
  }
  return done;
}

/** CPU seconds a process used (user and system), and the whole machine's busy seconds. */
async function cpuSeconds(pid: number): Promise<{ process: number; machine: number }> {
  // /proc counts in USER_HZ, 100 a second on Linux.
  const ticks = 100;
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const [user, nice, system, , , irq, softirq, steal] = (await readFile('/proc/stat', 'utf8'))
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return {
    process: (Number(fields[11]) + Number(fields[12])) / ticks,
    machine: (user! + nice! + system! + irq! + softirq! + steal!) / ticks,
  };
}

/**
 * What kept the machine busy over `ms` while every vlog waited: the worker's CPU, the whole
 * machine's, and the worker's workflow tasks, cache misses (each a replay of a whole history),
 * local activities and activities by type, per second.
 */
async function busyWhileWaiting(worker: number, metricsPort: number, ms: number): Promise<string> {
  const scrape = async () =>
    workDone(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  const [before, cpuBefore] = [await scrape(), await cpuSeconds(worker)];
  await delay(ms);
  const [after, cpuAfter] = [await scrape(), await cpuSeconds(worker)];
  const seconds = ms / 1000;
  const busiest = [...after]
    .map(([name, value]) => [name, (value - (before.get(name) ?? 0)) / seconds] as const)
    .filter(([, rate]) => rate > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, rate]) => `${name} ${rate.toFixed(2)}/s`);
  const percent = (from: number, to: number) => `${(((to - from) / seconds) * 100).toFixed(0)} %`;
  return (
    `over ${seconds} s with every vlog waiting: worker CPU ${percent(cpuBefore.process, cpuAfter.process)}, ` +
    `machine ${percent(cpuBefore.machine, cpuAfter.machine)} (of ${cpus().length * 100} %); the worker's work: ` +
    `${busiest.join('; ')}`
  );
}

/** Answers a client sends again after a pause: a loaded API's 503, and a key still in use. */
const answersToResend = new Set([503, 409]);

/**
 * Uploads a vlog through the API; returns its id. A request cut off (a loaded API closing a
 * kept-alive connection), or answered 503 (its database pool timed out) or 409
 * IDEMPOTENCY_KEY_IN_USE, is sent again under the same Idempotency-Key, as a client would: the
 * key answers with the vlog the first one started, if it did. `resent` counts the requests sent
 * again.
 */
async function submitVlog(
  stack: BenchStack,
  userId: string,
  form: { payload: Buffer; headers: Record<string, string> },
  idempotencyKey: string,
  resent = { count: 0 },
): Promise<string> {
  for (let attempt = 1; ; attempt += 1) {
    if (attempt > 1) {
      resent.count += 1;
      await delay(1_000 * Math.min(attempt - 1, 5));
    }
    let response: Response;
    try {
      response = await fetch(`${stack.baseUrl}/api/vlogs`, {
        method: 'POST',
        headers: {
          authorization: await stack.authorization(userId),
          'idempotency-key': idempotencyKey,
          ...form.headers,
        },
        body: form.payload,
      });
    } catch (error) {
      if (attempt >= 5) throw error;
      continue;
    }
    const text = await response.text();
    if (answersToResend.has(response.status) && attempt < 10) continue;
    if (response.status !== 202)
      throw new Error(`POST /api/vlogs answered ${response.status}: ${text}`);
    return (JSON.parse(text) as { id: string }).id;
  }
}

/**
 * Waits until every one of the bulk user's vlogs got as far as Veo: generating (submitted, or
 * waiting for a turn), or past it. A vlog that ended otherwise fails the scenario at once.
 */
async function untilAllWaiting(stack: BenchStack, vlogs: number, minutes: number): Promise<void> {
  const deadline = Date.now() + minutes * 60_000;
  let last = '';
  for (;;) {
    const counts = await stack.jobStatusCounts(bulkUser, jobStatuses);
    const shown = [...counts].map(([status, count]) => `${status} ${count}`).join(', ');
    if (shown !== last) printNote(`bulk vlogs: ${shown}`);
    last = shown;
    const ended = ['failed', 'cancelled', 'timeout'].filter((status) => counts.has(status));
    if (ended.length > 0) throw new Error(`bulk vlogs ended ${ended.join(', ')}: ${shown}`);
    const past = ['generating', 'transferring', 'completed'];
    if (past.reduce((sum, status) => sum + (counts.get(status) ?? 0), 0) >= vlogs) return;
    if (Date.now() > deadline) throw new Error(`not every vlog reached Veo: ${shown}`);
    await delay(5_000);
  }
}
