// The provider-quota governor's shared state: leases on a provider's concurrent operations and
// the cool-down a 429 starts. In the database, so a limit holds across every worker process.
import { sql } from 'kysely';
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

export type LeaseAnswer = { granted: true } | { granted: false; ahead: number };

/**
 * The provider's waiting list in the order leases go out: in turns per owner, where an owner's
 * leases held count as turns taken (an owner holding three leases waits in its fourth turn),
 * oldest first within a turn. So one owner's thousand jobs do not starve another's one: a
 * newcomer's first job goes ahead of the waiters of an owner whose jobs hold the leases.
 */
const waitingInTurns = (provider: string) => sql<{ job_id: string; ahead: string }>`
  with holding as (
    select owner_id, count(*) as held
    from provider_leases
    where provider = ${provider} and state = 'held'
    group by owner_id
  ), turns as (
    select waiting.job_id, waiting.requested_at,
      coalesce(holding.held, 0)
        + row_number() over (
          partition by waiting.owner_id order by waiting.requested_at, waiting.job_id
        ) as turn
    from provider_leases waiting
    left join holding on holding.owner_id = waiting.owner_id
    where waiting.provider = ${provider} and waiting.state = 'waiting'
  )
  select job_id, row_number() over (order by turn, requested_at, job_id) - 1 as ahead
  from turns
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
 * Takes one of the provider's `limit` leases for the job, or puts it on the waiting list
 * (`waitingInTurns` orders it). A job that already holds a lease keeps it. Answers how many
 * waiters are ahead when no lease is free.
 */
export async function acquireProviderLease(db: Db, request: LeaseRequest): Promise<LeaseAnswer> {
  const { provider, jobId, ownerId, limit, staleAfterMs } = request;
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`provider-leases:${provider}`}))`.execute(tx);
    await tx
      .deleteFrom('provider_leases')
      .where('provider', '=', provider)
      .where('touched_at', '<', sql<Date>`now() - make_interval(secs => ${staleAfterMs / 1000})`)
      .execute();
    const mine = await tx
      .insertInto('provider_leases')
      .values({ provider, job_id: jobId, owner_id: ownerId, state: 'waiting' })
      .onConflict((oc) =>
        oc.columns(['provider', 'job_id']).doUpdateSet({ touched_at: sql<Date>`now()` }),
      )
      .returning('state')
      .executeTakeFirstOrThrow();
    if (mine.state === 'held') return { granted: true };
    const held = await heldLeases(tx, provider);
    const { rows } = await sql<{ ahead: string }>`
      select ahead from (${waitingInTurns(provider)}) as ordered where job_id = ${jobId}
    `.execute(tx);
    const ahead = Number(rows[0]?.ahead ?? 0);
    if (ahead >= limit - held) return { granted: false, ahead };
    await tx
      .updateTable('provider_leases')
      .set({ state: 'held', touched_at: sql<Date>`now()` })
      .where('provider', '=', provider)
      .where('job_id', '=', jobId)
      .execute();
    return { granted: true };
  });
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
        .doUpdateSet({ state: 'held', touched_at: sql<Date>`now()` }),
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

/** Frees the job's lease (or wait) on one provider, or on every provider when none is named. */
export async function releaseProviderLeases(
  db: Db,
  jobId: string,
  provider?: string,
): Promise<void> {
  let query = db.deleteFrom('provider_leases').where('job_id', '=', jobId);
  if (provider !== undefined) query = query.where('provider', '=', provider);
  await query.execute();
}

/**
 * The waiting jobs that would be granted a lease if they asked now (the first `limit` − held
 * in line): whom a job that gave its lease back wakes, instead of letting them find out on
 * their next recheck.
 */
export async function providerWaitersToWake(
  db: Db,
  provider: string,
  limit: number,
): Promise<string[]> {
  const free = limit - (await heldLeases(db, provider));
  if (free <= 0) return [];
  const { rows } = await sql<{ job_id: string }>`
    select job_id from (${waitingInTurns(provider)}) as ordered
    where ahead < ${free}
    order by ahead
  `.execute(db);
  return rows.map((row) => row.job_id);
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
