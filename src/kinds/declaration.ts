/**
 * What a job kind is, declared once in `src/kinds/<kind>/declaration.ts` and read by the API
 * (names, summary), the worker (task queues), the kind's workflow (stages, activity policies,
 * failure codes) and the tests that keep the registry, the workflow exports and the docs in
 * step. Pure data and functions: workflow code imports a declaration, so nothing here may pull
 * in Node modules or I/O libraries (the linter checks it).
 */
import type { ActivityCancellationType, Duration, RetryPolicy } from '@temporalio/common';
import type { ActivityDomain, TaskQueueDomain } from '../capacity/task-queues.js';
import type { FailureCode } from '../jobs/failures.js';
import type { JobStatus } from '../jobs/model.js';
import type * as workflows from '../workflows/index.js';

/** A status the job passes through while it runs, and the progress it shows on entering it. */
export interface JobStage {
  status: JobStatus;
  progress: number;
}

/**
 * How the workflow calls one group of its activities: timeouts and retries as pure data.
 * What comes from configuration when a job is accepted (the provider backoff, the AI job's
 * time limit) is carried in the job's settings and merged in by the workflow.
 */
export interface ActivityPolicy {
  /**
   * The domain whose task queue runs these activities (`src/capacity/task-queues.ts`); a run
   * whose settings carry no queue names (started before the queue map) runs them on its own.
   */
  domain: ActivityDomain;
  startToCloseTimeout?: Duration;
  /** A cancellation reaches an activity only in the answer to a heartbeat. */
  heartbeatTimeout?: Duration;
  cancellationType?: ActivityCancellationType;
  /**
   * `provider`: the backoff the job carries from PROVIDER_RETRY_* (`providerRetryPolicy` in
   * `src/workflows/job-lifecycle.ts`), which never retries a permanent failure; or a fixed
   * policy.
   */
  retry: 'provider' | RetryPolicy;
}

export interface JobKindDeclaration<Type extends string = string, Input = unknown> {
  /** Its name: the `kind` of its jobs, their ids' prefix, the JobKind search attribute. */
  kind: string;
  /** The registered workflow type: part of the durable contract, never renamed. */
  workflowType: keyof typeof workflows;
  /** The `type` values a job of this kind may carry (the JobType search attribute). */
  jobTypes: readonly [Type, ...Type[]];
  /** How messages name one job of this kind ("vlog", "AI job"). */
  noun: string;
  /**
   * Whether its workflow runs the shared retry lifecycle (`runRetryableJob`): a failed job
   * stays open for a retry, and an operator can re-drive it once closed.
   */
  retries: boolean;
  /** The running stages, in order; a job then ends in one of the terminal statuses. */
  stages: readonly JobStage[];
  /** The task queue domains its work runs on: a worker polls a domain only if some kind uses it. */
  taskQueues: readonly TaskQueueDomain[];
  /** The policies of its activity calls, by the group name its workflow uses. */
  activityPolicies: Readonly<Record<string, ActivityPolicy>>;
  /**
   * Every failure code a job of this kind can end with (its `error.code`): the job metrics'
   * series of each, and the Kinds column of docs/error-codes.md, which a test holds to it.
   */
  failureCodes: readonly FailureCode[];
  /**
   * One line for the Web UI's workflow list and header, so operators can tell jobs apart. A
   * method, so that the registry can hold kinds of different inputs side by side.
   */
  summary(job: { type: Type; input: Input }): string;
  /**
   * What a client reading the job through `/api/jobs` sees of its input and result; unset: all
   * of both. Storage keys are the service's own: a kind whose input or result holds them shows
   * the rest (its own view links to the objects).
   */
  publicFields?(job: { input: Input; result: unknown }): { input: unknown; result: unknown };
}

/**
 * Most bytes of a workflow's summary as Temporal stores it (a JSON string): the server refuses a
 * start whose summary is over `limit.userMetadataSummarySize`, and Temporal documents 200 bytes.
 */
export const workflowSummaryMaxBytes = 200;

/** Markdown that the Web UI would turn into a link, markup or emphasis. */
const markdownSpecials = /[\\`*_[\]()<>#!|]/g;

/**
 * A kind's summary as a workflow start sends it: the Web UI renders it as Markdown, so what a
 * user wrote (a title, a goal) is escaped to read as typed, never as a link; and it is cut, with
 * an ellipsis, to fit workflowSummaryMaxBytes, a long title in any script included.
 */
export function workflowSummary<Job>(declaration: { summary(job: Job): string }, job: Job): string {
  const escaped = declaration.summary(job).replace(markdownSpecials, '\\$&');
  const fits = (text: string) =>
    new TextEncoder().encode(JSON.stringify(text)).length <= workflowSummaryMaxBytes;
  if (fits(escaped)) return escaped;
  const characters = Array.from(escaped);
  let kept = characters.length;
  while (kept > 0 && !fits(`${characters.slice(0, kept).join('')}…`)) kept -= 1;
  // An escape is never cut from the character it escapes: an odd run of backslashes at the
  // end holds one.
  const cut = characters.slice(0, kept).join('');
  const trailing = /\\*$/.exec(cut)![0].length;
  return `${trailing % 2 === 1 ? cut.slice(0, -1) : cut}…`;
}
