import type { ColumnType, Generated, Selectable } from 'kysely';
import type { JobStatus } from '../jobs/model.js';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T = unknown> = ColumnType<T, string, string>;

/** One row per job of any kind: the read model the API serves, projected by the workflows. */
export interface JobTable {
  id: string;
  kind: string;
  type: string;
  owner_id: string;
  /** One of `jobStatuses`; a check constraint refuses any other. */
  status: JobStatus;
  progress: Generated<number>;
  phase: string | null;
  input: Json;
  result: Json | null;
  error_code: string | null;
  error_message: string | null;
  attempt: Generated<number>;
  workflow_id: string;
  run_id: string | null;
  idempotency_key: string | null;
  /** Hash of the request an idempotency key was first used with. */
  request_fingerprint: string | null;
  /** Sequence number of the last status update applied; older updates are ignored. */
  projection_seq: Generated<number>;
  /**
   * Added to the sequence numbers of the run the job follows since a reset (migration 0013):
   * a reset run numbers its updates from the reset point again.
   */
  projection_seq_offset: Generated<number>;
  projection_history_length: Generated<number>;
  created_at: Timestamp;
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  completed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Timestamp;
  /** When the job entered its current status (null: ended before migration 0011). */
  status_changed_at: ColumnType<
    Date | null,
    Date | string | null | undefined,
    Date | string | null
  >;
  /** Jobs of one owner with the same key run one at a time, in line order; null: no key. */
  concurrency_key: string | null;
  /** The job's place in its key's line: its created_at, or the time a retry re-entered it. */
  queue_entered_at: ColumnType<Date | null, Date | string | null | undefined, Date | string>;
  /** The attempt that entered the line at `queue_entered_at`. */
  queue_attempt: number | null;
  /** The attempt given the turn; null while the job waits in line. */
  turn_attempt: number | null;
  /** The status a failed or timed-out job was in when it ended (its stage); null otherwise. */
  failed_stage: ColumnType<string | null, string | null | undefined, string | null>;
  /** The provider whose call ended a failed job (`gemini`, `veo`…); null: none did, or unknown. */
  failed_provider: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the media sweep deleted the job's uploads and outputs; null while they are kept. */
  media_deleted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** What the job was estimated to cost at submission (numeric, as text); null: before costs were kept. */
  estimated_cost: ColumnType<string | null, string | null | undefined, string | null>;
  /** The sum of its ledger entries (numeric, as text), kept with each entry. */
  actual_cost: ColumnType<string, string | undefined, string>;
}

export interface ProviderOperationTable {
  idempotency_key: string;
  job_id: string;
  operation_name: string;
  created_at: Generated<Date>;
  /** How a check saw the operation end; null while none has (see migration 0017). */
  outcome: 'succeeded' | 'filtered' | 'failed' | null;
}

/**
 * A paid submission sent and not answered yet (see migration 0022): one still here when it is
 * tried again may have been taken by the provider.
 */
export interface ProviderSubmissionTable {
  idempotency_key: string;
  job_id: string;
  /** The provider it was sent to (`veo`), whose metrics count it if it is never answered. */
  provider: string;
  sent_at: Generated<Date>;
}

/**
 * A model's finished, charged answer, kept while its job attempt runs so a retried activity
 * reuses it (see migration 0021): `call_key` is the call within the attempt, `ledger_key` the
 * key it was charged under.
 */
export interface ModelAnswerTable {
  call_key: string;
  job_id: string;
  attempt: number;
  ledger_key: string;
  provider: string;
  model: string;
  input_tokens: ColumnType<string, number, number>;
  output_tokens: ColumnType<string, number, number>;
  answer: string;
  created_at: Generated<Date>;
}

/** A job admitted by the API whose workflow is being started and whose row is not written yet. */
export interface JobReservationTable {
  job_id: string;
  owner_id: string;
  idempotency_key: string | null;
  expires_at: Timestamp;
}

/** An upload's folder (`uploads/<batch_id>/`) from before its first file until it is a job's or gone. */
export interface UploadBatchTable {
  batch_id: string;
  owner_id: string;
  /** The job it was started for, set just before the job's workflow starts; null before. */
  job_id: string | null;
  created_at: Generated<Date>;
}

/** A job's claim on one of a provider's concurrent operations: running (`held`) or `waiting`. */
export interface ProviderLeaseTable {
  provider: string;
  job_id: string;
  owner_id: string;
  state: 'held' | 'waiting';
  requested_at: Generated<Date>;
  touched_at: Generated<Date>;
  /** When a waiting job said it would ask again (migration 0020); null: as `touched_at` says. */
  asks_again_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** Until when every worker leaves a provider alone after it answered 429. */
export interface ProviderCooldownTable {
  provider: string;
  until: Timestamp;
}

/** When a provider's next request may go out (its requests are paced at a rate). */
export interface ProviderRequestPacingTable {
  provider: string;
  next_at: Timestamp;
}

export interface RateLimitWindowTable {
  owner_id: string;
  window_start: Timestamp;
  requests: number;
}

/** One row per state a job's row took, keyed by its projection sequence number. */
export interface JobEventTable {
  job_id: string;
  seq: number;
  /** 0 for a state; 1, 2… for the pieces of streamed output written after state `seq`. */
  part: Generated<number>;
  /** `status` when the status changed, `progress` otherwise, `output` for streamed output. */
  type: string;
  /** One of `jobStatuses`; a check constraint refuses any other. */
  status: JobStatus;
  progress: number;
  phase: string | null;
  attempt: number;
  error_code: string | null;
  error_message: string | null;
  /** A piece of a model's answer (`output` events). */
  output_text: ColumnType<string | null, string | undefined, string | null>;
  /** Where the piece starts in its answer, in characters: 0 starts a new answer. */
  output_offset: ColumnType<number | null, number | undefined, number | null>;
  created_at: Timestamp;
}

/** One re-drive of a job by an operator: the attempt it started and the run it followed. */
export interface JobRedriveTable {
  job_id: string;
  attempt: number;
  /** The run that had failed; the new attempt continues from what it stored. */
  previous_run_id: string | null;
  /** `retry-update`: the open run took a retry; `new-run`: a new run of the closed workflow. */
  via: 'retry-update' | 'new-run';
  /** The stage the job had failed in, where the new attempt resumes. */
  from_stage: string | null;
  requested_by: string;
  created_at: Generated<Date>;
}

/** One provider call: what it consumed, the price applied and its cost (numeric, as text). */
export interface CostLedgerTable {
  idempotency_key: string;
  job_id: string;
  attempt: number;
  owner_id: string;
  /** `text` (an AI job's model), `analysis` (a vlog's media analysis) or `video` (a generation). */
  kind: string;
  provider: string;
  model: string;
  input_tokens: ColumnType<string, number | undefined, number>;
  output_tokens: ColumnType<string, number | undefined, number>;
  video_seconds: ColumnType<string, number | undefined, number>;
  price_version: string;
  prices: Json;
  cost: string;
  currency: string;
  created_at: Generated<Date>;
}

/** A job's estimate held against its owner's budgets until the job ends. */
export interface CostHoldTable {
  job_id: string;
  /** The attempt it holds for: a retry or a re-drive holds the estimate again. */
  attempt: Generated<number>;
  owner_id: string;
  amount: string;
  state: Generated<'held' | 'settled' | 'released'>;
  created_at: Generated<Date>;
  closed_at: Date | null;
}

/** A user's own budgets (numeric, as text; null: no limit), set by an admin. */
export interface UserBudgetTable {
  owner_id: string;
  daily_limit: string | null;
  monthly_limit: string | null;
  updated_by: string;
  updated_at: Generated<Date>;
}

export interface Database {
  cost_ledger: CostLedgerTable;
  cost_holds: CostHoldTable;
  user_budgets: UserBudgetTable;
  jobs: JobTable;
  job_events: JobEventTable;
  job_reservations: JobReservationTable;
  job_redrives: JobRedriveTable;
  model_answers: ModelAnswerTable;
  provider_operations: ProviderOperationTable;
  provider_submissions: ProviderSubmissionTable;
  provider_leases: ProviderLeaseTable;
  provider_cooldowns: ProviderCooldownTable;
  provider_request_pacing: ProviderRequestPacingTable;
  rate_limit_windows: RateLimitWindowTable;
  upload_batches: UploadBatchTable;
}

export type JobRow = Selectable<JobTable>;
export type JobEventRow = Selectable<JobEventTable>;
export type JobRedriveRow = Selectable<JobRedriveTable>;
