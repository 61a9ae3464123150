import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes every job workflow keeps current, so operators can find a user's
 * stuck or failed jobs in the Web UI, e.g. `UserId = "alice" AND JobStatus = "failed"`.
 */
export const JobKindKey = defineSearchAttributeKey('JobKind', SearchAttributeType.KEYWORD);
/** The job's type within its kind, e.g. `SUBGOAL_GENERATION`. */
export const JobTypeKey = defineSearchAttributeKey('JobType', SearchAttributeType.KEYWORD);
export const JobStatusKey = defineSearchAttributeKey('JobStatus', SearchAttributeType.KEYWORD);
export const UserIdKey = defineSearchAttributeKey('UserId', SearchAttributeType.KEYWORD);
export const JobAttemptKey = defineSearchAttributeKey('JobAttempt', SearchAttributeType.INT);
/**
 * The code of the error the job's attempt ended with (`PROVIDER_UNAVAILABLE`), as the
 * `code` label of `vlogflow_job_failures_total` names it; unset while an attempt runs.
 */
export const JobFailureCodeKey = defineSearchAttributeKey(
  'JobFailureCode',
  SearchAttributeType.KEYWORD,
);

export const jobSearchAttributes = [
  JobKindKey,
  JobTypeKey,
  JobStatusKey,
  UserIdKey,
  JobAttemptKey,
  JobFailureCodeKey,
];
