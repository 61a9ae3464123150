// The provider-quota governor's shared state: leases on a provider's concurrent operations and
// the cool-down a 429 starts. In the database, so a limit holds across every worker process.
import { sql, type RawBuilder } from 'kysely';
import { terminalStatuses } from '../jobs/model.js';
import type { Db } from './database.js';

export interface LeaseRequest {
  /** The provider whose operations are counted, e.g. `veo`. */
  provider: string;
  jobId: string;
  /** Whose job it is: waiting jobs take free leases in turns per owner. */
  ownerId: string;
  /** Most operations of the provider at once. */
  limit: number;
  /** A lease or wait not refreshed for this long no longer counts (its job is gone). */
  staleAfterMs: number;
}

export type LeaseAnswer =
  | { granted: true }
  | {
      granted: false;
      /** Waiters ahead of the job. */
      ahead: number;
      /** Waiters in the whole line, the job among them. */
      waiting: number;
    };

/**
 * Whether a row of the list (alias `prefix`) is stale: nobody refreshed it for `staleAfterMs`
 * past the later of its last refresh and the time its waiting job said it would ask again.
 */
const isStale = (staleAfterMs: number, prefix = '') =>
  sql<boolean>`greatest(${sql.ref(`${prefix}touched_at`)}, ${sql.ref(`${prefix}asks_again_at`)})
    < now() - make_interval(secs => ${staleAfterMs / 1000})`;

/*
 * The waiting list goes out in turns per owner, where an owner's leases held count as turns
 * taken (an owner holding three leases waits in its fourth turn), oldest first within a turn
 * (`requested_at`, then `job_id`). So one owner's thousand jobs do not starve another's one: a
 * newcomer's first job goes ahead of the waiters of an owner whose jobs hold the leases.
 */

/**
 * A waiting job's place in line, from per-owner counts of the rows not stale: one pass over the
 * list, no sort. Also answers the leases held and the length of the line.
 */
const placeInLine = (provider: string, jobId: string, staleAfterMs: number) => sql<{
  held: string;
  ahead: string;
  waiting: string;
}>`
  with mine as (
    select owner_id, requested_at, job_id
    from provider_leases
    where provider = ${provider} and job_id = ${jobId} and state = 'waiting'
  ), owners as (
    select line.owner_id,
      count(*) filter (where line.state = 'held') as held,
      count(*) filter (where line.state = 'waiting') as waiting,
      count(*) filter (
        where line.state = 'waiting'
          and (line.requested_at, line.job_id) < (mine.requested_at, mine.job_id)
      ) as earlier
    from provider_leases line cross join mine
    where line.provider = ${provider} and not ${isStale(staleAfterMs, 'line.')}
    group by line.owner_id
  ), my_turn as (
    select owners.held + owners.earlier + 1 as turn
    from owners join mine on mine.owner_id = owners.owner_id
  )
  -- An owner's waiter of rank i waits in turn held + i: it is ahead of mine if that turn is
  -- earlier, or the same turn and it was requested earlier, i.e. i <= earlier.
  select coalesce(sum(owners.held), 0) as held,
    coalesce(sum(owners.waiting), 0) as waiting,
    coalesce(sum(greatest(0, least(
      owners.waiting,
      greatest(my_turn.turn - owners.held - 1, least(my_turn.turn - owners.held, owners.earlier))
    ))), 0) as ahead
  from owners cross join my_turn
`;

async function heldLeases(db: Db, provider: string): Promise<number> {
  const { held } = await db
    .selectFrom('provider_leases')
    .select((eb) => eb.fn.countAll<string>().as('held'))
    .where('provider', '=', provider)
    .where('state', '=', 'held')
    .executeTakeFirstOrThrow();
  return Number(held);
}

/**
 * Puts the job on the waiting list (a stale row of its own starts over) and answers its place,
 * or that it holds a lease. Needs no lock: it only reads the list.
 */
async function askInLine(
  db: Db,
  request: LeaseRequest,
): Promise<{ granted: true } | { granted: false; ahead: number; waiting: number; held: number }> {
  const { provider, jobId, ownerId, staleAfterMs } = request;
  await db
    .deleteFrom('provider_leases')
    .where('provider', '=', provider)
    .where('job_id', '=', jobId)
    .where(isStale(staleAfterMs))
    .execute();
  // The ask refreshes the row; the pause it is answered with is recorded after it.
  const mine = await db
    .insertInto('provider_leases')
    .values({ provider, job_id: jobId, owner_id: ownerId, state: 'waiting' })
    .onConflict((oc) =>
      oc
        .columns(['provider', 'job_id'])
        .doUpdateSet({ touched_at: sql<Date>`now()`, asks_again_at: null }),
    )
    .returning('state')
    .executeTakeFirstOrThrow();
  if (mine.state === 'held') return { granted: true };
  const { rows } = await placeInLine(provider, jobId, staleAfterMs).execute(db);
  return {
    granted: false,
    held: Number(rows[0]?.held ?? 0),
    ahead: Number(rows[0]?.ahead ?? 0),
    waiting: Number(rows[0]?.waiting ?? 0),
  };
}

/**
 * Takes one of the provider's `limit` leases for the job, or puts it on the waiting list. A job
 * that already holds a lease keeps it. Answers how many waiters are ahead when no lease is free.
 * While every lease is held (ten thousand waiters ask, a few leases free up) the answer is read
 * without the provider's lock; only an ask that may be granted takes it and asks again under it,
 * so the limit holds across processes.
 */
export async function acquireProviderLease(db: Db, request: LeaseRequest): Promise<LeaseAnswer> {
  const { provider, jobId, limit, staleAfterMs } = request;
  const unlocked = await askInLine(db, request);
  if (unlocked.granted) return { granted: true };
  if (unlocked.held >= limit) return inLine(unlocked);
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`provider-leases:${provider}`}))`.execute(tx);
    await tx
      .deleteFrom('provider_leases')
      .where('provider', '=', provider)
      .where(isStale(staleAfterMs))
      .execute();
    const locked = await askInLine(tx, request);
    if (locked.granted) return { granted: true };
    if (locked.ahead >= limit - locked.held) return inLine(locked);
    await tx
      .updateTable('provider_leases')
      .set({ state: 'held', touched_at: sql<Date>`now()` })
      .where('provider', '=', provider)
      .where('job_id', '=', jobId)
      .execute();
    return { granted: true };
  });
}

function inLine(place: { ahead: number; waiting: number }): LeaseAnswer {
  return { granted: false, ahead: place.ahead, waiting: place.waiting };
}

/**
 * Records when a waiting job will ask again, so its place outlasts a pause longer than
 * `staleAfterMs`. Nothing changes for a job that holds its lease meanwhile.
 */
export async function recordProviderRecheck(
  db: Db,
  recheck: { provider: string; jobId: string; inMs: number },
): Promise<void> {
  await db
    .updateTable('provider_leases')
    .set({ asks_again_at: sql<Date>`now() + make_interval(secs => ${recheck.inMs / 1000})` })
    .where('provider', '=', recheck.provider)
    .where('job_id', '=', recheck.jobId)
    .where('state', '=', 'waiting')
    .execute();
}

/**
 * Records that the job's operation runs, whatever the limit: a generation submitted earlier
 * (found again after a retry or a crash) is already counted by the provider.
 */
export async function holdProviderLease(
  db: Db,
  lease: { provider: string; jobId: string; ownerId: string },
): Promise<void> {
  await db
    .insertInto('provider_leases')
    .values({
      provider: lease.provider,
      job_id: lease.jobId,
      owner_id: lease.ownerId,
      state: 'held',
    })
    .onConflict((oc) =>
      oc
        .columns(['provider', 'job_id'])
        .doUpdateSet({ state: 'held', touched_at: sql<Date>`now()`, asks_again_at: null }),
    )
    .execute();
}

/** Puts a job whose submission the provider refused back on the waiting list, keeping its place. */
export async function returnProviderLease(db: Db, provider: string, jobId: string): Promise<void> {
  await db
    .updateTable('provider_leases')
    .set({ state: 'waiting', touched_at: sql<Date>`now()` })
    .where('provider', '=', provider)
    .where('job_id', '=', jobId)
    .execute();
}

/** Keeps a running operation's lease from going stale. */
export async function touchProviderLease(db: Db, provider: string, jobId: string): Promise<void> {
  await db
    .updateTable('provider_leases')
    .set({ touched_at: sql<Date>`now()` })
    .where('provider', '=', provider)
    .where('job_id', '=', jobId)
    .execute();
}

/** Frees the job's lease (or wait) on `provider`: its operation ended, or was never made. */
export async function releaseProviderLease(db: Db, jobId: string, provider: string): Promise<void> {
  await db
    .deleteFrom('provider_leases')
    .where('job_id', '=', jobId)
    .where('provider', '=', provider)
    .execute();
}

/**
 * The statement that frees what an ended job `jobId` had at the providers: its places in line,
 * and its leases but one whose operation still runs there as far as any check saw (a vlog
 * cancelled or timed out while Veo generated: Veo cannot stop a generation, and counts it
 * against the limit until it ends). Such a lease is refreshed by no one from then on and stops
 * counting once stale, as the lease of a job whose workflow is gone does. Answers the rows it
 * deleted.
 */
export function endedJobLeasesFreed(
  jobId: unknown,
): RawBuilder<{ provider: string; state: string }> {
  return sql`delete from provider_leases
    where job_id = ${jobId}
      and not (state = 'held' and exists (
        select 1 from provider_operations running
        where running.job_id = ${jobId} and running.outcome is null))
    returning provider, state`;
}

/** A job's lease on a provider's operations. */
export interface JobLease {
  jobId: string;
  provider: string;
}

/** An operation at a provider, of the job that submitted it. */
export interface JobOperation {
  jobId: string;
  operationName: string;
}

/**
 * The operations that ended jobs left running at `provider` under keys with `keyPart`, whose
 * leases are still held for them (endedJobLeasesFreed kept them) and still count (not stale
 * after `staleAfterMs`): at most `limit`, those of the leases refreshed longest ago first. Whom
 * the job reconciler asks the provider about.
 */
export async function listOperationsHoldingEndedJobsLeases(
  db: Db,
  {
    provider,
    keyPart,
    staleAfterMs,
    limit,
  }: { provider: string; keyPart: string; staleAfterMs: number; limit: number },
): Promise<JobOperation[]> {
  return db
    .selectFrom('provider_leases as lease')
    .innerJoin('jobs', 'jobs.id', 'lease.job_id')
    .innerJoin('provider_operations as operation', 'operation.job_id', 'lease.job_id')
    .select(['operation.job_id as jobId', 'operation.operation_name as operationName'])
    .where('lease.provider', '=', provider)
    .where('lease.state', '=', 'held')
    .where((eb) => eb.not(isStale(staleAfterMs, 'lease.')))
    .where('jobs.status', 'in', terminalStatuses)
    .where('operation.outcome', 'is', null)
    .where('operation.idempotency_key', 'like', `%${keyPart}%`)
    .orderBy('lease.touched_at')
    .orderBy('operation.created_at')
    .limit(limit)
    .execute();
}

/**
 * Frees what an ended job had at the providers (endedJobLeasesFreed); answers the providers
 * whose lease it gave back, those with an operation free for a waiter now.
 */
export async function releaseEndedJobLeases(db: Db, jobId: string): Promise<string[]> {
  const { rows } = await endedJobLeasesFreed(jobId).execute(db);
  return rows.filter((row) => row.state === 'held').map((row) => row.provider);
}

/**
 * Takes a job that will never ask again (it is being cancelled) out of every provider's waiting
 * line, so that the jobs behind it need not wait for its end; a lease it holds stays held until
 * then, as its operation may still run.
 */
export async function leaveProviderLines(db: Db, jobId: string): Promise<void> {
  await db
    .deleteFrom('provider_leases')
    .where('job_id', '=', jobId)
    .where('state', '=', 'waiting')
    .execute();
}

/**
 * The waiting jobs that would be granted a lease if they asked now (the first `limit` − held
 * in line): whom a job that gave its lease back wakes, instead of letting them find out on
 * their next recheck. Marks them as asking now. Only an owner's first `free` waiters can be among the first `free` in
 * line, so only those are put in order.
 */
export async function providerWaitersToWake(
  db: Db,
  provider: string,
  limit: number,
): Promise<string[]> {
  const free = limit - (await heldLeases(db, provider));
  if (free <= 0) return [];
  const { rows } = await sql<{ job_id: string }>`
    with holding as (
      select owner_id, count(*) as held
      from provider_leases
      where provider = ${provider} and state = 'held'
      group by owner_id
    ), owners as (
      select distinct owner_id
      from provider_leases
      where provider = ${provider} and state = 'waiting'
    ), firsts as (
      select first.job_id, first.requested_at, coalesce(holding.held, 0) + first.rank as turn
      from owners
      left join holding on holding.owner_id = owners.owner_id
      cross join lateral (
        select job_id, requested_at,
          row_number() over (order by requested_at, job_id) as rank
        from provider_leases
        where provider = ${provider} and state = 'waiting' and owner_id = owners.owner_id
        order by requested_at, job_id
        limit ${free}
      ) as first
    )
    select job_id from firsts order by turn, requested_at, job_id limit ${free}
  `.execute(db);
  const woken = rows.map((row) => row.job_id);
  // A woken job asks now: the pause it announced further back in line ends now, so one whose
  // workflow is gone goes stale from now instead of holding up the line until then. Only a
  // pause is cut short; a row is never made fresher than it was.
  if (woken.length > 0)
    await db
      .updateTable('provider_leases')
      .set({ asks_again_at: sql<Date>`now()` })
      .where('provider', '=', provider)
      .where('job_id', 'in', woken)
      .where('asks_again_at', '>', sql<Date>`now()`)
      .execute();
  return woken;
}

/** One provider's line at the governor, as the metrics report it. */
export interface ProviderLine {
  provider: string;
  /** Jobs waiting for one of its operations at once. */
  waiting: number;
  /** Its operations at once held by jobs. */
  held: number;
  /** How long the first job in line has waited, in seconds; 0 when none waits. */
  oldestWaitSeconds: number;
  /** What is left of its cool-down after a 429, in seconds; 0 when it may be called. */
  cooldownSeconds: number;
}

/**
 * Every provider the governor has met: its line (rows not stale only, as the line counts them)
 * and its cool-down. A provider with neither a row nor a cool-down ever is left out.
 */
export async function providerLines(db: Db, staleAfterMs: number): Promise<ProviderLine[]> {
  const { rows } = await sql<ProviderLine>`
    with lines as (
      select provider,
        count(*) filter (where state = 'waiting')::integer as waiting,
        count(*) filter (where state = 'held')::integer as held,
        coalesce(extract(epoch from now() - min(requested_at) filter (where state = 'waiting')), 0)::float8
          as "oldestWaitSeconds"
      from provider_leases
      where not ${isStale(staleAfterMs)}
      group by provider
    ), cooldowns as (
      select provider, greatest(0, extract(epoch from until - now()))::float8 as "cooldownSeconds"
      from provider_cooldowns
    )
    select provider,
      coalesce(lines.waiting, 0) as waiting,
      coalesce(lines.held, 0) as held,
      coalesce(lines."oldestWaitSeconds", 0) as "oldestWaitSeconds",
      coalesce(cooldowns."cooldownSeconds", 0) as "cooldownSeconds"
    from lines full join cooldowns using (provider)
    order by provider`.execute(db);
  return rows;
}

/** Leaves the provider alone for `ms` from now, everywhere; a longer cool-down already set stands. */
export async function startProviderCooldown(db: Db, provider: string, ms: number): Promise<void> {
  const until = sql<Date>`now() + make_interval(secs => ${ms / 1000})`;
  await db
    .insertInto('provider_cooldowns')
    .values({ provider, until })
    .onConflict((oc) =>
      oc
        .column('provider')
        .doUpdateSet({ until: sql<Date>`greatest(provider_cooldowns.until, excluded.until)` }),
    )
    .execute();
}

/** Milliseconds left of the provider's cool-down; 0 when it may be called. */
export async function providerCooldownRemainingMs(db: Db, provider: string): Promise<number> {
  const row = await db
    .selectFrom('provider_cooldowns')
    .select(sql<string>`greatest(0, ceil(extract(epoch from until - now()) * 1000))`.as('ms'))
    .where('provider', '=', provider)
    .executeTakeFirst();
  return row ? Number(row.ms) : 0;
}

/** A provider's request slot: when the request may go out. */
export interface ProviderRequestSlot {
  /** The slot's time in ms since the epoch, on the database's clock. */
  at: number;
  /** How far off it was when the database took it, in ms (0: now). */
  inMs: number;
}

/**
 * Takes the provider's next request slot: now, if the provider had no request for
 * `intervalMs`, else `intervalMs` after the slot taken before. One row a provider, moved on in
 * one statement, so the requests of every worker are spaced by the interval whatever handed
 * them out at once.
 */
export async function takeProviderRequestSlot(
  db: Db,
  provider: string,
  intervalMs: number,
): Promise<ProviderRequestSlot> {
  const interval = sql<string>`make_interval(secs => ${intervalMs / 1000})`;
  // clock_timestamp(), not now(): an upsert that waited for another's row lock must not take a
  // slot from the time its statement began.
  const row = await db
    .insertInto('provider_request_pacing')
    .values({ provider, next_at: sql<Date>`clock_timestamp() + ${interval}` })
    .onConflict((oc) =>
      oc.column('provider').doUpdateSet({
        next_at: sql<Date>`greatest(provider_request_pacing.next_at, clock_timestamp()) + ${interval}`,
      }),
    )
    .returning([
      sql<string>`extract(epoch from next_at) * 1000 - ${intervalMs}`.as('at'),
      sql<string>`greatest(0, extract(epoch from next_at - clock_timestamp()) * 1000 - ${intervalMs})`.as(
        'inMs',
      ),
    ])
    .executeTakeFirstOrThrow();
  return { at: Number(row.at), inMs: Number(row.inMs) };
}
