import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T = unknown> = ColumnType<T, string, string>;

/** One row per job of any kind: the read model the API serves, projected by the workflows. */
export interface JobTable {
  id: string;
  kind: string;
  type: string;
  owner_id: string;
  status: string;
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
  created_at: Timestamp;
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  completed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  updated_at: Timestamp;
}

export interface ProviderOperationTable {
  idempotency_key: string;
  job_id: string;
  operation_name: string;
  created_at: Generated<Date>;
}

export interface RateLimitWindowTable {
  owner_id: string;
  window_start: Timestamp;
  requests: number;
}

export interface Database {
  jobs: JobTable;
  provider_operations: ProviderOperationTable;
  rate_limit_windows: RateLimitWindowTable;
}

export type JobRow = Selectable<JobTable>;
export type NewJobRow = Insertable<JobTable>;
