import { sql, type Kysely } from 'kysely';

/**
 * The statuses of `jobStatuses` when this migration was written, `queued` new among them.
 * Spelled out, not imported: a migration stays what it was when it ran.
 */
const statuses = (list: string[]) => sql.join(list.map((status) => sql.lit(status)));
const before = [
  'pending',
  'running',
  'analyzing',
  'generating',
  'transferring',
  'processing',
  'completed',
  'failed',
  'cancelled',
  'timeout',
];
const after = ['queued', ...before];

async function setStatuses(db: Kysely<unknown>, list: string[]): Promise<void> {
  for (const table of ['jobs', 'job_events']) {
    await db.schema.alterTable(table).dropConstraint(`${table}_status_check`).execute();
    await db.schema
      .alterTable(table)
      .addCheckConstraint(`${table}_status_check`, sql`status in (${statuses(list)})`)
      .execute();
  }
}

export async function up(db: Kysely<unknown>): Promise<void> {
  // Jobs of one owner that share a concurrency key run one at a time, in line order:
  // `queue_entered_at` (the job's created_at; the time of its retry for a retried attempt),
  // then id. `turn_attempt` is the attempt that was given the turn, null while it waits.
  await db.schema
    .alterTable('jobs')
    .addColumn('concurrency_key', 'text')
    .addColumn('queue_entered_at', 'timestamptz')
    .addColumn('queue_attempt', 'integer')
    .addColumn('turn_attempt', 'integer')
    .execute();
  // The line of one owner's key, among jobs in flight: read on every turn check.
  await db.schema
    .createIndex('jobs_concurrency_line_idx')
    .on('jobs')
    .columns(['owner_id', 'concurrency_key', 'queue_entered_at', 'id'])
    .where(sql.ref('concurrency_key'), 'is not', null)
    .where(sql.ref('status'), 'not in', sql`('completed', 'failed', 'cancelled', 'timeout')`)
    .execute();
  await setStatuses(db, after);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await setStatuses(db, before);
  await db.schema.dropIndex('jobs_concurrency_line_idx').execute();
  await db.schema
    .alterTable('jobs')
    .dropColumn('concurrency_key')
    .dropColumn('queue_entered_at')
    .dropColumn('queue_attempt')
    .dropColumn('turn_attempt')
    .execute();
}
