import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  type ActivityOptions,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import { FailureCode } from '../../jobs/failures.js';
import { isThrottled, throttlePhase } from '../../jobs/provider-throttle.js';
import { vlogVideoKey } from '../../jobs/storage-keys.js';
import { activityOptions, runRetryableJob } from '../../workflows/job-lifecycle.js';
import { providerTurnSignal } from '../../workflows/job-messages.js';
import type { AttemptDeadline } from '../../workflows/attempt-deadline.js';
import type { JobTracker, SnapshotChange } from '../../workflows/job-tracker.js';
import type { VlogActivities } from './activities/index.js';
import {
  vlogKind,
  type GeneratedVideo,
  type VlogJobInput,
  type VlogProgressCarried,
  type VlogResult,
} from './declaration.js';
import { databaseRetry } from '../../workflows/database-retry.js';

const [analyzing, generating, transferring] = vlogKind.stages;

/**
 * The steps that write under the vlog's storage prefixes, the render (a local one stores its
 * video) and the measuring (it stores the thumbnail), hear of a cancel only with their next
 * heartbeat and may write until then, so the cleanup waits for them to end, as it waits for a
 * cancelled transfer. A cancelled step stops heartbeating, so one that does not end is given up
 * after its heartbeat timeout. Runs that scheduled these steps before this patch cleaned up at
 * once, and keep replaying so.
 */
const cleanupAfterCancelledWrites = 'vlog-cleanup-after-cancelled-writes';

/** The options of a step that writes media: a cancel waits for it to end (runs since the patch). */
function writingMedia(options: ActivityOptions): ActivityOptions {
  return patched(cleanupAfterCancelledWrites)
    ? { ...options, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED }
    : options;
}

/**
 * A vlog waits for its Veo lease before the submission, asking the governor in a local
 * activity (no task of the rate-limited video-generation queue is spent on waiting), woken by
 * the vlog whose generation ended. Runs that recorded the wait inside the submission activity
 * (before this patch) keep it there.
 */
const providerTurns = 'vlog-provider-turns';

/**
 * A vlog writes its state to the database only where the state changes: it opens straight in
 * its analysis phase, and one that must wait for its Veo turn enters the generating stage with
 * its place in line. Each write is a local activity inside the workflow task (a database round
 * trip, a marker in the history, and a turn of the worker's workflow thread), and with
 * thousands of vlogs in flight those tasks are what the worker's intake is made of. Runs that
 * recorded a write before the analysis and one before the admission (before this patch) keep
 * replaying them.
 */
const fewerProjectionWrites = 'vlog-fewer-projection-writes';

/** The provider's own word that a generation ended without a video: filtered, or failed. */
function isGenerationVerdict(error: unknown): boolean {
  const type =
    error instanceof ActivityFailure && error.cause instanceof ApplicationFailure
      ? error.cause.type
      : undefined;
  return type === FailureCode.CONTENT_FILTERED || type === FailureCode.GENERATION_FAILED;
}

/** The phase a vlog's analysis shows. */
function analyzingPhase(input: VlogJobInput): string {
  const count = input.job.input.media.length;
  return `analyzing ${count} media ${count === 1 ? 'file' : 'files'}`;
}

// Short database reads and writes on the workflow's own worker, retried while the database is
// away, like the projection.
const governor = proxyLocalActivities<VlogActivities>({
  startToCloseTimeout: '15s',
  retry: databaseRetry,
});

function activities(input: VlogJobInput) {
  const { analysis, generation, generationCheck, transfer, storage } = vlogKind.activityPolicies;
  const { providerRetry, taskQueues } = input.settings;
  const options = {
    analysis: activityOptions(analysis, providerRetry, taskQueues),
    generation: activityOptions(generation, providerRetry, taskQueues),
    generationCheck: activityOptions(generationCheck, providerRetry, taskQueues),
    transfer: activityOptions(transfer, providerRetry, taskQueues),
    storage: activityOptions(storage, providerRetry, taskQueues),
  };
  // Only the steps that start ffmpeg move: a check or a transfer must not wait behind renders.
  const onMediaQueue = input.settings.mediaTaskQueue
    ? { taskQueue: input.settings.mediaTaskQueue }
    : {};
  return {
    options,
    onMediaQueue,
    analysis: proxyActivities<VlogActivities>(options.analysis),
    generation: proxyActivities<VlogActivities>(options.generation),
    generationCheck: proxyActivities<VlogActivities>(options.generationCheck),
    transfer: proxyActivities<VlogActivities>(options.transfer),
    storage: proxyActivities<VlogActivities>(options.storage),
  };
}

/**
 * One vlog from upload to delivered video: Gemini analysis, a Veo generation waited on with
 * durable timers, and a resumable transfer to media storage. Cancel, deadline and retry follow
 * the shared job lifecycle; a retry keeps every finished step's output (`carried`).
 */
export async function vlogJob(input: VlogJobInput): Promise<VlogResult> {
  const { job, settings } = input;
  const carried: VlogProgressCarried = {
    analysis: input.carried.analysis,
    generation: input.carried.generation && { ...input.carried.generation },
  };
  const acts = activities(input);
  const opensInAnalysis = !carried.analysis && patched(fewerProjectionWrites);
  return runRetryableJob({
    input,
    noun: vlogKind.noun,
    start: {
      status: analyzing.status,
      change: opensInAnalysis
        ? { progress: analyzing.progress + 5, phase: analyzingPhase(input) }
        : { progress: analyzing.progress, phase: 'starting' },
    },
    deadline: {
      ms: settings.deadlineMs,
      status: 'failed',
      error: {
        code: FailureCode.VLOG_DEADLINE_EXCEEDED,
        message: `The vlog did not finish within ${settings.deadlineMs} ms`,
      },
    },
    retryWindowMs: settings.retryWindowMs,
    body: (tracker, deadline) =>
      produceVlog({ input, tracker, deadline, carried, acts }, opensInAnalysis),
    cleanup: () => acts.storage.cleanupVlog({ jobId: job.id }),
    nextAttempt: (next) => ({ ...input, ...next, carried }),
  });
}

/** What every step of a vlog's attempt works with. */
interface VlogAttempt {
  input: VlogJobInput;
  tracker: JobTracker;
  deadline: AttemptDeadline;
  carried: VlogProgressCarried;
  acts: ReturnType<typeof activities>;
}

async function produceVlog(attempt: VlogAttempt, openedInAnalysis: boolean): Promise<VlogResult> {
  const { input, tracker, deadline, carried, acts } = attempt;
  const { job } = input;
  const media = job.input.media;

  if (!carried.analysis) {
    const phase = analyzingPhase(input);
    if (!openedInAnalysis) {
      await tracker.update({
        status: analyzing.status,
        progress: analyzing.progress + 5,
        phase,
      });
    }
    // Held back by the provider-quota governor (a 429), the analysis is asked again after the
    // wait the provider named, without using up an activity attempt.
    for (;;) {
      const analysis = await acts.analysis.analyzeMedia.executeWithOptions(
        {
          ...acts.options.analysis,
          ...acts.onMediaQueue,
          summary: `Analysis of ${media.map((m) => m.name).join(', ')}`,
        },
        [
          {
            jobId: job.id,
            media,
            brief: {
              title: job.input.title,
              prompt: job.input.prompt,
              style: job.input.style,
              durationSeconds: job.input.durationSeconds,
            },
          },
        ],
      );
      if (!isThrottled(analysis)) {
        carried.analysis = analysis;
        break;
      }
      await tracker.update({ phase: throttlePhase('media analysis', analysis) });
      await deadline.notCounting(() => sleep(analysis.retryAfterMs));
      await tracker.update({ phase });
    }
  }

  const video = await generateVideo(attempt);

  await tracker.update({
    status: transferring.status,
    progress: transferring.progress,
    phase: 'delivering the video',
  });
  const videoKey = vlogVideoKey(job.id);
  const transfer = await acts.transfer.transferVideo.executeWithOptions(
    {
      ...acts.options.transfer,
      summary: `Copy ${video.sourceUri} to ${videoKey}`,
    },
    [
      {
        jobId: job.id,
        sourceUri: video.sourceUri,
        destinationKey: videoKey,
        mimeType: video.mimeType,
      },
    ],
  );
  await tracker.update({ progress: 95, phase: 'measuring the video' });
  const described = await acts.storage.describeVideo.executeWithOptions(
    writingMedia(acts.options.storage),
    [{ jobId: job.id, videoKey, requestedDurationSeconds: job.input.durationSeconds }],
  );
  return {
    videoKey,
    thumbnailKey: described.thumbnailKey,
    durationSeconds: described.durationSeconds,
    sizeBytes: transfer.bytes,
    mimeType: video.mimeType,
  };
}

/**
 * Starts the paid generation at most once per attempt, re-attaching to one that an earlier
 * attempt left running or finished, then waits on durable timers: no worker slot is held
 * while Veo renders, and a worker restart changes nothing. A local render is done by the time
 * the start activity returns, so the first check finds it.
 */
async function generateVideo({
  input,
  tracker,
  deadline,
  carried,
  acts,
}: VlogAttempt): Promise<GeneratedVideo> {
  const { job, attempt, settings } = input;
  if (carried.generation?.state === 'succeeded' && carried.generation.video)
    return carried.generation.video;

  const stage = { status: generating.status, progress: generating.progress };
  const starting = !carried.generation || carried.generation.state === 'failed';
  // Since the patch a vlog that starts a generation enters the stage once its turn is known.
  const entersWithTurn = starting && patched(fewerProjectionWrites);
  if (!entersWithTurn) await tracker.update({ ...stage, phase: 'starting the video generation' });
  if (!carried.generation || carried.generation.state === 'failed') {
    if (patched(providerTurns))
      await awaitVideoGenerationTurn(input, tracker, deadline, entersWithTurn ? stage : {});
    else if (entersWithTurn)
      await tracker.update({ ...stage, phase: 'starting the video generation' });
    const startOptions = writingMedia(acts.options.generation);
    // Held back by the provider-quota governor, the same submission (same idempotency key) is
    // asked again after the wait it names: waiting for quota never costs an activity attempt.
    for (;;) {
      const started = await acts.generation.startVideoGeneration.executeWithOptions(
        {
          ...startOptions,
          ...acts.onMediaQueue,
          scheduleToCloseTimeout: deadline.paidCallTimeoutMs,
          summary: `Video generation: ${job.input.durationSeconds}s ${job.input.aspectRatio}`,
        },
        [
          {
            jobId: job.id,
            ownerId: job.ownerId,
            attempt,
            prompt: carried.analysis?.videoPrompt ?? job.input.title,
            aspectRatio: job.input.aspectRatio,
            durationSeconds: job.input.durationSeconds,
            title: job.input.title,
            media: job.input.media,
            analysis: carried.analysis,
          },
        ],
      );
      if (!isThrottled(started)) {
        carried.generation = {
          operationName: started.operationName,
          attempt,
          state: 'running',
          video: null,
        };
        break;
      }
      await tracker.update({ phase: throttlePhase('video generation', started) });
      await deadline.notCounting(() => sleep(started.retryAfterMs));
    }
  }
  const generation = carried.generation;
  for (let checks = 1; ; checks += 1) {
    let check;
    try {
      check = await acts.generationCheck.checkVideoGeneration({
        jobId: job.id,
        operationName: generation.operationName,
      });
    } catch (error) {
      if (!isCancellation(error)) {
        // Only the provider's verdict ends the generation: after any other failure it may still
        // run, paid for, and a retry of the vlog must re-attach to it, not pay for another.
        if (isGenerationVerdict(error)) generation.state = 'failed';
        await passVideoGenerationTurn(job.id);
      }
      throw error;
    }
    if (check.done) {
      generation.state = 'succeeded';
      generation.video = check.video;
      await passVideoGenerationTurn(job.id);
      return check.video;
    }
    // Veo takes minutes; progress creeps towards 70 % without ever claiming to be done.
    const progress = Math.round(generating.progress + 45 * (1 - 0.8 ** checks));
    await tracker.update({
      progress,
      phase: `generating the video (${generation.operationName.split('/').pop()})`,
    });
    await sleep(nextCheckInMs(check.retryAfterMs, settings.pollIntervalMs));
  }
}

/**
 * Returns once the governor admits the vlog's submission (it holds a Veo lease when Veo is
 * metered), after waiting in line on timers with its place in the phase, the attempt's deadline
 * stopped from the first refusal to the admission. A wait ends early when a vlog whose
 * generation ended wakes it. `stage` (the generating stage, when the vlog has not entered it
 * yet) goes into the first write, with the phase the first answer gives.
 */
async function awaitVideoGenerationTurn(
  input: VlogJobInput,
  tracker: JobTracker,
  deadline: AttemptDeadline,
  stage: SnapshotChange,
): Promise<void> {
  const { job } = input;
  let woken = false;
  setHandler(providerTurnSignal, () => {
    woken = true;
  });
  const admit = () => {
    woken = false;
    return governor.admitVideoGeneration({ jobId: job.id, ownerId: job.ownerId });
  };
  let entering: SnapshotChange = stage;
  let admission = await admit();
  if (isThrottled(admission)) {
    await deadline.notCounting(async () => {
      while (isThrottled(admission)) {
        await tracker.update({ ...entering, phase: throttlePhase('video generation', admission) });
        entering = {};
        await condition(() => woken, admission.retryAfterMs);
        admission = await admit();
      }
    });
  }
  if (Object.keys(entering).length > 0)
    await tracker.update({ ...entering, phase: 'starting the video generation' });
}

/**
 * Wakes the vlogs a lease freed by this one's ended generation would admit. Behind the same
 * patch as the wait; runs even while the workflow is being cancelled.
 */
function passVideoGenerationTurn(jobId: string): Promise<void> {
  if (!patched(providerTurns)) return Promise.resolve();
  return CancellationScope.nonCancellable(async () => {
    const waiting = await governor.videoGenerationWaitersToWake();
    await Promise.all(
      waiting.map((id) =>
        getExternalWorkflowHandle(id)
          .signal(providerTurnSignal, { fromJobId: jobId })
          // A vlog that has closed meanwhile needs no wake-up.
          .catch(() => undefined),
      ),
    );
  });
}

/** The provider's hint of when to look again, never sooner than the configured interval. */
function nextCheckInMs(hintMs: number | undefined, pollIntervalMs: number): number {
  return hintMs === undefined ? pollIntervalMs : Math.max(hintMs, pollIntervalMs);
}
