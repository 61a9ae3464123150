import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/database.js';
import { dropCostHold } from '../../db/costs.js';
import {
  findJobsById,
  findRedrive,
  forgetRedrive,
  listFailedJobsOfGroup,
  recordRedrive,
} from '../../db/failure-groups.js';
import { countJobsInFlight, lockOwner, markJobRetried } from '../../db/jobs.js';
import type { JobRow } from '../../db/schema.js';
import type { FailureFingerprint } from '../../jobs/failure-fingerprint.js';
import { isRetryableStatus } from '../../jobs/model.js';
import {
  JobAttemptKey,
  JobKindKey,
  JobStatusKey,
  JobTypeKey,
  UserIdKey,
} from '../../jobs/search-attributes.js';
import { workflowSummary } from '../../kinds/declaration.js';
import { jobKindRegistry } from '../../kinds/index.js';
import { redriveJobs } from '../../metrics/metrics.js';
import {
  isFailedPrecondition,
  isTemporalDeadlineExceeded,
  isTemporalUnavailable,
  temporalAnswers,
  type TemporalAccess,
} from '../../temporal-client.js';
import type { RetryableRun } from '../../workflows/job-lifecycle.js';
import { nextAttemptInputQuery } from '../../workflows/job-messages.js';
import { ApiError, jobNotFound, type ErrorCode } from '../errors.js';
import { estimateOf, holdAttemptCost, refuseOverBudget, type BudgetDefaults } from './budgets.js';
import type { JobActions } from './job-actions.js';
import { fairnessKeyOf, refuseOwnerAtJobCap } from './job-starter.js';

/** Which failed jobs to re-drive: one failure group, or jobs by id. */
export type RedriveSelection =
  { group: FailureFingerprint; limit: number } | { jobIds: readonly string[] };

/** How a re-driven job gets its next attempt. */
export type RedriveVia = 'retry-update' | 'new-run';

export interface Redrive {
  jobId: string;
  kind: string;
  ownerId: string;
  /** The stage the job failed in, where the next attempt resumes. */
  fromStage: string | null;
  /** The attempt it runs as (the one it failed in + 1). */
  attempt: number;
  via: RedriveVia;
  /** The run that failed, which the new attempt follows. */
  previousRunId: string;
}

export interface RedriveRefusal {
  jobId: string;
  code: ErrorCode;
  message: string;
}

export interface RedriveOutcome {
  dryRun: boolean;
  /** Re-driven, or with `dryRun` what would be. */
  redriven: Redrive[];
  /** What was left as it is, and why. */
  skipped: RedriveRefusal[];
}

export interface RedriveDependencies {
  db: Db;
  temporal: TemporalAccess;
  /** The owner's single-job retry: a re-drive of a job whose run is still open sends it. */
  actions: JobActions;
  /** The budgets each re-driven attempt's estimate is held against, as a submission's is. */
  budgets: BudgetDefaults;
  /** The same in-flight cap every start meets (USER_MAX_JOBS_IN_FLIGHT). */
  maxJobsInFlight: number;
  /** Time Temporal gets for each call (JOB_CONTROL_TIMEOUT_MS). */
  timeoutMs: number;
  logger: FastifyBaseLogger;
}

const declarations = new Map(
  jobKindRegistry.map(({ declaration }) => [declaration.kind as string, declaration]),
);

/**
 * An operator's re-drive of failed jobs, for the admin route and `npm run redrive` alike. Each
 * job resumes from the stage it failed in with what its earlier stages stored, as an owner's
 * retry does: a job whose failed run is still open (in its retry window) is sent the retry
 * Update; one whose run has closed gets a new run of the same workflow id, started from the
 * input the closed run answers its `nextAttemptInput` query with (Temporal replays the closed
 * history to answer), so no finished stage runs again and a generation that succeeded is never
 * paid for twice. Either way the attempt goes on counting, the new attempt is linked to the run
 * it follows (`job_redrives`, the run's memo, and every run under the job's workflow id), and it
 * is admitted like any start: under the owner's lock, within the in-flight cap and its owner's
 * budgets (the job's estimate is held for the new attempt, and settled or released when it
 * ends); the provider quotas hold in its workflow as in any other. A job whose owner's budget
 * cannot hold its estimate is skipped with BUDGET_EXCEEDED, saying what remains, and the
 * others are re-driven: an operator re-drives work, not spending past what a user may spend.
 *
 * A dry run answers the same list from the same checks and changes nothing.
 */
export function createRedrives(deps: RedriveDependencies) {
  const { db, timeoutMs, logger } = deps;
  const temporal = deps.temporal.client;

  async function selectJobs(selection: RedriveSelection): Promise<{
    rows: JobRow[];
    missing: string[];
  }> {
    if ('group' in selection) {
      return {
        rows: await listFailedJobsOfGroup(db, selection.group, selection.limit),
        missing: [],
      };
    }
    const ids = [...new Set(selection.jobIds)];
    const found = new Map((await findJobsById(db, ids)).map((row) => [row.id, row]));
    return {
      rows: ids.flatMap((id) => found.get(id) ?? []),
      missing: ids.filter((id) => !found.has(id)),
    };
  }

  /** Whether the job can be re-driven, and how: from the stored row and its workflow. */
  async function judge(row: JobRow): Promise<Redrive> {
    const declaration = declarations.get(row.kind);
    if (!declaration?.retries) {
      throw new ApiError(
        'JOB_NOT_REDRIVABLE',
        `A ${declaration?.noun ?? row.kind} has no retries, so it cannot be re-driven`,
      );
    }
    if (!isRetryableStatus(row.status)) {
      throw new ApiError(
        'JOB_NOT_REDRIVABLE',
        `Only a failed or timed-out job can be re-driven; this one is ${row.status}`,
      );
    }
    if (row.media_deleted_at) {
      throw new ApiError(
        'JOB_NOT_REDRIVABLE',
        `The job's media was deleted by the retention sweep at ${row.media_deleted_at.toISOString()}`,
      );
    }
    const description = await callTemporal(() =>
      temporal.workflow.getHandle(row.workflow_id).describe(),
    );
    return {
      jobId: row.id,
      kind: row.kind,
      ownerId: row.owner_id,
      fromStage: row.failed_stage,
      attempt: row.attempt + 1,
      via: isOpen(description) ? 'retry-update' : 'new-run',
      previousRunId: description.runId,
    };
  }

  /** A Temporal call within the time limit, its failures as a job's refusal. */
  async function callTemporal<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await temporal.withDeadline(Date.now() + timeoutMs, call);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        throw new ApiError(
          'JOB_NOT_REDRIVABLE',
          "Temporal no longer keeps the job's workflow (past the namespace's retention)",
        );
      }
      const unavailable = new ApiError(
        'TEMPORAL_UNAVAILABLE',
        'Temporal is unavailable (check TEMPORAL_ADDRESS); re-drive the job again once it is back',
      );
      if (isTemporalDeadlineExceeded(error)) {
        // Out of time because it never reached Temporal is not a worker slow to answer.
        if (!(await temporalAnswers(deps.temporal))) throw unavailable;
        throw new ApiError(
          'JOB_CONTROL_TIMEOUT',
          `Temporal or a worker did not answer within ${timeoutMs} ms; re-drive the job again`,
        );
      }
      if (isTemporalUnavailable(error)) throw unavailable;
      if (isFailedPrecondition(error)) {
        throw new ApiError(
          'JOB_CONTROL_TIMEOUT',
          `No worker answered for the job's workflow (${error.cause.details}); start one and re-drive the job again`,
        );
      }
      throw error;
    }
  }

  /** A new run of the closed job, from the input its failed run would have continued with. */
  async function startNextRun(row: JobRow, plan: Redrive, requestedBy: string): Promise<void> {
    const declaration = declarations.get(row.kind)!;
    const closed = temporal.workflow.getHandle(row.workflow_id, plan.previousRunId);
    const [answered, description] = await Promise.all([
      callTemporal(() => closed.query(nextAttemptInputQuery) as Promise<RetryableRun>),
      callTemporal(() => closed.describe()),
    ]);
    // A run the reconciler ended (terminated, timed out) logged that end after the run's own
    // last number: the new run numbers after everything the row holds.
    const input = {
      ...answered,
      seq: Math.max(answered.seq, row.projection_seq - row.projection_seq_offset),
    };
    try {
      await callTemporal(() =>
        temporal.workflow.start(declaration.workflowType, {
          taskQueue: description.taskQueue,
          workflowId: row.workflow_id,
          // The job keeps its workflow id: the Web UI lists its runs together, each with its
          // JobAttempt, and this run's memo names the run it follows.
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          args: [input] as never,
          typedSearchAttributes: [
            { key: JobKindKey, value: row.kind },
            { key: JobTypeKey, value: row.type },
            { key: JobStatusKey, value: 'pending' },
            { key: UserIdKey, value: row.owner_id },
            { key: JobAttemptKey, value: input.attempt },
          ],
          staticSummary: workflowSummary<never>(declaration, {
            type: row.type,
            input: row.input,
          } as never),
          priority: { fairnessKey: fairnessKeyOf(row.owner_id) },
          memo: { redriveOf: { runId: plan.previousRunId, requestedBy } },
        }),
      );
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        throw new ApiError('JOB_NOT_REDRIVABLE', 'The job is running again already');
      }
      throw attemptMayStart(error);
    }
  }

  /**
   * Admits and re-drives one job in one transaction under its owner's lock: the cap is checked,
   * the estimate held for the new attempt (402 BUDGET_EXCEEDED when the owner's budget cannot;
   * skipped when a retry under way holds it already) and the re-drive recorded, then Temporal is
   * asked, then the row shows the job accepted again. The lock is held across that call, unlike
   * a start's: re-drives are rare, one job at a time, and bounded by JOB_CONTROL_TIMEOUT_MS.
   *
   * A refusal from Temporal rolls the hold and the record back. A call Temporal did not answer
   * (AttemptMayStart) keeps both: the Update may still be taken, or the start may have been,
   * and that attempt must run held. The job is skipped, and a re-drive of it sent again finds
   * the record and learns the outcome: the same Update again (its id names the attempt), whose
   * refusal drops the hold and the record, or the run started meanwhile. A hold whose attempt
   * never starts is dropped by the reconciler once the workflow has closed, as a retry's is.
   */
  async function redriveOne(row: JobRow, plan: Redrive, requestedBy: string): Promise<Redrive> {
    type Outcome = { redriven: Redrive } | { refused: ApiError } | { unanswered: AttemptMayStart };
    const outcome = await db.transaction().execute(async (tx): Promise<Outcome> => {
      await lockOwner(tx, row.owner_id);
      // Re-driven, or retried, by another request since it was read (the lock was theirs).
      const [current] = await findJobsById(tx, [row.id]);
      if (
        current?.status !== row.status ||
        current.attempt !== row.attempt ||
        current.projection_seq !== row.projection_seq
      ) {
        throw new ApiError('JOB_NOT_REDRIVABLE', 'The job changed meanwhile');
      }
      const attempt = { jobId: row.id, attempt: plan.attempt };
      const earlier = await findRedrive(tx, attempt);
      // An earlier re-drive of this attempt holds its place already, as a retry sent again does.
      if (!earlier) await refuseOwnerAtJobCap(tx, row.owner_id, deps.maxJobsInFlight);
      const held = await holdAttemptCost(
        tx,
        { ...attempt, ownerId: row.owner_id, estimate: estimateOf(row) },
        deps.budgets,
      );
      // An owner's retry holds this attempt and awaits its own answer: re-driven on its hold,
      // the job would lose it when that retry is refused (it drops the hold it took).
      if (!held && !earlier) {
        throw new ApiError(
          'JOB_NOT_REDRIVABLE',
          'A retry of the job is under way; re-drive it again if that retry is refused',
        );
      }
      const redrive = earlier
        ? {
            ...plan,
            via: earlier.via,
            previousRunId: earlier.previous_run_id ?? plan.previousRunId,
          }
        : plan;
      if (!earlier) {
        await recordRedrive(tx, {
          job_id: row.id,
          attempt: plan.attempt,
          previous_run_id: plan.previousRunId,
          via: plan.via,
          from_stage: plan.fromStage,
          requested_by: requestedBy,
        });
      }
      const log = logger.child({ jobId: row.id });
      try {
        if (redrive.via === 'retry-update') {
          await deps.actions
            .sendRetry(row, requestedBy, declarations.get(row.kind)!.noun, log)
            .catch((error: unknown) => {
              throw attemptMayStart(error);
            });
        } else if (redrive.previousRunId === plan.previousRunId) {
          // Otherwise the run the earlier re-drive started is the job's latest already.
          await startNextRun(row, plan, requestedBy);
        }
      } catch (error) {
        if (error instanceof AttemptMayStart) return { unanswered: error };
        // The workflow's verdict on the Update the earlier re-drive sent: its attempt never starts.
        if (!earlier || !(error instanceof ApiError) || error.code !== 'JOB_NOT_RETRYABLE') {
          throw error;
        }
        await dropCostHold(tx, row.id, plan.attempt);
        await forgetRedrive(tx, attempt);
        return { refused: error };
      }
      // Not applied when the new attempt's run has written a state of its own already.
      await markJobRetried(tx, {
        id: row.id,
        projectionSeq: row.projection_seq,
        attempt: plan.attempt,
        phase: 're-driven by an operator',
      });
      log.info({ attempt: plan.attempt, via: redrive.via, requestedBy }, 'job re-driven');
      return { redriven: redrive };
    });
    if ('redriven' in outcome) return outcome.redriven;
    if ('refused' in outcome) throw outcome.refused;
    throw new ApiError(
      outcome.unanswered.code,
      `${outcome.unanswered.message} The re-drive keeps its attempt's hold meanwhile.`,
    );
  }

  return {
    async redrive(
      selection: RedriveSelection,
      options: { dryRun: boolean; requestedBy: string },
    ): Promise<RedriveOutcome> {
      const { rows, missing } = await selectJobs(selection);
      const redriven: Redrive[] = [];
      const skipped: RedriveRefusal[] = missing.map((jobId) => ({
        jobId,
        code: 'NOT_FOUND',
        message: jobNotFound('job', jobId).message,
      }));
      // What a dry run adds to each owner's jobs in flight and holds, as the real run would.
      const planned = new Map<string, number>();
      const plannedCost = new Map<string, bigint>();
      for (const row of rows) {
        // With Temporal out of reach, each job would wait out its time limit in turn only to be
        // told the same: the rest are skipped at once.
        if (skipped.at(-1)?.code === 'TEMPORAL_UNAVAILABLE') {
          skipped.push({
            jobId: row.id,
            code: 'TEMPORAL_UNAVAILABLE',
            message:
              'Not tried: Temporal was unavailable for the job before it; re-drive it again once it is back',
          });
          continue;
        }
        try {
          const plan = await judge(row);
          if (options.dryRun) {
            const inFlight =
              (await countJobsInFlight(db, row.owner_id)) + (planned.get(row.owner_id) ?? 0);
            if (inFlight >= deps.maxJobsInFlight) {
              throw new ApiError(
                'TOO_MANY_JOBS_IN_FLIGHT',
                `Its owner has ${inFlight} jobs in flight, with those re-driven before it, the most allowed (${deps.maxJobsInFlight})`,
              );
            }
            const held = plannedCost.get(row.owner_id) ?? 0n;
            await refuseOverBudget(db, row.owner_id, estimateOf(row), deps.budgets, held);
            planned.set(row.owner_id, (planned.get(row.owner_id) ?? 0) + 1);
            plannedCost.set(row.owner_id, held + estimateOf(row));
            redriven.push(plan);
          } else {
            redriven.push(await redriveOne(row, plan, options.requestedBy));
          }
        } catch (error) {
          if (error instanceof ApiError) {
            skipped.push({ jobId: row.id, code: error.code, message: error.message });
            continue;
          }
          // One job's unexpected failure leaves the others to be re-driven.
          logger.error({ err: error, jobId: row.id }, 'could not re-drive the job');
          skipped.push({ jobId: row.id, code: 'INTERNAL_ERROR', message: 'Internal error' });
        }
      }
      if (!options.dryRun) {
        const kindOf = new Map(rows.map((row) => [row.id, row.kind]));
        for (const plan of redriven) redriveJobs.inc({ kind: plan.kind, result: 'redriven' });
        for (const refusal of skipped) {
          redriveJobs.inc({ kind: kindOf.get(refusal.jobId) ?? 'unknown', result: refusal.code });
        }
      }
      return { dryRun: options.dryRun, redriven, skipped };
    },
  };
}

export type Redrives = ReturnType<typeof createRedrives>;

/**
 * A Temporal call that would start a re-driven attempt (the retry Update, a new run's start)
 * failed without an answer: it timed out, or the connection failed under it. Temporal may have
 * taken it all the same.
 */
class AttemptMayStart extends Error {
  constructor(
    readonly code: 'JOB_CONTROL_TIMEOUT' | 'TEMPORAL_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

/** `error` as AttemptMayStart when it leaves unknown whether Temporal took the call. */
function attemptMayStart(error: unknown): unknown {
  if (
    error instanceof ApiError &&
    (error.code === 'JOB_CONTROL_TIMEOUT' || error.code === 'TEMPORAL_UNAVAILABLE')
  ) {
    return new AttemptMayStart(error.code, error.message);
  }
  return error;
}

function isOpen(description: WorkflowExecutionDescription): boolean {
  return description.status.name === 'RUNNING';
}
