import {
  sql,
  type CompiledQuery,
  type QueryCreator,
  type QueryResult,
  type RawBuilder,
} from 'kysely';
import type { JobRecord, JobSnapshot, JobUpdate } from '../jobs/contracts.js';
import { terminalStatuses, waitingStatuses, type JobStatus } from '../jobs/model.js';
import {
  asyncCommit,
  preparedStatement,
  statementOnce,
  type Db,
  type StatementParameterOf,
} from './database.js';
import { endedJobLeasesFreed } from './provider-quota.js';
import type { Database, JobRow } from './schema.js';

/** The terminal statuses as an SQL list, for `status in (…)` in statements written as SQL. */
export const terminalStatusList = sql.join(terminalStatuses.map((status) => sql.lit(status)));

/**
 * Writes a newly accepted job and the first event of its log, and returns the row as written:
 * undefined when the job had its row already. Both the API (right after starting the workflow)
 * and the workflow's first activity call this, so the row exists whichever of them runs first
 * or survives a crash; the second write changes nothing. With `dropReservation` (the API's
 * write) the job's reservation goes in the same statement.
 *
 * The two may run at the same moment, so they send this one statement whatever the caller: its
 * row and event inserts take their locks in the same order for both, and the second waits for
 * the first instead of deadlocking with it (as a statement that inserted them in another order
 * did, answering the API's submission 500 under load).
 */
export async function insertJob(
  db: Db,
  job: JobRecord,
  initialStatus: JobStatus,
  { dropReservation = false }: { dropReservation?: boolean } = {},
): Promise<JobRow | undefined> {
  const statement = job.concurrencyKey ? jobInserts.keyed : jobInserts.unkeyed;
  const { rows } = await statement(db, {
    id: job.id,
    kind: job.kind,
    type: job.type,
    ownerId: job.ownerId,
    status: initialStatus,
    input: JSON.stringify(job.input),
    idempotencyKey: job.idempotencyKey,
    requestFingerprint: job.requestFingerprint,
    createdAt: job.createdAt,
    estimatedCost: job.estimatedCost ?? null,
    concurrencyKey: job.concurrencyKey ?? null,
    dropReservation,
  });
  return rows[0];
}

interface JobInsertParameters extends Record<string, unknown> {
  id: string;
  kind: string;
  type: string;
  ownerId: string;
  status: JobStatus;
  input: string;
  idempotencyKey: string | null;
  requestFingerprint: string | null;
  createdAt: string;
  estimatedCost: string | null;
  concurrencyKey: string | null;
  dropReservation: boolean;
}

/**
 * insertJob's statement, compiled once (statementOnce) for a job with a concurrency key and
 * once for one without: the API sends it for every job it accepts. It names the columns it
 * returns, as a prepared statement must (preparedStatement).
 */
function jobInsertStatement(keyed: boolean) {
  return statementOnce<JobInsertParameters, JobRow>((db, p) =>
    db
      // One statement: every insert and delete runs (a data-modifying CTE always does) and
      // they commit together. The delete is there either way, so both callers send one
      // statement shape.
      .with('job', (db) => insertJobRow(db, keyed, p).returning(jobColumns))
      .with('released', (db) =>
        db
          .deleteFrom('job_reservations')
          .where('job_id', '=', p('id'))
          .where(sql<boolean>`${p('dropReservation')}::boolean`),
      )
      .with('logged', (db) =>
        db
          .insertInto('job_events')
          .values(firstJobEvent(p))
          .onConflict((oc) => oc.columns(['job_id', 'seq', 'part']).doNothing()),
      )
      .selectFrom('job')
      .select(jobColumns)
      .compile(),
  );
}

const jobInserts = { keyed: jobInsertStatement(true), unkeyed: jobInsertStatement(false) };

/**
 * The job's row, or nothing if it has one. Every unique index is an arbiter, not only the id's:
 * when the other writer's insert commits between this one's check and its index entries, the
 * workflow_id index (equal to the id) would meet the duplicate first and fail the statement.
 */
function insertJobRow(
  db: QueryCreator<Database>,
  keyed: boolean,
  p: StatementParameterOf<JobInsertParameters>,
) {
  const createdAt = sql<string>`${p('createdAt')}::timestamptz`;
  return db
    .insertInto('jobs')
    .values({
      id: p('id'),
      kind: p('kind'),
      type: p('type'),
      owner_id: p('ownerId'),
      status: p('status'),
      input: sql<string>`${p('input')}::jsonb`,
      idempotency_key: p('idempotencyKey'),
      request_fingerprint: p('requestFingerprint'),
      workflow_id: p('id'),
      created_at: createdAt,
      updated_at: createdAt,
      status_changed_at: createdAt,
      estimated_cost: sql<string | null>`${p('estimatedCost')}::numeric`,
      ...(keyed && {
        concurrency_key: p('concurrencyKey'),
        queue_entered_at: createdAt,
        queue_attempt: 1,
      }),
    })
    .onConflict((oc) => oc.doNothing());
}

function firstJobEvent(p: StatementParameterOf<JobInsertParameters>) {
  return {
    job_id: p('id'),
    seq: 0,
    type: 'status',
    status: p('status'),
    progress: 0,
    phase: null,
    attempt: 1,
    error_code: null,
    error_message: null,
    created_at: sql<string>`${p('createdAt')}::timestamptz`,
  };
}

/** What an applied update changed: the job's kind and type, and the status it left. */
export interface AppliedJobUpdate {
  kind: string;
  type: string;
  previousStatus: JobStatus;
  /**
   * Whether the update's attempt had already been logged in a stage, or had already ended,
   * before this update: an attempt starts and ends once in the metrics, although a superseded
   * state (a phantom end, a reconciler's end a reset run overtook) logged it before.
   */
  attemptStartedBefore: boolean;
  attemptEndedBefore: boolean;
  /**
   * Time the job had been in `previousStatus`, by the database's clock; null for a job that
   * ended before its row kept when its status changed.
   */
  secondsInPreviousStatus: number | null;
  /**
   * The providers of the submissions the job ended with unanswered, one entry each (their
   * notes deleted with its leases): the provider may bill generations nobody will use.
   */
  unansweredAbandoned: string[];
}

/**
 * Applies a workflow's snapshot if it is newer than the stored one, so a late activity retry
 * never moves a job backwards, and appends it to the job's event log in the same statement:
 * the log holds exactly the states the row went through, in order. Returns what it changed
 * (the metrics count transitions from it), or null when the update was not newer. The row's
 * offset (set when the job follows a reset run) is added to the update's sequence number.
 * At the row's own sequence number, a state from a longer history supersedes the stored one: a
 * workflow task the server refused has already projected a state that never happened (a cancel
 * it accepted, its end), and the task that replaced it projects what did. The correction is
 * logged as the next event, never over the one it corrects, and the row's offset grows by one
 * so the run's later updates number after it: a progress stream that sent the phantom state
 * (and an `end` after it) sees the correction follow, as does a client resuming after it.
 *
 * A job that ends (completed, failed, cancelled, timed out) frees any provider lease or place in
 * line it still had, whatever step it ended in, and whether or not this update was newer, and
 * forgets the model answers its attempt kept (model-answers.ts): a retry asks again.
 *
 * One statement, one round trip: the projection runs several times in every job, inside its
 * workflow task. The row lock (`for update`) orders concurrent updates of one job, so events
 * commit in sequence order; a writer that waited for it sees the row as the other left it.
 * It commits without waiting for the disk (asyncCommit): the workflow keeps the job's state, and
 * what a database crash loses of the projection its next update writes over, or for a job that
 * ended, the job reconciler.
 */
export function applyJobUpdate(
  db: Db,
  update: JobUpdate,
  { closeCostHolds }: { closeCostHolds?: CostHoldEnd } = {},
): Promise<AppliedJobUpdate | null> {
  return writeSnapshot(db, update.jobId, update.snapshot, {
    write: 'update',
    seq: update.seq,
    historyLength: update.historyLength ?? 0,
    releaseLeases: (terminalStatuses as readonly string[]).includes(update.snapshot.status),
    asyncCommit: true,
    ...(closeCostHolds && { closeCostHolds }),
  });
}

/**
 * How an update that ends a job closes the cost holds of its attempt and earlier ones
 * (closeCostHold in costs.ts, the same rule): in the update's own statement, so the end and the
 * close commit together (a crash that loses one loses both, and the job reconciler, which ends
 * the job again, closes them again).
 */
export type CostHoldEnd = 'settled' | 'released';

/**
 * Ends a job in flight whose workflow closed without projecting it (terminated, timed out):
 * the snapshot is written as the next event only if the row still holds `expectedSeq` and a
 * status in flight, so it never overwrites what the workflow projected meanwhile. Returns what
 * it changed, or null when the row had moved on.
 */
export function endJobInFlight(
  db: Db,
  { jobId, expectedSeq, snapshot }: { jobId: string; expectedSeq: number; snapshot: JobSnapshot },
): Promise<AppliedJobUpdate | null> {
  return writeSnapshot(db, jobId, snapshot, {
    write: 'end',
    seq: expectedSeq,
    // The run has closed: nothing it projected could replace this end.
    historyLength: maxHistoryLength,
  });
}

/** Larger than any history: Temporal caps one run's at 51,200 events. */
const maxHistoryLength = 2_147_483_647;

/**
 * Which row a snapshot write selects and at what sequence number: `update` (applyJobUpdate), a
 * workflow's update numbered `seq` plus the row's offset, if newer than the row's; `end`
 * (endJobInFlight), the next number after `seq`, if the row still holds `seq` in flight.
 */
type SnapshotWrite = 'update' | 'end';

interface SnapshotStatementShape {
  write: SnapshotWrite;
  releaseLeases: boolean;
  asyncCommit: boolean;
  closeCostHolds: boolean;
}

interface SnapshotParameters extends Record<string, unknown> {
  jobId: string;
  seq: number;
  historyLength: number;
  status: JobStatus;
  progress: number;
  phase: string | null;
  attempt: number;
  runId: string;
  startedAt: string | null;
  completedAt: string | null;
  result: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  failed: boolean;
  failedProvider: string | null;
  holdState: CostHoldEnd | null;
}

/**
 * The snapshot write's statement of each shape, compiled once (statementOnce): every job runs
 * it at each of its stages.
 */
const snapshotStatements = new Map<
  string,
  (db: Db, params: SnapshotParameters) => Promise<QueryResult<AppliedJobUpdate>>
>();

function snapshotStatement(shape: SnapshotStatementShape) {
  const key = JSON.stringify(shape);
  let statement = snapshotStatements.get(key);
  if (!statement) {
    statement = statementOnce<SnapshotParameters, AppliedJobUpdate>((db, p) =>
      snapshotSql(shape, p).compile(db),
    );
    snapshotStatements.set(key, statement);
  }
  return statement;
}

/**
 * Writes a snapshot at `seq` into the row that the write selects, and logs it; see above. A
 * state at the row's own `seq` (from a longer history, applyJobUpdate) is written after it, at
 * `seq + 1`, and the row's offset grows by one to match. A failed job's stage is the status of
 * its attempt's last state in flight in the log, so it never names another attempt's stage or
 * a state that was superseded.
 * With `releaseLeases`, the job's provider leases, its notes of unanswered submissions and the
 * model answers kept for its attempt and earlier ones are deleted in the same statement (a data-modifying CTE always runs),
 * whether or not the row was selected, and with
 * `closeCostHolds` its attempt's cost holds are closed so, the same way; with `asyncCommit`, a
 * statement that selected the row commits without waiting for the disk.
 */
async function writeSnapshot(
  db: Db,
  jobId: string,
  snapshot: JobSnapshot,
  position: {
    write: SnapshotWrite;
    seq: number;
    historyLength: number;
    releaseLeases?: boolean;
    asyncCommit?: boolean;
    closeCostHolds?: CostHoldEnd;
  },
): Promise<AppliedJobUpdate | null> {
  // A failure's group (failure-groups.ts): the stage it ended in is the status it left, and the
  // provider is the one the error names. Any other status clears both (a retry starts over).
  const failed = snapshot.status === 'failed' || snapshot.status === 'timeout';
  const statement = snapshotStatement({
    write: position.write,
    releaseLeases: position.releaseLeases ?? false,
    asyncCommit: position.asyncCommit ?? false,
    closeCostHolds: position.closeCostHolds !== undefined,
  });
  const { rows } = await statement(db, {
    jobId,
    seq: position.seq,
    historyLength: position.historyLength,
    status: snapshot.status,
    progress: snapshot.progress,
    phase: snapshot.phase,
    attempt: snapshot.attempt,
    runId: snapshot.runId,
    startedAt: snapshot.startedAt,
    completedAt: snapshot.completedAt,
    result: snapshot.result === undefined ? null : JSON.stringify(snapshot.result),
    errorCode: snapshot.error?.code ?? null,
    errorMessage: snapshot.error?.message ?? null,
    failed,
    failedProvider: failed ? (snapshot.error?.provider ?? null) : null,
    holdState: position.closeCostHolds ?? null,
  });
  return rows[0] ?? null;
}

/** The snapshot write's SQL (writeSnapshot), its values where `p` places them. */
function snapshotSql(
  shape: SnapshotStatementShape,
  p: StatementParameterOf<SnapshotParameters>,
): RawBuilder<AppliedJobUpdate> {
  const waiting = sql.join(waitingStatuses.map((status) => sql.lit(status)));
  const jobId = p('jobId');
  const status = sql`${p('status')}::text`;
  const progress = sql`${p('progress')}::smallint`;
  const phase = sql`${p('phase')}::text`;
  const attempt = sql`${p('attempt')}::integer`;
  const errorCode = sql`${p('errorCode')}::text`;
  const errorMessage = sql`${p('errorMessage')}::text`;
  const historyLength = sql`${p('historyLength')}::integer`;
  const seq =
    shape.write === 'update'
      ? sql`${p('seq')}::integer + projection_seq_offset`
      : sql`${p('seq')}::integer + 1`;
  const condition =
    shape.write === 'update'
      ? sql`(projection_seq < ${seq} or (projection_seq = ${seq}
      and projection_history_length < ${historyLength}))`
      : sql`projection_seq = ${p('seq')}::integer and status not in (${terminalStatusList})`;
  return sql<AppliedJobUpdate>`
    with given as (
      select
        status, kind, type, status_changed_at, projection_seq, ${seq} as given_seq
        ${shape.asyncCommit ? sql`, ${asyncCommit} as async_commit` : sql``}
      from jobs
      where id = ${jobId} and ${condition}
      for update
    ), stored as (
      select *, greatest(given_seq, projection_seq + 1) as seq from given
    ), attempt_log as (
      select
        max(e.seq) filter (where e.status not in (${terminalStatusList})) as last_in_flight_seq,
        bool_or(e.status not in (${terminalStatusList}) and e.status not in (${waiting})) as started,
        bool_or(e.status in (${terminalStatusList})) as ended
      from job_events e, stored
      where e.job_id = ${jobId} and e.part = 0 and e.attempt = ${attempt}
        and e.seq < stored.seq
    ), updated as (
      update jobs set
        status = ${status},
        progress = ${progress},
        phase = ${phase},
        attempt = ${attempt},
        run_id = ${p('runId')}::text,
        started_at = ${p('startedAt')}::timestamptz,
        completed_at = ${p('completedAt')}::timestamptz,
        result = ${p('result')}::jsonb,
        error_code = ${errorCode},
        error_message = ${errorMessage},
        projection_seq = stored.seq,
        projection_seq_offset = jobs.projection_seq_offset + (stored.seq - stored.given_seq),
        projection_history_length = ${historyLength},
        updated_at = now(),
        status_changed_at = case
          when stored.status = ${status} then stored.status_changed_at else now()
        end,
        failed_stage = case when ${p('failed')}::boolean then (
          select e.status from job_events e, attempt_log
          where e.job_id = ${jobId} and e.part = 0 and e.seq = attempt_log.last_in_flight_seq
        ) end,
        failed_provider = ${p('failedProvider')}::text
      from stored
      where jobs.id = ${jobId}
      returning
        stored.status as previous_status, stored.kind, stored.type, stored.status_changed_at,
        stored.seq
    ), logged as (
      insert into job_events
        (job_id, seq, type, status, progress, phase, attempt, error_code, error_message)
      select
        ${jobId}, seq,
        case when previous_status = ${status} then 'progress' else 'status' end,
        ${status}, ${progress}, ${phase}, ${attempt}, ${errorCode}, ${errorMessage}
      from updated
    )${
      shape.releaseLeases
        ? sql`, released as (${endedJobLeasesFreed(jobId)}),
            forgotten as (delete from model_answers where job_id = ${jobId}
              and attempt <= ${attempt}),
            unanswered_forgotten as (delete from provider_submissions where job_id = ${jobId}
              returning provider)`
        : sql``
    }${
      shape.closeCostHolds
        ? sql`, closed_holds as (
            update cost_holds set state = ${p('holdState')}::text, closed_at = now()
            where job_id = ${jobId} and attempt <= ${attempt}
              and state = 'held')`
        : sql``
    }
    select
      kind, type, previous_status as "previousStatus",
      extract(epoch from now() - status_changed_at)::float8 as "secondsInPreviousStatus",
      coalesce(attempt_log.started, false) as "attemptStartedBefore",
      coalesce(attempt_log.ended, false) as "attemptEndedBefore",
      ${
        shape.releaseLeases
          ? sql`array(select provider from unanswered_forgotten)`
          : sql`array[]::text[]`
      } as "unansweredAbandoned"
    from updated, attempt_log`;
}

/**
 * Makes a job follow `runId`, the run a reset started in place of `fromRunId`: that run numbers
 * its updates from the reset point again, so from now on they count after the stored ones (the
 * offset). Only if the row is as the caller read it, in flight or ended by the reconciler with
 * one of `endedWith`; returns whether it was.
 */
export async function followResetRun(
  db: Db,
  move: {
    jobId: string;
    fromRunId: string;
    expectedSeq: number;
    runId: string;
    endedWith: readonly string[];
  },
): Promise<boolean> {
  const { numUpdatedRows } = await db
    .updateTable('jobs')
    .set((eb) => ({
      run_id: move.runId,
      projection_seq_offset: eb.ref('projection_seq'),
      updated_at: sql<Date>`now()`,
    }))
    .where('id', '=', move.jobId)
    .where('run_id', '=', move.fromRunId)
    .where('projection_seq', '=', move.expectedSeq)
    .where((eb) =>
      eb.or([
        eb('status', 'not in', [...terminalStatuses]),
        eb('error_code', 'in', [...move.endedWith]),
      ]),
    )
    .executeTakeFirst();
  return numUpdatedRows > 0n;
}

/**
 * Shows a failed job whose retry was accepted (an owner's, or an operator's re-drive) as
 * accepted again: `pending`, its next attempt not started, no error, with `phase` saying why.
 * Its new run writes its first state only once a worker has started it; meanwhile the job must
 * not read (in its view, its list, the end of its progress stream) as the failure it left, and
 * it counts against its owner's in-flight cap at once. Only while its row is still the failure it read
 * (`projection_seq`), never over a newer state the workflow wrote: the new attempt's own states
 * follow with higher sequence numbers. Returns whether it applied.
 */
export async function markJobRetried(
  db: Db,
  job: { id: string; projectionSeq: number; attempt: number; phase: string },
): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({
      status: 'pending',
      progress: 0,
      phase: job.phase,
      attempt: job.attempt,
      error_code: null,
      error_message: null,
      started_at: null,
      completed_at: null,
      failed_stage: null,
      failed_provider: null,
      updated_at: sql<Date>`now()`,
      status_changed_at: sql<Date>`now()`,
    })
    .where('id', '=', job.id)
    .where('projection_seq', '=', job.projectionSeq)
    .where('status', 'in', ['failed', 'timeout'])
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** What the reconciler reads of a job in flight. */
export type JobInFlight = Pick<
  JobRow,
  | 'id'
  | 'kind'
  | 'type'
  | 'owner_id'
  | 'status'
  | 'progress'
  | 'attempt'
  | 'run_id'
  | 'projection_seq'
  | 'started_at'
  | 'workflow_id'
>;

/**
 * The jobs the reconciler checks against their workflows, by id after `afterId`: those in
 * flight whose row has not changed for `staleMs`, and those it ended itself (`endedWith` codes)
 * in the last `reopenWindowMs`, whose workflow an operator may have reset since. The
 * terminal-status condition is written as literals so the planner can use the in-flight index.
 */
export async function findJobsToReconcile(
  db: Db,
  query: {
    staleMs: number;
    reopenWindowMs: number;
    endedWith: readonly string[];
    afterId: string | null;
    /** Ids up to this one only. */
    throughId?: string;
    limit: number;
  },
): Promise<JobInFlight[]> {
  let select = db
    .selectFrom('jobs')
    .select([
      'id',
      'kind',
      'type',
      'owner_id',
      'status',
      'progress',
      'attempt',
      'run_id',
      'projection_seq',
      'started_at',
      'workflow_id',
    ])
    .where('updated_at', '<', sql<Date>`now() - make_interval(secs => ${query.staleMs / 1000})`)
    .where(
      sql<boolean>`(status not in (${terminalStatusList}) or (
        error_code in (${sql.join([...query.endedWith])})
        and updated_at > now() - make_interval(secs => ${query.reopenWindowMs / 1000})
      ))`,
    );
  if (query.afterId !== null) select = select.where('id', '>', query.afterId);
  if (query.throughId !== undefined) select = select.where('id', '<=', query.throughId);
  return select.orderBy('id').limit(query.limit).execute();
}

/** Every column of a job row, named for the prepared read below (preparedStatement says why). */
const jobColumns = [
  'id',
  'kind',
  'type',
  'owner_id',
  'status',
  'progress',
  'phase',
  'input',
  'result',
  'error_code',
  'error_message',
  'attempt',
  'workflow_id',
  'run_id',
  'idempotency_key',
  'request_fingerprint',
  'projection_seq',
  'projection_seq_offset',
  'projection_history_length',
  'created_at',
  'started_at',
  'completed_at',
  'updated_at',
  'status_changed_at',
  'concurrency_key',
  'queue_entered_at',
  'queue_attempt',
  'turn_attempt',
  'failed_stage',
  'failed_provider',
  'media_deleted_at',
  'estimated_cost',
  'actual_cost',
] as const satisfies readonly (keyof JobRow)[];
// A column added to JobRow and not to the list above fails to compile here.
true satisfies [Exclude<keyof JobRow, (typeof jobColumns)[number]>] extends [never] ? true : never;

/**
 * The jobs read compiled once per database and prepared: it is what every status poll runs, and
 * building the query each time cost more of the API's time than the database took to answer.
 */
const jobsByIdQueries = new WeakMap<Db, CompiledQuery<JobRow>>();

/** The jobs of `ids` that exist, by id: one statement, one index scan of the primary key. */
async function findJobsById(db: Db, ids: string[]): Promise<Map<string, JobRow>> {
  let query = jobsByIdQueries.get(db);
  if (!query) {
    query = preparedStatement(
      db
        .selectFrom('jobs')
        .select(jobColumns)
        .where('id', '=', sql<string>`any(${[]}::text[])`)
        .compile(),
    );
    jobsByIdQueries.set(db, query);
  }
  const { rows } = await db.executeQuery<JobRow>({ ...query, parameters: [ids] });
  return new Map(rows.map((row) => [row.id, row]));
}

/** Statements of batched job reads (readJobBatched) out at once, per database. */
const maxJobReadStatements = 2;
/** Most jobs one batched statement asks for. */
const maxJobReadBatch = 100;

interface JobReadWaiter {
  id: string;
  resolve: (row: JobRow | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Job reads of one database that wait for a statement of their own: at most
 * maxJobReadStatements are out at once, and each takes every read waiting when it is sent.
 * A read alone is sent at once; under heavy polling one statement answers many reads, so the
 * database parses, plans and wakes for each batch, not each read. A read only ever joins a
 * statement sent after it was asked, so it sees every commit made before it was asked.
 */
function jobReadBatches(db: Db) {
  let waiting: JobReadWaiter[] = [];
  let running = 0;
  function send(): void {
    if (running >= maxJobReadStatements || waiting.length === 0) return;
    const batch = waiting.slice(0, maxJobReadBatch);
    waiting = waiting.slice(maxJobReadBatch);
    running += 1;
    void findJobsById(db, [...new Set(batch.map((waiter) => waiter.id))])
      .then(
        (rows) => batch.forEach((waiter) => waiter.resolve(rows.get(waiter.id))),
        (error: unknown) => batch.forEach((waiter) => waiter.reject(error)),
      )
      .finally(() => {
        running -= 1;
        send();
      });
  }
  return (id: string) =>
    new Promise<JobRow | undefined>((resolve, reject) => {
      waiting.push({ id, resolve, reject });
      send();
    });
}

const jobReads = new WeakMap<Db, ReturnType<typeof jobReadBatches>>();

/**
 * A job as its owner may see it; another owner's job is indistinguishable from no job. Outside
 * a transaction the read is batched with the reads waiting beside it (jobReadBatches).
 */
export async function findOwnedJob(
  db: Db,
  ownerId: string,
  jobId: string,
): Promise<JobRow | undefined> {
  let row: JobRow | undefined;
  if (db.isTransaction) {
    row = (await findJobsById(db, [jobId])).get(jobId);
  } else {
    let read = jobReads.get(db);
    if (!read) {
      read = jobReadBatches(db);
      jobReads.set(db, read);
    }
    row = await read(jobId);
  }
  return row?.owner_id === ownerId ? row : undefined;
}

/**
 * The id of an owner's job started with an Idempotency-Key, whatever its kind: a key names one
 * job per owner.
 */
export async function findJobIdByIdempotencyKey(
  db: Db,
  ownerId: string,
  idempotencyKey: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select('id')
    .where('owner_id', '=', ownerId)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row?.id;
}

/** Position after which the next page starts: the last row of the previous page. */
export interface JobCursor {
  createdAt: string;
  id: string;
}

export interface JobListQuery {
  ownerId: string;
  kind?: string | undefined;
  type?: string | undefined;
  status?: string | undefined;
  createdFrom?: Date | undefined;
  createdTo?: Date | undefined;
  after?: JobCursor | undefined;
  limit: number;
}

/**
 * An owner's jobs, newest first, by keyset on (created_at, id): a page never skips or repeats
 * rows while new jobs arrive, and every page costs the same whatever its depth.
 */
export async function listOwnedJobs(
  db: Db,
  query: JobListQuery,
): Promise<{ jobs: JobRow[]; next: JobCursor | null }> {
  let select = db.selectFrom('jobs').selectAll().where('owner_id', '=', query.ownerId);
  if (query.kind) select = select.where('kind', '=', query.kind);
  if (query.type) select = select.where('type', '=', query.type);
  // Any text: a status outside the set matches no job, as it always did.
  if (query.status) select = select.where(sql.ref('status'), '=', query.status);
  if (query.createdFrom) select = select.where('created_at', '>=', query.createdFrom);
  if (query.createdTo) select = select.where('created_at', '<', query.createdTo);
  if (query.after) {
    const { createdAt, id } = query.after;
    select = select.where(sql<boolean>`(created_at, id) < (${createdAt}::timestamptz, ${id})`);
  }
  const rows = await select
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const jobs = rows.slice(0, query.limit);
  const last = jobs.at(-1);
  const next =
    rows.length > query.limit && last
      ? { createdAt: last.created_at.toISOString(), id: last.id }
      : null;
  return { jobs, next };
}

/**
 * The median run time (from the start of the attempt that completed to its end) of the latest
 * completed jobs of a type, in milliseconds, or null before any completed: what the API's
 * completion estimates rest on. A wait behind a concurrency key or before a retry is no part of
 * it, so a line of keyed jobs does not stretch every estimate.
 */
export async function typicalDurationMs(db: Db, type: string): Promise<number | null> {
  const row = await db
    .selectFrom((qb) =>
      qb
        .selectFrom('jobs')
        .select(sql<number>`extract(epoch from completed_at - started_at) * 1000`.as('ms'))
        .where('type', '=', type)
        .where('status', '=', 'completed')
        .where('started_at', 'is not', null)
        .orderBy('completed_at', 'desc')
        .limit(100)
        .as('recent'),
    )
    .select(sql<number | null>`percentile_cont(0.5) within group (order by ms)`.as('median'))
    .executeTakeFirst();
  return row?.median == null ? null : Math.round(Number(row.median));
}

/**
 * Serializes the admission of an owner's jobs until the transaction ends, so an in-flight cap
 * holds under concurrent requests and requests sharing an Idempotency-Key are judged one after
 * the other. Held only to admit (a few indexed reads and one write), never across a call out.
 */
export async function lockOwner(db: Db, ownerId: string): Promise<void> {
  await ownerLock(db, { key: `jobs:${ownerId}` });
}

const ownerLock = statementOnce<{ key: string }, unknown>((db, p) =>
  sql`select pg_advisory_xact_lock(hashtext(${p('key')}::text))`.compile(db),
);

/**
 * How many places of an owner's in-flight cap are taken: jobs not in a terminal status, live
 * reservations of jobs whose row is not written yet, and retries under way: an ended job's hold
 * for an attempt after its row's, taken before its retry Update is sent and the row shown in
 * flight again (a job is never counted twice). One expression, so one snapshot: a job whose
 * reservation turns into its row meanwhile is seen once, as one or the other, never as
 * neither. The terminal statuses are literals, the in-flight index's own (migration 0003). A
 * retry's hold its API left behind is dropped by the reconciler (listCostHoldsLeftOpen).
 */
function inFlightCount(ownerId: string | RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`((
    select count(*) from jobs
    where owner_id = ${ownerId}
      and status not in (${terminalStatusList})
  ) + (
    select count(*) from job_reservations
    where owner_id = ${ownerId} and expires_at > now()
      and not exists (select 1 from jobs where jobs.id = job_reservations.job_id)
  ) + (
    select count(*) from cost_holds h join jobs j on j.id = h.job_id
    where h.owner_id = ${ownerId} and h.state = 'held'
      and j.status in (${terminalStatusList}) and h.attempt > j.attempt
  ))::integer`;
}

/** How many places of an owner's in-flight cap are taken (inFlightCount). */
export async function countJobsInFlight(db: Db, ownerId: string): Promise<number> {
  const { rows } = await sql<{ count: number }>`select ${inFlightCount(ownerId)} as count`.execute(
    db,
  );
  return rows[0]!.count;
}

export interface JobReservation {
  jobId: string;
  ownerId: string;
  idempotencyKey: string | null;
  /** How long it holds, from now in database time (every API process shares that clock). */
  ttlMs: number;
  /** Reserve only while fewer than this many places are taken (inFlightCount); unset: always. */
  maxInFlight?: number;
  /**
   * The job's cost hold (holdCost in costs.ts), written with the reservation in its statement:
   * for an admission that checks nothing between the two (a zero estimate, which no budget
   * refuses). Unset: the caller holds the cost itself.
   */
  hold?: { amount: string; attempt: number };
}

/** Whether a reservation was written, and how many places were taken before it. */
export interface ReservationOutcome {
  reserved: boolean;
  inFlight: number;
  /**
   * With `hold`: whether this statement wrote the hold (false when the job's attempt was held
   * already: an earlier request for its Idempotency-Key, whose API died mid-start, holds it).
   */
  held?: boolean;
}

/**
 * Takes a place of the owner's in-flight cap (and its Idempotency-Key) for a job whose workflow
 * is about to start, if fewer than `maxInFlight` are taken; call under `lockOwner`. Drops the
 * owner's expired reservations on the way. One statement: the cap's check and the place it
 * takes cost one round trip.
 */
export async function reserveJob(db: Db, reservation: JobReservation): Promise<ReservationOutcome> {
  const { hold } = reservation;
  const statement = hold ? jobReservations.withHold : jobReservations.alone;
  const { rows } = await statement(db, {
    jobId: reservation.jobId,
    ownerId: reservation.ownerId,
    idempotencyKey: reservation.idempotencyKey,
    ttlSeconds: reservation.ttlMs / 1000,
    cap: reservation.maxInFlight ?? null,
    holdAmount: hold?.amount ?? null,
    holdAttempt: hold?.attempt ?? null,
  });
  return rows[0]!;
}

interface ReservationParameters extends Record<string, unknown> {
  jobId: string;
  ownerId: string;
  idempotencyKey: string | null;
  ttlSeconds: number;
  cap: number | null;
  holdAmount: string | null;
  holdAttempt: number | null;
}

/**
 * reserveJob's statement, with the cost hold and without, each compiled once (statementOnce):
 * every admission sends one.
 */
const jobReservations = {
  alone: reservationStatement(false),
  withHold: reservationStatement(true),
};

function reservationStatement(withHold: boolean) {
  return statementOnce<ReservationParameters, ReservationOutcome>((db, p) =>
    reservationSql(withHold, p).compile(db),
  );
}

function reservationSql(withHold: boolean, p: StatementParameterOf<ReservationParameters>) {
  const ownerId = sql`${p('ownerId')}::text`;
  const cap = sql`${p('cap')}::integer`;
  return sql<ReservationOutcome>`
    with expired as (
      delete from job_reservations
      where owner_id = ${ownerId} and expires_at <= now()
    ), in_flight as (
      select ${inFlightCount(ownerId)} as count
    ), reserved as (
      insert into job_reservations (job_id, owner_id, idempotency_key, expires_at)
      select
        ${p('jobId')}::text, ${ownerId}, ${p('idempotencyKey')}::text,
        now() + make_interval(secs => ${p('ttlSeconds')}::float8)
      from in_flight
      where ${cap} is null or count < ${cap}
      -- The job's own expired reservation (an Idempotency-Key's id, whose API died mid-start)
      -- is still there for this statement, which deletes it: take its place. Under the owner's
      -- lock no live one can be.
      on conflict (job_id) do update set
        owner_id = excluded.owner_id,
        idempotency_key = excluded.idempotency_key,
        expires_at = excluded.expires_at
      returning job_id
    )${
      withHold
        ? sql`, held as (
            insert into cost_holds (job_id, owner_id, amount, attempt)
            select job_id, ${ownerId}, ${p('holdAmount')}::numeric, ${p('holdAttempt')}::integer
            from reserved
            on conflict (job_id, attempt) do nothing
            returning job_id
          )`
        : sql``
    }
    select
      (select count from in_flight) as "inFlight",
      exists (select 1 from reserved) as reserved${
        withHold ? sql`, exists (select 1 from held) as held` : sql``
      }`;
}

/** Whether a request with this Idempotency-Key of the owner is being started right now. */
export async function isIdempotencyKeyReserved(
  db: Db,
  ownerId: string,
  idempotencyKey: string,
): Promise<boolean> {
  const row = await db
    .selectFrom('job_reservations')
    .select('job_id')
    .where('owner_id', '=', ownerId)
    .where('idempotency_key', '=', idempotencyKey)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Deletes up to `limit` reservations that expired over `staleMs` ago, oldest first: an API that
 * died mid-start left them, and only their owner's next reservation deletes them otherwise,
 * which may never come. An expired reservation counts for nothing, so none is missed. Returns
 * how many went.
 */
export async function dropExpiredReservations(
  db: Db,
  { staleMs, limit }: { staleMs: number; limit: number },
): Promise<number> {
  const { numDeletedRows } = await db
    .deleteFrom('job_reservations')
    .where('job_id', 'in', (eb) =>
      eb
        .selectFrom('job_reservations')
        .select('job_id')
        .where(
          'expires_at',
          '<=',
          sql<Date>`now() - make_interval(secs => ${staleMs / 1000}::float8)`,
        )
        .orderBy('expires_at')
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(numDeletedRows);
}

/** Gives a reservation's place back: its job's row is written, or its start failed. */
export async function releaseReservation(db: Db, jobId: string): Promise<void> {
  await db.deleteFrom('job_reservations').where('job_id', '=', jobId).execute();
}

/** How many jobs of one kind in one waiting status wait to start, and the longest wait. */
export interface WaitingJobs {
  kind: string;
  /** `pending`, or `queued` behind an earlier job of its concurrency key. */
  status: string;
  count: number;
  oldestAgeSeconds: number;
}

/**
 * The jobs waiting to start (pending, or queued behind their key), by kind and status. A retried job
 * waits from the moment it re-entered its key's line. The terminal-status condition is the
 * in-flight index's own (migration 0003), written as literals so that the planner matches it
 * to the index whatever the plan: the read scans only the jobs in flight.
 */
export async function waitingJobsByKind(db: Db): Promise<WaitingJobs[]> {
  const { rows } = await sql<WaitingJobs>`
    select
      kind,
      status,
      count(*)::integer as count,
      extract(epoch from now() - min(coalesce(queue_entered_at, created_at)))::float8
        as "oldestAgeSeconds"
    from jobs
    where status not in (${terminalStatusList})
      and status in (${sql.join(waitingStatuses.map((status) => sql.lit(status)))})
    group by kind, status`.execute(db);
  return rows;
}

/** How long the quietest job of one kind in a stage has gone without an update. */
export interface QuietJobs {
  kind: string;
  oldestQuietSeconds: number;
}

/**
 * The jobs in a stage (in flight, not waiting to start), by kind: how long the one that has
 * gone longest without an update of its row has been quiet. A job waiting in a provider's
 * quota line is left out: it asks again only as its place comes (hours in a long line), and the
 * governor's gauges report that line. Every other job in a stage writes its row at least every
 * few minutes (each Veo check, each throttled ask), so one quiet far longer is stuck: its
 * workflow tasks fail, or its workflow waits on something that will not come.
 */
export async function quietJobsByKind(db: Db): Promise<QuietJobs[]> {
  const { rows } = await sql<QuietJobs>`
    select
      kind,
      extract(epoch from now() - min(updated_at))::float8 as "oldestQuietSeconds"
    from jobs
    where status not in (${terminalStatusList})
      and status not in (${sql.join(waitingStatuses.map((status) => sql.lit(status)))})
      and not exists (
        select 1 from provider_leases
        where provider_leases.job_id = jobs.id and provider_leases.state = 'waiting'
      )
    group by kind`.execute(db);
  return rows;
}
