import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Database } from './schema.js';
import * as createJobs from './migrations/0001_create_jobs.js';
import * as vlogs from './migrations/0002_vlogs.js';
import * as userLimits from './migrations/0003_user_limits.js';
import * as jobEvents from './migrations/0004_job_events.js';
import * as mediaRetention from './migrations/0005_media_retention.js';
import * as jobStatuses from './migrations/0006_job_statuses.js';
import * as jobReservations from './migrations/0007_job_reservations.js';
import * as concurrencyKeys from './migrations/0008_concurrency_keys.js';
import * as providerQuota from './migrations/0009_provider_quota.js';
import * as jobOutput from './migrations/0010_job_output.js';
import * as statusChangedAt from './migrations/0011_status_changed_at.js';
import * as projectionSeqOffset from './migrations/0012_projection_seq_offset.js';
import * as failureGroups from './migrations/0013_failure_groups.js';
import * as projectionHistoryLength from './migrations/0014_projection_history_length.js';
import * as costs from './migrations/0015_costs.js';
import * as costHoldAttempts from './migrations/0016_cost_hold_attempts.js';
import * as providerOperationOutcomes from './migrations/0017_provider_operation_outcomes.js';
import * as providerRequestPacing from './migrations/0018_provider_request_pacing.js';
import * as providerLeaseTurns from './migrations/0019_provider_lease_turns.js';
import * as providerLeaseRechecks from './migrations/0020_provider_lease_rechecks.js';
import * as modelAnswers from './migrations/0021_model_answers.js';
import * as providerSubmissions from './migrations/0022_provider_submissions.js';
import * as providerSubmissionProviders from './migrations/0023_provider_submission_providers.js';
import * as uploadBatches from './migrations/0024_upload_batches.js';

/** Migrations are imported statically so the same list runs from source, from dist and in tests. */
const migrations: Record<string, Migration> = {
  '0001_create_jobs': createJobs,
  '0002_vlogs': vlogs,
  '0003_user_limits': userLimits,
  '0004_job_events': jobEvents,
  '0005_media_retention': mediaRetention,
  '0006_job_statuses': jobStatuses,
  '0007_job_reservations': jobReservations,
  '0008_concurrency_keys': concurrencyKeys,
  '0009_provider_quota': providerQuota,
  '0010_job_output': jobOutput,
  '0011_status_changed_at': statusChangedAt,
  '0012_projection_seq_offset': projectionSeqOffset,
  '0013_failure_groups': failureGroups,
  '0014_projection_history_length': projectionHistoryLength,
  '0015_costs': costs,
  '0016_cost_hold_attempts': costHoldAttempts,
  '0017_provider_operation_outcomes': providerOperationOutcomes,
  '0018_provider_request_pacing': providerRequestPacing,
  '0019_provider_lease_turns': providerLeaseTurns,
  '0020_provider_lease_rechecks': providerLeaseRechecks,
  '0021_model_answers': modelAnswers,
  '0022_provider_submissions': providerSubmissions,
  '0023_provider_submission_providers': providerSubmissionProviders,
  '0024_upload_batches': uploadBatches,
};

const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };

/** Applies every pending migration; safe to call from several processes at once. */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    throw new Error('Database migration failed', { cause: error });
  }
  return (results ?? []).map((result) => result.migrationName);
}

/**
 * How the database's schema differs from this code's: the migrations it lacks, and those it has
 * that this code does not know (a newer version applied them). Reads only.
 */
export async function schemaDifference(
  db: Kysely<Database>,
): Promise<{ missing: string[]; unknown: string[] }> {
  const known = await new Migrator({ db, provider }).getMigrations();
  let applied: string[] = [];
  try {
    const { rows } = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
    applied = rows.map((row) => row.name);
  } catch (error) {
    // 42P01 undefined_table: no migration ever ran on it.
    if ((error as { code?: string }).code !== '42P01') throw error;
  }
  return {
    missing: known
      .filter((migration) => migration.executedAt === undefined)
      .map(({ name }) => name),
    unknown: applied.filter((name) => !(name in migrations)),
  };
}
