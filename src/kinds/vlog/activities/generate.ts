// The vlog's paid stage: the video generation is submitted once per attempt, then looked at
// until it is done.
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Db } from '../../../db/database.js';
import {
  findProviderOperation,
  forgetSubmission,
  listOperationsLeftRunning,
  recordOperationOutcome,
  recordProviderOperation,
  recordSubmissionSent,
  unansweredSubmissionAgeMs,
} from '../../../db/provider-operations.js';
import { requestedVideoSeconds } from '../../../db/costs.js';
import { chargeProviderCall, takeBackEndOfJobCharge } from '../../../activities/cost-ledger.js';
import {
  holdProviderLease,
  listOperationsHoldingEndedJobsLeases,
  type JobLease,
  providerCooldownRemainingMs,
  providerWaitersToWake,
  releaseEndedJobLeases,
  releaseProviderLease,
  returnProviderLease,
  touchProviderLease,
} from '../../../db/provider-quota.js';
import { FailureCode } from '../../../jobs/failures.js';
import type { MediaRef } from '../../../jobs/contracts.js';
import type { ProviderThrottle } from '../../../jobs/provider-throttle.js';
import { unansweredSubmissions } from '../../../metrics/metrics.js';
import {
  modelOf,
  providerOf,
  UnansweredRequestError,
  type VideoGenerationStatus,
} from '../../../providers/types.js';
import { parseGcsUri } from '../../../storage/gcs-storage.js';
import type { GeneratedVideo, VlogAnalysis } from '../declaration.js';
import { reportHeartbeat } from '../../../activities/heartbeat.js';
import { providerDetails, required, toFailure } from '../../../activities/provider-calls.js';
import {
  admitToProvider,
  awaitProviderRequestSlot,
  leaseStaleAfterMs,
  throttleAfterRateLimit,
} from '../../../activities/provider-quota.js';
import type { VlogActivityDependencies } from './dependencies.js';

export interface StartVideoGenerationInput {
  jobId: string;
  /** Whose job it is: jobs waiting for a lease take turns per owner (absent in older runs). */
  ownerId?: string;
  attempt: number;
  prompt: string;
  aspectRatio: '16:9' | '9:16';
  durationSeconds: number;
  /** What a generator that composes the uploads itself (local) renders from. */
  title: string;
  media: MediaRef[];
  analysis: VlogAnalysis | null;
}

export interface StartedGeneration {
  operationName: string;
  outputUri: string;
}

/**
 * One look at a generation. While it runs, `retryAfterMs` is the provider's hint of when to look
 * again (its retry delay after a 429, or the cool-down left), when it gave one.
 */
export type GenerationCheck =
  { done: false; retryAfterMs?: number } | { done: true; video: GeneratedVideo };

/** The idempotency key of a paid generation: one per vlog and attempt, never random. */
export function generationKey(jobId: string, attempt: number): string {
  return `${jobId}${generationKeyPart}${attempt}`;
}

/** What part of a generation's idempotency key names it a generation (generationKey). */
const generationKeyPart = ':video-generation:';

/**
 * Charges the generations a vlog submitted, in any attempt, that no check saw end, when the
 * vlog ends (cancelled, failed, timed out, or closed outside its code and ended by the
 * reconciler). Veo has no way to stop a submitted generation: it runs on and is billed per
 * second of video when it finishes, and the ended job no longer looks at it. So it is charged
 * at the end, the seconds asked for, under the key a check would have used (the operation's
 * name): a later look at it (a retry re-attaching to it) never charges it again, and a
 * generation a check saw done was charged then and is not charged here; one a check saw
 * filtered or failed (which Veo does not bill) is left out. One Veo would not bill (filtered or
 * failed after the job stopped looking) is charged all the same, the row's `prices.note` saying
 * why, and taken back if a later look sees it so (recordGenerationEnd): a retry re-attached to
 * it, or the reconciler while the generation holds its lease. One no look sees end stays
 * charged.
 */
export async function chargeGenerationsLeftRunning(
  {
    db,
    providers,
    chargeHandoff,
  }: Pick<VlogActivityDependencies, 'db' | 'providers' | 'chargeHandoff'>,
  ended: { jobId: string },
): Promise<void> {
  const generator = providers.videoGenerator;
  if (!generator) return;
  const operations = await listOperationsLeftRunning(db, ended.jobId, generationKeyPart);
  if (operations.length === 0) return;
  const videoSeconds = (await requestedVideoSeconds(db, ended.jobId)) ?? 0;
  for (const operationName of operations) {
    await chargeProviderCall(
      { db, prices: providers.prices, handoff: chargeHandoff },
      {
        idempotencyKey: generationChargeKey(ended.jobId, operationName),
        jobId: ended.jobId,
        kind: 'video',
        usage: {
          provider: providerOf(generator.name),
          model: modelOf(generator.name),
          videoSeconds,
        },
        note: 'charged at the end of its job, which stopped looking at it: a submitted generation cannot be stopped and is billed when it finishes',
        // The projection and the reconciler write to the database next anyway, and are
        // retried until they can: the charge lands before the end it comes with.
        waitForLedger: true,
      },
    );
  }
}

/**
 * One look at a generation, as Veo's quota allows when it is metered: none while Veo cools down
 * after a 429 (anyone's), else in its request slot, and a 429 to the look starts the cool-down.
 * Answers the generation's status, or the wait to sit out before looking again; any other
 * failure is thrown as the call threw it.
 */
async function lookUnderQuota(
  { db, providers }: Pick<VlogActivityDependencies, 'db' | 'providers'>,
  look: { jobId: string; operationName: string },
): Promise<{ status: VideoGenerationStatus } | { retryAfterMs: number }> {
  // Found in the output folder: done, and nothing to ask Veo, which never named it.
  if (look.operationName.startsWith(foundOutputPrefix)) {
    const videoUri = look.operationName.slice(foundOutputPrefix.length);
    return { status: { state: 'succeeded', videoUri, mimeType: 'video/mp4' } };
  }
  const generator = required(providers.videoGenerator, 'Video generation');
  const { quotas } = providers;
  const metered = quotas.videoOperations;
  if (metered) {
    const cooldownMs = await providerCooldownRemainingMs(db, metered.provider);
    if (cooldownMs > 0) return { retryAfterMs: cooldownMs };
    const paused = await awaitProviderRequestSlot(db, metered);
    if (paused) return { retryAfterMs: paused.retryAfterMs };
  }
  try {
    return {
      status: await generator.check(look.operationName, {
        signal: Context.current().cancellationSignal,
      }),
    };
  } catch (error) {
    const throttle =
      metered &&
      (await throttleAfterRateLimit({
        db,
        quotas,
        provider: metered.provider,
        jobId: look.jobId,
        error,
        leased: false,
      }));
    if (throttle) return { retryAfterMs: throttle.retryAfterMs };
    throw error;
  }
}

/** Generations left running by ended vlogs that one run of the job reconciler looks at, at most. */
const leftRunningLooksPerRun = 100;

/**
 * Frees the Veo leases that ended vlogs still hold for generations they left running (Veo cannot
 * stop one, and counts it until it ends; endedJobLeasesFreed keeps its lease), once a look at
 * the generation sees it end: the next vlog in line then need not wait for the lease to go stale,
 * up to 30 minutes later (a stale lease no longer counts, and is not looked at). Each look is a Veo request like a live vlog's check: none while Veo
 * cools down, each in its request slot, and a 429 starts the cool-down and ends the round. A
 * generation that cannot be looked at now keeps its lease, which still goes stale in the end.
 * Its end is recorded as a check's would be; it was charged when its vlog ended, and that
 * charge is taken back if Veo filtered or failed it. Returns the
 * leases it freed.
 */
export async function freeLeasesOfGenerationsLeftRunning({
  db,
  providers,
}: Pick<VlogActivityDependencies, 'db' | 'providers'>): Promise<JobLease[]> {
  const generator = providers.videoGenerator;
  const metered = providers.quotas.videoOperations;
  if (!generator || !metered) return [];
  const { provider } = metered;
  const leftRunning = await listOperationsHoldingEndedJobsLeases(db, {
    provider,
    keyPart: generationKeyPart,
    staleAfterMs: leaseStaleAfterMs,
    limit: leftRunningLooksPerRun,
  });
  const context = Context.current();
  const freed: JobLease[] = [];
  for (const { jobId, operationName } of leftRunning) {
    let look;
    try {
      look = await lookUnderQuota({ db, providers }, { jobId, operationName });
    } catch (error) {
      if (context.cancellationSignal.aborted) {
        throw toFailure(error, context, providerOf(generator.name));
      }
      log.warn('could not look at a generation its ended vlog left running', {
        jobId,
        operationName,
        error: String(error),
      });
      continue;
    }
    if (!('status' in look)) break;
    const { status } = look;
    if (status.state === 'running') continue;
    await recordGenerationEnd(db, { jobId, operationName, outcome: status.state });
    if ((await releaseEndedJobLeases(db, jobId)).includes(provider))
      freed.push({ jobId, provider });
  }
  return freed;
}

/**
 * Records how a generation ended, seen by a look at it. Veo bills only a generation that
 * returned a video: one its vlog was charged as it ended (chargeGenerationsLeftRunning), seen
 * filtered or failed after, by a retry re-attached to it or by the reconciler, has that charge
 * taken back. Taken back before the end is recorded: a look stopped in between looks again.
 */
async function recordGenerationEnd(
  db: Db,
  ended: { jobId: string; operationName: string; outcome: 'succeeded' | 'filtered' | 'failed' },
): Promise<void> {
  if (ended.outcome !== 'succeeded') {
    const takenBack = await takeBackEndOfJobCharge(db, {
      idempotencyKey: generationChargeKey(ended.jobId, ended.operationName),
      reason: `not billed: Veo ended the generation ${ended.outcome} after its job had ended`,
    });
    if (takenBack) log.info('charge of a generation Veo does not bill taken back', ended);
  }
  await recordOperationOutcome(db, ended);
}

/** The key a generation is charged under, whoever charges it: its operation, once. */
function generationChargeKey(jobId: string, operationName: string): string {
  return `${jobId}:video:${operationName}`;
}

/**
 * What a generation found in its output folder is recorded as, in place of the operation name
 * its submission's answer would have given: the video's URI after this.
 */
const foundOutputPrefix = 'found-output:';

/** Longest pause between two looks for the video of a submission that got no answer. */
const unansweredLookIntervalMs = 15_000;

/**
 * What became of the attempt's earlier submission that got no answer (its worker killed, its
 * request timed out), if one was sent: Veo may have taken it, and writes its video under the
 * attempt's output folder whether or not anyone learned its operation. `found`, the video;
 * `waiting`, while the submission may still be running (VEO_UNANSWERED_SUBMISSION_WAIT_MS from
 * its sending), when to look again; `expired`, none is expected any more; `none` was sent.
 */
async function unansweredSubmission(
  { db, providers }: Pick<VlogActivityDependencies, 'db' | 'providers'>,
  submission: { key: string; outputUri: string },
): Promise<
  | { state: 'none' | 'expired' }
  | { state: 'found'; videoUri: string }
  | { state: 'waiting'; retryAfterMs: number }
> {
  const ageMs = await unansweredSubmissionAgeMs(db, submission.key);
  if (ageMs === null) return { state: 'none' };
  const storage = required(providers.generationStorage, 'VEO_OUTPUT_GCS_URI');
  const { bucket, key: folder } = parseGcsUri(submission.outputUri);
  const video = (await storage.list(folder)).find((key) => key.endsWith('.mp4'));
  if (video) return { state: 'found', videoUri: `gs://${bucket}/${video}` };
  const leftMs = providers.unansweredSubmissionWaitMs - ageMs;
  return leftMs > 0
    ? { state: 'waiting', retryAfterMs: Math.min(leftMs, unansweredLookIntervalMs) }
    : { state: 'expired' };
}

export function createGenerateActivities({
  db,
  mediaStorage,
  providers,
  chargeHandoff,
}: Pick<VlogActivityDependencies, 'db' | 'mediaStorage' | 'providers' | 'chargeHandoff'>) {
  return {
    /**
     * The governor's answer to a vlog about to submit its generation, without calling the
     * provider: admitted (holding a lease when Veo is metered), or the throttle to wait out. Run
     * as a local activity on the workflow's worker, so waiting in line never takes a task from
     * the video-generation queue, whose rate (Veo's requests per minute) is for Veo's requests.
     */
    async admitVideoGeneration(input: {
      jobId: string;
      ownerId: string;
    }): Promise<{ admitted: true } | ProviderThrottle> {
      const metered = providers.quotas.videoOperations;
      if (!metered) return { admitted: true };
      const throttle = await admitToProvider({
        db,
        quotas: providers.quotas,
        provider: metered.provider,
        jobId: input.jobId,
        ownerId: input.ownerId,
        maxConcurrent: metered.maxConcurrent,
      });
      return throttle ?? { admitted: true };
    },

    /**
     * The vlogs waiting in line that a free lease would admit now: a vlog whose generation
     * ended (its lease freed) wakes them. Empty when Veo is not metered.
     */
    async videoGenerationWaitersToWake(): Promise<string[]> {
      const metered = providers.quotas.videoOperations;
      if (!metered) return [];
      return providerWaitersToWake(db, metered.provider, metered.maxConcurrent);
    },

    /**
     * Submits the paid generation at most once per vlog attempt. The operation name is written
     * to the database the moment the provider accepts it (and heartbeated), so a retried
     * activity or a crashed worker re-attaches to it instead of submitting again.
     *
     * The provider-quota governor comes first: while the provider cools down after a 429, or
     * all its leases (VEO_MAX_CONCURRENT_OPERATIONS) are taken, nothing is submitted and the
     * answer is a throttle the workflow waits out on a timer; a 429 to the submission itself
     * answers the same way. Admitted, the submission waits for its request slot when Veo's
     * requests are paced. The lease is held until a check sees the generation end, or the
     * job ends.
     *
     * A local generator renders inside this call, heartbeating ffmpeg's progress (so a cancel
     * lands and stops ffmpeg); its operation is recorded only once the video is stored, so a
     * retry after a lost worker renders again from scratch.
     */
    async startVideoGeneration(
      input: StartVideoGenerationInput,
    ): Promise<StartedGeneration | ProviderThrottle> {
      const generator = required(providers.videoGenerator, 'Video generation');
      const outputBase = required(providers.generationOutputUri, 'VEO_OUTPUT_GCS_URI');
      const outputUri = `${outputBase}${input.jobId}/attempt-${input.attempt}/`;
      const key = generationKey(input.jobId, input.attempt);
      const context = Context.current();
      const { quotas } = providers;
      const metered = quotas.videoOperations;
      const ownerId = input.ownerId ?? input.jobId;

      const recorded =
        (context.info.heartbeatDetails as { operationName?: string } | undefined)?.operationName ??
        (await findProviderOperation(db, key));
      if (recorded) {
        log.info('re-attaching to the submitted generation', {
          jobId: input.jobId,
          operationName: recorded,
        });
        await recordOperation(db, key, input.jobId, recorded, context);
        if (metered)
          await holdProviderLease(db, { provider: metered.provider, jobId: input.jobId, ownerId });
        return { operationName: recorded, outputUri };
      }

      const unanswered = generator.remote
        ? await unansweredSubmission({ db, providers }, { key, outputUri })
        : { state: 'none' as const };
      const provider = providerOf(generator.name);
      if (unanswered.state === 'found') {
        const operationName = `${foundOutputPrefix}${unanswered.videoUri}`;
        log.warn('found the video of a submission that got no answer: no second one is sent', {
          jobId: input.jobId,
          videoUri: unanswered.videoUri,
        });
        await recordOperation(db, key, input.jobId, operationName, context);
        await forgetSubmission(db, key);
        unansweredSubmissions.inc({ provider, outcome: 'found' });
        if (metered)
          await holdProviderLease(db, { provider: metered.provider, jobId: input.jobId, ownerId });
        return { operationName, outputUri };
      }
      if (unanswered.state === 'waiting') {
        // Still counted against Veo's operations at once: it may be running there.
        if (metered) await touchProviderLease(db, metered.provider, input.jobId);
        return {
          throttled: true,
          reason: 'unanswered',
          retryAfterMs: unanswered.retryAfterMs,
          ahead: null,
        };
      }
      if (unanswered.state === 'expired') {
        log.warn('no video came of a submission that got no answer: sending it again', {
          jobId: input.jobId,
          waitedMs: providers.unansweredSubmissionWaitMs,
        });
        unansweredSubmissions.inc({ provider, outcome: 'sent_again' });
      }

      if (metered) {
        const throttle = await admitToProvider({
          db,
          quotas,
          provider: metered.provider,
          jobId: input.jobId,
          ownerId,
          maxConcurrent: metered.maxConcurrent,
        });
        if (throttle) return throttle;
        const paused = await awaitProviderRequestSlot(db, metered);
        if (paused) {
          // Admitted, then cooled down before its turn to send: its place goes back, as after
          // a 429 of its own.
          await returnProviderLease(db, metered.provider, input.jobId);
          return paused;
        }
      }
      // Noted first: should no answer come, the retry looks for what Veo made of it.
      if (generator.remote)
        await recordSubmissionSent(db, { idempotencyKey: key, jobId: input.jobId, provider });
      let operationName: string;
      try {
        operationName = await generator.start(
          {
            prompt: input.prompt,
            aspectRatio: input.aspectRatio,
            durationSeconds: input.durationSeconds,
            outputUri,
            title: input.title,
            media: input.media,
            analysis: input.analysis,
          },
          {
            signal: generator.remote ? cancelledOnceAnswered(context) : context.cancellationSignal,
            openMedia: (ref) => mediaStorage.getStream(ref.key),
            progress: (progress) => reportHeartbeat({ render: progress }),
          },
        );
      } catch (error) {
        const cancelled = context.cancellationSignal.aborted;
        // No answer, or none waited for: Veo may be running it, so the retry looks for its
        // video first, and its lease stays taken meanwhile.
        const unanswered = error instanceof UnansweredRequestError || cancelled;
        if (generator.remote && !unanswered) await forgetSubmission(db, key);
        if (metered && !cancelled) {
          const throttle = await throttleAfterRateLimit({
            db,
            quotas,
            provider: metered.provider,
            jobId: input.jobId,
            error,
            leased: true,
          });
          if (throttle) return throttle;
          if (!unanswered) await releaseProviderLease(db, input.jobId, metered.provider);
        }
        throw toFailure(error, context, providerOf(generator.name));
      }
      reportHeartbeat({ operationName });
      await recordOperation(db, key, input.jobId, operationName, context);
      if (generator.remote) await forgetSubmission(db, key);
      log.info('video generation submitted', {
        jobId: input.jobId,
        operationName,
        provider: generator.name,
      });
      return { operationName, outputUri };
    },

    /**
     * One look at the generation; the workflow waits between looks on a durable timer. While
     * the provider cools down after a 429 it is not asked, and a 429 to the look itself starts
     * the cool-down: either way the answer is "not done, look again after the provider's delay".
     * A look is a Veo request like a submission: it waits for its request slot.
     * Once the generation ends, its lease is freed for the next job in line.
     */
    async checkVideoGeneration(input: {
      jobId: string;
      operationName: string;
    }): Promise<GenerationCheck> {
      const generator = required(providers.videoGenerator, 'Video generation');
      const metered = providers.quotas.videoOperations;
      // The vlog still looks at its generation: its lease does not go stale, cool-down or not.
      if (metered) await touchProviderLease(db, metered.provider, input.jobId);
      let look;
      try {
        look = await lookUnderQuota({ db, providers }, input);
      } catch (error) {
        throw toFailure(error, Context.current(), providerOf(generator.name));
      }
      if (!('status' in look)) return { done: false, retryAfterMs: look.retryAfterMs };
      const { status } = look;
      if (status.state === 'running') return { done: false };
      if (metered) await releaseProviderLease(db, input.jobId, metered.provider);
      const outcome = status.state;
      const seenEnded = () =>
        recordGenerationEnd(db, {
          jobId: input.jobId,
          operationName: input.operationName,
          outcome,
        });
      switch (status.state) {
        case 'succeeded':
          // Billed once the video exists (a filtered or failed generation is not), under the
          // operation's name: a re-attached generation seen done again is not charged again.
          // Its end is recorded after the charge, so a job that ends in between charges it.
          await chargeProviderCall(
            { db, prices: providers.prices, handoff: chargeHandoff },
            {
              idempotencyKey: generationChargeKey(input.jobId, input.operationName),
              jobId: input.jobId,
              kind: 'video',
              usage: {
                provider: providerOf(generator.name),
                model: modelOf(generator.name),
                videoSeconds: (await requestedVideoSeconds(db, input.jobId)) ?? 0,
              },
            },
          );
          await seenEnded();
          return { done: true, video: { sourceUri: status.videoUri, mimeType: status.mimeType } };
        case 'filtered':
          await seenEnded();
          throw ApplicationFailure.nonRetryable(
            `The generated video was removed by the provider's safety filters: ${status.reasons.join('; ')}`,
            FailureCode.CONTENT_FILTERED,
            providerDetails(providerOf(generator.name)),
          );
        case 'failed':
          await seenEnded();
          throw ApplicationFailure.nonRetryable(
            `The video generation failed: ${status.message}`,
            FailureCode.GENERATION_FAILED,
            providerDetails(providerOf(generator.name)),
          );
      }
    },
  };
}

/**
 * How long a remote submission under way may go on once it is cancelled: Veo answers one in a
 * second or two, and a worker shutting down must still exit before its shutdown deadline
 * (WORKER_SHUTDOWN_GRACE_MS + 15 s).
 */
export const submissionDrainMs = 10_000;

/**
 * The activity's cancellation, for a submission under way only `submissionDrainMs` later,
 * whether the vlog was cancelled or its worker shuts down: the provider may have accepted the
 * request already, and abandoning it would leave a paid generation no one knows of, neither
 * charged to the cancelled vlog nor re-attached to by a retry, which would pay for another.
 * Let finish, its operation is recorded, so the vlog's end charges it or the retry re-attaches.
 * One that takes longer (the request never got through) is given up. A submission not yet sent
 * when the cancel came is not sent.
 */
function cancelledOnceAnswered(context: Context): AbortSignal {
  const { cancellationSignal } = context;
  if (cancellationSignal.aborted) return cancellationSignal;
  const controller = new AbortController();
  cancellationSignal.addEventListener(
    'abort',
    () => {
      setTimeout(() => controller.abort(cancellationSignal.reason), submissionDrainMs).unref();
    },
    { once: true },
  );
  return controller.signal;
}

async function recordOperation(
  db: Db,
  key: string,
  jobId: string,
  operationName: string,
  context: Context,
) {
  // The provider already took the request: keep trying to write it down rather than fail and
  // let a retry pay for a second generation.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await recordProviderOperation(db, { idempotencyKey: key, jobId, operationName });
      return;
    } catch (error) {
      log.warn('could not record the generation yet', {
        jobId,
        operationName,
        attempt,
        error: String(error),
      });
      reportHeartbeat({ operationName });
      await delay(Math.min(30_000, 500 * 2 ** attempt), undefined, {
        signal: context.cancellationSignal,
      });
    }
  }
}
