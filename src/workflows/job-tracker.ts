import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import { FailureCode, providerOfFailureDetails } from '../jobs/failures.js';
import type {
  CancelJobRequest,
  JobProgress,
  JobRecord,
  JobSnapshot,
  JobUpdate,
} from '../jobs/contracts.js';
import type { JobError, JobStatus, TerminalStatus } from '../jobs/model.js';
import { JobAttemptKey, JobFailureCodeKey, JobStatusKey } from '../jobs/search-attributes.js';
import {
  cancelJobSignal,
  cancelJobUpdate,
  cancelRefusal,
  jobProgressQuery,
  type JobStanding,
} from './job-messages.js';
import { awaitJobTurn, passJobTurn } from './job-turn.js';
import { databaseRetry } from './database-retry.js';

// The read model must catch up whenever the database comes back, so these retry without limit.
const projectionOptions = {
  startToCloseTimeout: '15s',
  retry: databaseRetry,
} as const;

/**
 * The projection runs as local activities, inside the workflow task on the workflow's own
 * worker, so a job's status never waits in a queue behind provider calls. Runs that recorded it
 * as ordinary activities (before this patch) keep replaying them.
 */
const projectionAsLocalActivities = 'job-projection-local-activities';
const localProjection = proxyLocalActivities<SharedActivities>(projectionOptions);
const queuedProjection = proxyActivities<SharedActivities>(projectionOptions);

/**
 * A job that waits in no line registers itself and records the state its run starts in with
 * one projection write (recordJobStart) instead of two. Runs that recorded the two writes (before
 * this patch) keep replaying them; a job with a concurrency key still registers before it
 * waits its turn, and begins once it has it.
 */
const firstStateWithRegistration = 'job-projection-first-state-with-registration';

/**
 * A run that takes this patch writes its projection behind the workflow: an update is queued and
 * the workflow goes on at once; once it has gone as far as it can, one local activity at a time
 * writes what is queued, in order, so the updates made in between go together
 * (recordJobUpdates). The job's end waits for every write before it. Runs that recorded a write
 * per update, each waited for, keep replaying them. Every run asks `patched()`: a job's record
 * cannot say whether the worker that ran it knew this patch.
 */
const projectionWritesBehind = 'job-projection-writes-behind';

/**
 * A run whose writes go behind it that takes this patch also waits, after each write, until the
 * workflow has gone as far as it can before it takes what is queued next. Without it, a write
 * that ended in the same activation as another local activity (a retry's turn, asked while its
 * first write runs) took the queue at once, before the code that other activity let go on had
 * issued its commands; live, the two often end in separate activations, and the write came
 * after those commands. A replay hands both back in one activation, so the write came first and
 * the run no longer replayed: its next Update (a retry) was never taken. Waiting puts the write
 * after them either way. Asked by every run whose writes go behind, as that patch is.
 */
const projectionWritesSettle = 'job-projection-writes-settle';

/**
 * Whether a run takes the projection's patch `patchId`: always for a job whose record says its
 * patches apply (every job the API starts now), else as `patched()` answers.
 *
 * Such a run asks `patched()` only while replaying, and takes the patched path whatever it
 * answers. Live, asking would record a marker and a TemporalChangeVersion upsert. On replay,
 * a history recorded by a worker that ignored the flag (an older build, during a rolling
 * deploy) holds the marker, and the question consumes it: left unasked, Core fails the task
 * ("Non-deprecated patch marker … no corresponding change command"). That worker asked at
 * these same calls and took the patched path, as this run does. A history recorded by this
 * code holds no marker, and asking while replaying without one returns false and sends no
 * command.
 */
function projectionPatched(job: JobRecord, patchId: string): boolean {
  if (job.projectionPatchesApplied !== true) return patched(patchId);
  if (workflowInfo().unsafe.isReplaying) patched(patchId);
  return true;
}

export type SnapshotChange = Partial<Omit<JobSnapshot, 'runId' | 'attempt'>>;

/**
 * The lifecycle every job workflow shares: it owns the job's live state, answers the progress
 * query, keeps the JobStatus search attribute and the Web UI's current details up to date,
 * waits for the turn of the job's concurrency key and passes it on as the job ends,
 * and projects each change to the database with an increasing sequence number, carried
 * across continue-as-new so a later run never loses to an earlier one.
 */
export class JobTracker {
  private snapshot: JobSnapshot;
  private seqValue: number;
  private readonly writesBehind: boolean;
  private readonly writesSettle: boolean;
  /** Projection writes not yet taken by a write (writesBehind). */
  private queued: { register?: JobRecord; update: JobUpdate }[] = [];
  /** The write under way, if any; it never rejects (writeFailure keeps what it threw). */
  private writing: Promise<void> | undefined;
  private writeFailure: Error | undefined;

  constructor(
    readonly job: JobRecord,
    { attempt = 1, seq = 0 }: { attempt?: number; seq?: number } = {},
  ) {
    this.seqValue = seq;
    this.snapshot = {
      status: 'pending',
      progress: 0,
      phase: null,
      attempt,
      runId: workflowInfo().runId,
      startedAt: null,
      completedAt: null,
      result: null,
      error: null,
    };
    setHandler(jobProgressQuery, () => this.progress());
    this.writesBehind = patched(projectionWritesBehind);
    this.writesSettle = this.writesBehind && patched(projectionWritesSettle);
  }

  get seq(): number {
    return this.seqValue;
  }

  get status(): JobStatus {
    return this.snapshot.status;
  }

  progress(): JobProgress {
    return { jobId: this.job.id, seq: this.seqValue, ...this.snapshot };
  }

  /**
   * Applies a change to the job's state and projects it: queued, for a run whose writes go
   * behind it, else written before this returns.
   */
  async update(change: SnapshotChange): Promise<void> {
    if (this.writesBehind) {
      this.queueWrite({ update: this.advance(change) });
      return;
    }
    // Asks the projection's patch before the change's upserts: the order older runs recorded.
    await this.projection().recordJobUpdate(this.advance(change));
  }

  private queueWrite(write: { register?: JobRecord; update: JobUpdate }): void {
    this.queued.push(write);
    // writeQueued always waits before it returns, so `writing` is set before its `finally`
    // clears it. Out of any cancellation scope: cancelling the job's work never cancels the
    // record of its state.
    this.writing ??= CancellationScope.nonCancellable(() => this.writeQueued());
  }

  /**
   * Writes what is queued until nothing is. Each write waits until the workflow has gone as far
   * as it can, so the changes made on the way go together (the first write only, in runs before
   * projectionWritesSettle).
   */
  private async writeQueued(): Promise<void> {
    try {
      await workflowSettled();
      while (this.queued.length > 0) {
        const writes = this.queued.splice(0);
        await localProjection.recordJobUpdates({
          ...(writes[0]?.register && { register: writes[0].register }),
          updates: writes.map(({ update }) => update),
        });
        if (this.writesSettle) await workflowSettled();
      }
    } catch (error) {
      this.writeFailure = error instanceof Error ? error : new Error(String(error));
    } finally {
      this.writing = undefined;
    }
  }

  /** Returns once every update made so far is written; throws what a failed write threw. */
  private async written(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.writeFailure !== undefined) throw this.writeFailure;
  }

  private projection(): Pick<SharedActivities, 'registerJob' | 'recordJobUpdate'> {
    return projectionPatched(this.job, projectionAsLocalActivities)
      ? localProjection
      : queuedProjection;
  }

  /** Applies a change to the live state, the search attribute and the Web UI's details; returns its projection. */
  private advance(change: SnapshotChange): JobUpdate {
    const previousStatus = this.snapshot.status;
    this.snapshot = { ...this.snapshot, ...change };
    this.seqValue += 1;
    if (this.snapshot.status !== previousStatus) {
      // In the one command a status change makes (so runs recorded before the failure code
      // replay alike): set at a failure, unset by a retry's new run, which inherits it.
      const failureCode = this.snapshot.error?.code ?? null;
      const shown = workflowInfo().typedSearchAttributes.get(JobFailureCodeKey) ?? null;
      upsertSearchAttributes([
        { key: JobStatusKey, value: this.snapshot.status },
        ...(failureCode === shown ? [] : [{ key: JobFailureCodeKey, value: failureCode }]),
      ]);
    }
    const { status, progress, phase, error } = this.snapshot;
    setCurrentDetails(
      [`**${status}** · ${progress}%`, phase, error ? `${error.code}: ${error.message}` : null]
        .filter(Boolean)
        .join('\n\n'),
    );
    return {
      jobId: this.job.id,
      kind: this.job.kind,
      seq: this.seqValue,
      snapshot: this.snapshot,
      historyLength: workflowInfo().historyLength,
    };
  }

  /**
   * Whether this run registers the job together with its first stage (`open`): only a job with
   * no concurrency key, in a run that took the patch.
   */
  registersWithFirstStage(): boolean {
    return !this.job.concurrencyKey && projectionPatched(this.job, firstStateWithRegistration);
  }

  /** Makes sure the job's row exists, before the run shows any state of its own. */
  async register(): Promise<void> {
    await this.projection().registerJob(this.job);
    this.markAttempt();
  }

  /**
   * Registers the job and marks the run as started in `status`, in one projection write: for
   * a run whose `registersWithFirstStage()` said so, in place of `register()` then `begin()`.
   */
  async open(status: JobStatus, change: SnapshotChange = {}): Promise<void> {
    const update = this.advance(beginning(status, change));
    if (this.writesBehind) this.queueWrite({ register: this.job, update });
    else await localProjection.recordJobStart({ job: this.job, update });
    this.markAttempt();
  }

  private markAttempt(): void {
    if (this.snapshot.attempt > 1)
      upsertSearchAttributes([{ key: JobAttemptKey, value: this.snapshot.attempt }]);
  }

  /** Marks the run as started in `status`: its first stage, once it has its turn. */
  begin(status: JobStatus, change: SnapshotChange = {}): Promise<void> {
    return this.update(beginning(status, change));
  }

  async complete(result: unknown): Promise<void> {
    await this.update({
      status: 'completed',
      progress: 100,
      phase: null,
      completedAt: now(),
      result,
    });
    await this.written();
    await passJobTurn(this.job);
  }

  /** Records a terminal status even if the workflow is being cancelled. */
  end(status: Exclude<TerminalStatus, 'completed'>, error: JobError): Promise<void> {
    return CancellationScope.nonCancellable(async () => {
      await this.update({ status, phase: null, completedAt: now(), error });
      await this.written();
      await passJobTurn(this.job);
    });
  }

  /**
   * Runs a job body that has no retry of its own: `completed` with its result, `cancelled` when
   * a cancel request or Temporal cancels it, `failed` otherwise (the failure is rethrown so
   * Temporal shows it). Cancelled through the API, the workflow fails with type CANCELLED, as
   * every job kind's does, so the Web UI says why.
   */
  async run<Result>(
    { status, noun }: { status: JobStatus; noun: string },
    body: () => Promise<Result>,
  ): Promise<Result> {
    const work = new CancellationScope();
    const cancel = acceptCancelRequests({
      tracker: this,
      noun,
      standing: () => this.status,
      onCancel: () => work.cancel(),
    });
    const opensAtOnce = this.registersWithFirstStage();
    if (!opensAtOnce) await this.register();
    try {
      if (opensAtOnce) {
        await this.open(status);
      } else {
        await work.run(() => awaitJobTurn(this));
        await this.begin(status);
      }
      const result = await work.run(body);
      await this.complete(result);
      return result;
    } catch (error) {
      const request = cancel.request();
      if (request || isCancellation(error)) {
        await this.end('cancelled', cancelledError(noun, request));
        if (request) throw cancelledFailure(noun);
      } else {
        await this.end('failed', toJobError(error));
      }
      throw error;
    }
  }
}

/**
 * Takes the cancel Update and signal of a job: the first request its standing allows is
 * taken and `onCancel` runs; a repeated cancel is accepted again (the first is still under
 * way); a signal the job cannot take is ignored. `standing` is the job's, a cancel aside.
 */
export function acceptCancelRequests(options: {
  tracker: JobTracker;
  noun: string;
  standing: () => JobStanding;
  onCancel: () => void;
}): { request(): CancelJobRequest | null } {
  const { tracker, noun, standing, onCancel } = options;
  let taken: CancelJobRequest | null = null;
  const take = (request: CancelJobRequest) => {
    if (taken) return;
    taken = request;
    onCancel();
  };
  setHandler(
    cancelJobUpdate,
    (request) => {
      take(request);
      return { status: tracker.status };
    },
    {
      validator: (_request) => {
        const refusal = taken ? null : cancelRefusal(standing(), noun);
        if (refusal) throw new Error(refusal);
      },
    },
  );
  setHandler(cancelJobSignal, (request) => {
    if (taken === null && cancelRefusal(standing(), noun) === null) take(request);
  });
  return { request: () => taken };
}

/** The error a job cancelled by `request` (or by Temporal, without one) ends with. */
export function cancelledError(noun: string, request: CancelJobRequest | null): JobError {
  return {
    code: FailureCode.CANCELLED,
    message: request?.reason ? `Cancelled: ${request.reason}` : `The ${noun} was cancelled`,
  };
}

/** What a workflow cancelled through the API fails with. */
export function cancelledFailure(noun: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`The ${noun} was cancelled`, FailureCode.CANCELLED);
}

/**
 * Resolves once the workflow code that can run now has run, recording no command. The SDK runs
 * an activation's jobs, then the microtasks they queued, then checks the blocked conditions
 * until none is unblocked; a microtask queued here runs in that drain, so this condition holds
 * from the first check after it, never before. A change to that order in the SDK would change
 * how writes group, which replaying the recorded writes-behind histories catches before an
 * SDK upgrade ships.
 */
function workflowSettled(): Promise<void> {
  let drained = false;
  void Promise.resolve().then(() => {
    drained = true;
  });
  return condition(() => drained);
}

/** The change that starts a run in `status`, `change` laid over it. */
function beginning(status: JobStatus, change: SnapshotChange): SnapshotChange {
  return {
    status,
    phase: null,
    startedAt: now(),
    completedAt: null,
    error: null,
    result: null,
    ...change,
  };
}

export function now(): string {
  return new Date().toISOString();
}

const failureCodes = new Set<string>(Object.values(FailureCode));

/**
 * The job-level error for whatever a job body threw: an activity's failure type becomes the code.
 * An error no step classified (a driver's `DatabaseError` once its retries ran out) would name
 * its class as the code and say what only operators should read (a database's name): it is
 * JOB_FAILED, naming the class, its detail left to the job's history.
 */
export function toJobError(error: unknown): JobError {
  let cause: unknown = error;
  // Activity failures arrive wrapped: the ApplicationFailure with the type is the cause.
  while (cause instanceof Error && !(cause instanceof ApplicationFailure) && cause.cause)
    cause = cause.cause;
  // A worker polling the step's queue without its activity: a kind's registration or a deploy
  // left it out. The SDK's message names it, then lists every activity the worker has.
  if (cause instanceof ApplicationFailure && cause.type === 'NotFoundError') {
    const [missing] = cause.message.split(', available activities');
    return {
      code: FailureCode.JOB_FAILED,
      message: `A step is missing from the worker that took it: ${missing}`,
    };
  }
  if (cause instanceof ApplicationFailure && cause.type && !failureCodes.has(cause.type)) {
    return {
      code: FailureCode.JOB_FAILED,
      message: `A step failed unexpectedly (${cause.type}); its details are in the job's Temporal history`,
    };
  }
  if (cause instanceof ApplicationFailure) {
    const provider = providerOfFailureDetails(cause.details);
    return {
      code: cause.type ?? FailureCode.JOB_FAILED,
      message: cause.message,
      ...(provider && { provider }),
    };
  }
  return {
    code: FailureCode.JOB_FAILED,
    message: error instanceof Error ? error.message : String(error),
  };
}
