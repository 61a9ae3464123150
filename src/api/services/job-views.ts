import type { JobRow } from '../../db/schema.js';
import type { JobProgress } from '../../jobs/contracts.js';
import { isJobStatus, isTerminalStatus } from '../../jobs/model.js';
import { isThrottlePhase } from '../../jobs/provider-throttle.js';
import type { JobView, LiveView } from '../schemas/jobs.js';
import { parseMoney } from '../../costs/money.js';
import { moneyView } from '../../costs/prices.js';

export function jobUrl(id: string): string {
  return `/api/jobs/${encodeURIComponent(id)}`;
}

export function toJobView(row: JobRow): JobView {
  return {
    id: row.id,
    kind: row.kind,
    type: row.type,
    status: row.status,
    progress: row.progress,
    phase: row.phase,
    attempt: row.attempt,
    input: row.input,
    result: row.result,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    workflowId: row.workflow_id,
    concurrencyKey: row.concurrency_key,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    completedAt: row.completed_at?.toISOString() ?? null,
    updatedAt: row.updated_at.toISOString(),
    estimatedCost: row.estimated_cost === null ? null : moneyView(parseMoney(row.estimated_cost)),
    actualCost: moneyView(parseMoney(row.actual_cost)),
    links: { self: jobUrl(row.id) },
  };
}

/** The `live` field of a view: absent unless asked for, null when the workflow did not answer. */
export function liveView(live: JobProgress | null | undefined): { live?: LiveView } {
  if (live === undefined) return {};
  return {
    live: live
      ? { status: live.status, progress: live.progress, phase: live.phase, seq: live.seq }
      : null,
  };
}

/** Seconds a client reading a job is told to wait before reading it again. */
export interface PollIntervals {
  /** While the job runs (any status in flight but `pending` and `queued`). */
  runningSeconds: number;
  /** While it waits to start: `pending`, or `queued` behind its concurrency key's line. */
  pendingSeconds: number;
  /**
   * While it waits for a provider's quota (its phase says so): a wait of minutes to hours, in
   * which thousands of jobs polled at the running interval would make most of the API's reads.
   */
  waitingSeconds: number;
}

/**
 * The poll-interval hint for a job in `status` with `phase`, or null once it has ended: nothing
 * will change.
 */
export function pollIntervalSeconds(
  { status, phase }: { status: string; phase: string | null },
  intervals: PollIntervals,
): number | null {
  if (!isJobStatus(status) || isTerminalStatus(status)) return null;
  if (status === 'pending' || status === 'queued') return intervals.pendingSeconds;
  return isThrottlePhase(phase) ? intervals.waitingSeconds : intervals.runningSeconds;
}
