import type { AppliedJobUpdate } from '../db/jobs.js';
import type { JobUpdate } from '../jobs/contracts.js';
import { FailureCode } from '../jobs/failures.js';
import { jobKindRegistry } from '../kinds/index.js';
import { isStageStatus, isTerminalStatus, type TerminalStatus } from '../jobs/model.js';
import { reconcileReasons } from '../jobs/workflow-closure.js';
import {
  jobDuration,
  jobFailures,
  jobsFinished,
  jobsReconciled,
  jobsStarted,
  jobStageDuration,
  unansweredSubmissions,
} from './metrics.js';

/** The `outcome` label of each way a job ends. */
const outcomes: Record<TerminalStatus, string> = {
  completed: 'completed',
  failed: 'failed',
  timeout: 'timed_out',
  cancelled: 'cancelled',
};

const failureCodes = new Set<string>(Object.values(FailureCode));

/** The `code` of a failure whose code is none of FailureCode's. */
const otherFailureCode = 'OTHER';

/**
 * The providers whose paid submissions are noted until answered (the remote video generator,
 * Veo): the `provider` of vlogflow_unanswered_submissions_total.
 */
const submittingProviders = ['veo'] as const;

/**
 * Puts every series of the job counters at 0, so that a kind's first start, end or failure is
 * an increase: `increase()` in the alert rules sees nothing in a series' first sample. So too
 * the unanswered submissions, whose `abandoned` this projection counts.
 */
export function zeroJobCounters(): void {
  for (const { declaration } of jobKindRegistry) {
    const { kind } = declaration;
    for (const type of declaration.jobTypes) {
      jobsStarted.inc({ kind, type }, 0);
      for (const outcome of Object.values(outcomes)) jobsFinished.inc({ kind, type, outcome }, 0);
    }
    for (const code of [...declaration.failureCodes, otherFailureCode]) {
      jobFailures.inc({ kind, code }, 0);
    }
    for (const reason of reconcileReasons) jobsReconciled.inc({ kind, reason }, 0);
  }
  for (const provider of submittingProviders) {
    for (const outcome of ['found', 'sent_again', 'abandoned']) {
      unansweredSubmissions.inc({ provider, outcome }, 0);
    }
  }
}

/**
 * Counts what one applied projection update changed. The projection applies each update once
 * (a repeated delivery is not newer), so each transition is counted once, by the worker that
 * projected it: a stage left, an attempt started (its first state in a stage), an attempt
 * ended (its first end). An attempt starts and ends once: a state that supersedes another (the
 * end a refused workflow task projected, the end the reconciler wrote before a reset run went
 * on) counts no second start or end, so a retried job counts one end per attempt.
 */
export function countJobTransition(update: JobUpdate, applied: AppliedJobUpdate): void {
  const { snapshot } = update;
  const { kind, type, previousStatus } = applied;
  for (const provider of applied.unansweredAbandoned) {
    unansweredSubmissions.inc({ provider, outcome: 'abandoned' });
  }
  if (snapshot.status === previousStatus) return;
  if (isStageStatus(previousStatus) && applied.secondsInPreviousStatus !== null) {
    jobStageDuration.observe({ kind, stage: previousStatus }, applied.secondsInPreviousStatus);
  }
  if (isStageStatus(snapshot.status) && !applied.attemptStartedBefore) {
    jobsStarted.inc({ kind, type });
  }
  if (!isTerminalStatus(snapshot.status) || applied.attemptEndedBefore) return;
  const outcome = outcomes[snapshot.status];
  jobsFinished.inc({ kind, type, outcome });
  if (snapshot.status === 'failed' || snapshot.status === 'timeout') {
    const code = snapshot.error?.code ?? FailureCode.JOB_FAILED;
    // A failure type outside the taxonomy (an unexpected error's class name) is not a label value.
    jobFailures.inc({ kind, code: failureCodes.has(code) ? code : otherFailureCode });
  }
  // A job cancelled before it started has no run time.
  if (snapshot.startedAt && snapshot.completedAt) {
    const seconds = (Date.parse(snapshot.completedAt) - Date.parse(snapshot.startedAt)) / 1_000;
    jobDuration.observe({ kind, outcome }, Math.max(0, seconds));
  }
}
