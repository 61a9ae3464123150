import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import {
  acquireProviderLease,
  providerWaitersToWake,
  type LeaseAnswer,
  type LeaseRequest,
} from '../../src/db/provider-quota.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The waiting list's order as the governor defined it before it was computed from per-owner
 * counts: both window sorts over every waiter. The reference the new answers must equal.
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

/** The governor's ask before: under the provider's lock, the whole list sorted. */
async function acquireBefore(db: Db, request: LeaseRequest): Promise<LeaseAnswer> {
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
    const { held } = await tx
      .selectFrom('provider_leases')
      .select((eb) => eb.fn.countAll<string>().as('held'))
      .where('provider', '=', provider)
      .where('state', '=', 'held')
      .executeTakeFirstOrThrow();
    const { rows } = await sql<{ ahead: string; waiting: string }>`
      select ahead, waiting from (
        select job_id, ahead, count(*) over () as waiting from (${waitingInTurns(provider)}) as line
      ) as ordered
      where job_id = ${jobId}
    `.execute(tx);
    const ahead = Number(rows[0]?.ahead ?? 0);
    if (ahead >= limit - Number(held))
      return { granted: false, ahead, waiting: Number(rows[0]?.waiting ?? 0) };
    await tx
      .updateTable('provider_leases')
      .set({ state: 'held', touched_at: sql<Date>`now()` })
      .where('provider', '=', provider)
      .where('job_id', '=', jobId)
      .execute();
    return { granted: true };
  });
}

/** Stops a transaction after the reads it made, so a reference look changes nothing. */
class Rollback extends Error {}

const staleAfterMs = 60 * 60_000;

interface Row {
  job_id: string;
  owner_id: string;
  state: 'held' | 'waiting';
  /** Refreshed now; not for two hours (stale); or two hours ago, but it asks again later. */
  freshness: 'fresh' | 'stale' | 'pausing' | 'overdue';
  stale: boolean;
}

const freshnesses = [
  'fresh',
  'fresh',
  'fresh',
  'fresh',
  'fresh',
  'stale',
  'pausing',
  'overdue',
] as const;

/**
 * A random list: up to five owners, some leases held, requests at few distinct instants (so
 * many tie and the job id decides), some rows nobody refreshed and some whose job said it
 * would ask again later.
 */
async function fillRandomList(db: Db, provider: string): Promise<Row[]> {
  const owners = ['alice', 'bob', 'carol', 'dave', 'erin'].slice(0, 1 + randomInt(5));
  const rows: Row[] = [];
  const count = 1 + randomInt(40);
  for (let i = 0; i < count; i += 1) {
    const freshness = freshnesses[randomInt(freshnesses.length)]!;
    rows.push({
      job_id: `job-${randomInt(1_000_000).toString(36)}-${i}`,
      owner_id: owners[randomInt(owners.length)]!,
      state: randomInt(4) === 0 ? 'held' : 'waiting',
      freshness,
      stale: freshness === 'stale' || freshness === 'overdue',
    });
  }
  await db
    .insertInto('provider_leases')
    .values(
      rows.map((row) => ({
        provider,
        job_id: row.job_id,
        owner_id: row.owner_id,
        state: row.state,
        requested_at: sql<Date>`timestamptz '2026-01-01' + make_interval(secs => ${randomInt(4)})`,
        touched_at:
          row.freshness === 'fresh' ? sql<Date>`now()` : sql<Date>`now() - interval '2 hours'`,
        asks_again_at: {
          fresh: null,
          stale: null,
          pausing: sql<Date>`now() + interval '1 hour'`,
          overdue: sql<Date>`now() - interval '90 minutes'`,
        }[row.freshness],
      })),
    )
    .execute();
  return rows;
}

/** The reference order with the stale rows dropped first, as the old ask did; nothing changes. */
async function referenceAhead(db: Db, provider: string): Promise<Map<string, number>> {
  let order = new Map<string, number>();
  await db
    .transaction()
    .execute(async (tx) => {
      await tx
        .deleteFrom('provider_leases')
        .where('provider', '=', provider)
        .where(
          sql<boolean>`greatest(touched_at, asks_again_at)
            < now() - make_interval(secs => ${staleAfterMs / 1000})`,
        )
        .execute();
      const { rows } = await waitingInTurns(provider).execute(tx);
      order = new Map(rows.map((row) => [row.job_id, Number(row.ahead)]));
      throw new Rollback();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Rollback)) throw error;
    });
  return order;
}

describe('the provider-quota waiting list computed from per-owner counts', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  it('answers every waiter the place the sorted list gives it, with held leases, ties, stale and pausing rows', async () => {
    for (let round = 0; round < 60; round += 1) {
      const provider = `veo-${round}`;
      const rows = await fillRandomList(test.db, provider);
      const reference = await referenceAhead(test.db, provider);
      const held = rows.filter((row) => row.state === 'held' && !row.stale).length;
      for (const row of rows.filter((r) => r.state === 'waiting' && !r.stale)) {
        // With every lease held the ask is answered without the lock and grants nothing.
        const answer = await acquireProviderLease(test.db, {
          provider,
          jobId: row.job_id,
          ownerId: row.owner_id,
          limit: held,
          staleAfterMs,
        });
        assert.deepEqual(
          answer,
          { granted: false, ahead: reference.get(row.job_id), waiting: reference.size },
          `${provider} ${row.job_id} in ${JSON.stringify(rows)}`,
        );
      }
    }
  });

  it('wakes the first waiters of the sorted list, as many as leases are free', async () => {
    for (let round = 0; round < 60; round += 1) {
      const provider = `wake-${round}`;
      const rows = await fillRandomList(test.db, provider);
      // Whom a freed lease wakes was read with the stale rows still in line.
      const { rows: ordered } = await waitingInTurns(provider).execute(test.db);
      const inLine = ordered.sort((a, b) => Number(a.ahead) - Number(b.ahead));
      const held = rows.filter((row) => row.state === 'held').length;
      for (const free of [1, 2, 5]) {
        assert.deepEqual(
          await providerWaitersToWake(test.db, provider, held + free),
          inLine.slice(0, free).map((row) => row.job_id),
          `${provider} free ${free} in ${JSON.stringify(rows)}`,
        );
      }
    }
  });

  it('grants a lease to a waiter the sorted list puts within the free leases, under the lock', async () => {
    for (let round = 0; round < 30; round += 1) {
      const provider = `grant-${round}`;
      const rows = await fillRandomList(test.db, provider);
      const waiting = rows.filter((row) => row.state === 'waiting' && !row.stale);
      if (waiting.length === 0) continue;
      const reference = await referenceAhead(test.db, provider);
      const held = rows.filter((row) => row.state === 'held' && !row.stale).length;
      const asker = waiting[randomInt(waiting.length)]!;
      const free = 1 + randomInt(3);
      const ahead = reference.get(asker.job_id)!;
      assert.deepEqual(
        await acquireProviderLease(test.db, {
          provider,
          jobId: asker.job_id,
          ownerId: asker.owner_id,
          limit: held + free,
          staleAfterMs,
        }),
        ahead < free ? { granted: true } : { granted: false, ahead, waiting: reference.size },
      );
    }
  });

  it('measures one ask with ten thousand waiters, before and after (printed, not asserted)', async () => {
    const provider = 'veo-scale';
    const limit = 10;
    await sql`
      insert into provider_leases (provider, job_id, owner_id, state, requested_at)
      select ${provider}, 'big-' || lpad(i::text, 5, '0'), 'big',
        case when i <= ${limit} then 'held' else 'waiting' end,
        timestamptz '2026-01-01' + make_interval(secs => i)
      from generate_series(1, 10000 + ${limit}) as i
    `.execute(test.db);
    await sql`
      insert into provider_leases (provider, job_id, owner_id, state, requested_at)
      select ${provider}, 'small-' || i, 'small', 'waiting',
        timestamptz '2026-01-02' + make_interval(secs => i)
      from generate_series(1, 3) as i
    `.execute(test.db);
    await sql`analyze provider_leases`.execute(test.db);
    const askers = [
      { jobId: 'big-10010', ownerId: 'big' },
      { jobId: 'big-05000', ownerId: 'big' },
      { jobId: 'small-3', ownerId: 'small' },
    ];
    const timings = { before: [] as number[], after: [] as number[] };
    for (let i = 0; i < 30; i += 1) {
      for (const asker of askers) {
        const request = { provider, ...asker, limit, staleAfterMs };
        let start = performance.now();
        const old = await acquireBefore(test.db, request);
        timings.before.push(performance.now() - start);
        start = performance.now();
        assert.deepEqual(await acquireProviderLease(test.db, request), old);
        timings.after.push(performance.now() - start);
      }
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
    const [beforeMs, afterMs] = [median(timings.before), median(timings.after)];
    console.log(
      `one ask, 10,000 waiters: before ${beforeMs.toFixed(2)} ms, after ${afterMs.toFixed(2)} ms` +
        ` (median of ${timings.after.length}), before/after ${(beforeMs / afterMs).toFixed(1)}`,
    );
    // Asks at once, as the worker's workflow-task slots make them (five: the test pool's size).
    const asksPerSecond = async (ask: typeof acquireBefore) => {
      const start = performance.now();
      await Promise.all(
        Array.from({ length: 5 }, async (_, slot) => {
          for (let i = 0; i < 12; i += 1) {
            await ask(test.db, { provider, ...askers[(slot + i) % 3]!, limit, staleAfterMs });
          }
        }),
      );
      return 60 / ((performance.now() - start) / 1000);
    };
    const [beforeRate, afterRate] = [
      await asksPerSecond(acquireBefore),
      await asksPerSecond(acquireProviderLease),
    ];
    console.log(
      `5 askers at once: before ${beforeRate.toFixed(0)} asks/s, after ${afterRate.toFixed(0)}` +
        ` asks/s, after/before ${(afterRate / beforeRate).toFixed(1)}`,
    );
  });
});
