import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { MockActivityEnvironment } from '@temporalio/testing';
import { admitToProvider, awaitProviderRequestSlot } from '../../src/activities/provider-quota.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import {
  acquireProviderLease,
  listOperationsHoldingEndedJobsLeases,
  providerWaitersToWake,
  recordProviderRecheck,
  releaseEndedJobLeases,
  releaseProviderLease,
  startProviderCooldown,
  takeProviderRequestSlot,
} from '../../src/db/provider-quota.js';
import {
  recordOperationOutcome,
  recordProviderOperation,
} from '../../src/db/provider-operations.js';
import type { JobSnapshot } from '../../src/jobs/contracts.js';
import type { ProviderThrottle } from '../../src/jobs/provider-throttle.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';

describe('the provider-quota waiting list', () => {
  let test: TestDatabase;
  /** Statements sent so far. */
  let statements = 0;
  before(async () => {
    test = await createTestDatabase({ onQuery: () => (statements += 1) });
  });
  after(() => test.drop());

  const limit = 2;
  const lease = (jobId: string, ownerId: string) =>
    acquireProviderLease(test.db, {
      provider: 'veo',
      jobId,
      ownerId,
      limit,
      staleAfterMs: 60_000,
    });

  /** Asks for one of `provider`'s `limit` leases for a job of `ownerId`. */
  const askerFor =
    (provider: string, ownerId: string, limit = 1) =>
    (jobId: string) =>
      acquireProviderLease(test.db, { provider, jobId, ownerId, limit, staleAfterMs: 60_000 });
  /** Writes rows of vlogs of `ownerId`, accepted at `createdAt`. */
  const insertVlogs = async (ownerId: string, ids: string[], createdAt: string) => {
    for (const id of ids) {
      await insertJob(
        test.db,
        jobRecord({ id, kind: 'vlog', type: 'VLOG', ownerId, input: {}, createdAt }),
        'pending',
      );
    }
  };

  it("counts an owner's held leases as turns taken, so another owner's first job goes ahead of its waiters", async () => {
    assert.deepEqual(await lease('alice-1', 'alice'), { granted: true });
    assert.deepEqual(await lease('alice-2', 'alice'), { granted: true });
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 0, waiting: 1 });
    assert.deepEqual(await lease('alice-4', 'alice'), { granted: false, ahead: 1, waiting: 2 });
    // Alice holds both leases: Bob's first job waits in her third turn's place.
    assert.deepEqual(await lease('bob-1', 'bob'), { granted: false, ahead: 0, waiting: 3 });
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 1, waiting: 3 });
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), []);

    await releaseProviderLease(test.db, 'alice-1', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['bob-1']);
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 1, waiting: 3 });
    assert.deepEqual(await lease('bob-1', 'bob'), { granted: true });
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), []);

    // One lease each: Alice's next job is first in line again.
    await releaseProviderLease(test.db, 'alice-2', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['alice-3']);
    await releaseProviderLease(test.db, 'bob-1', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['alice-3', 'alice-4']);
  });
  it('keeps a place in line through the pause its job announced, and only until it is woken', async () => {
    const provider = 'pause-veo';
    const staleAfterMs = 60 * 60_000;
    const ask = (jobId: string) =>
      acquireProviderLease(test.db, { provider, jobId, ownerId: 'dana', limit: 1, staleAfterMs });
    const age = (jobId: string, touched: string, asksAgain: string | null) =>
      test.db
        .updateTable('provider_leases')
        .set({
          touched_at: sql<Date>`now() - ${touched}::interval`,
          asks_again_at: asksAgain === null ? null : sql<Date>`now() + ${asksAgain}::interval`,
        })
        .where('provider', '=', provider)
        .where('job_id', '=', jobId)
        .execute();
    assert.deepEqual(await ask('dana-0'), { granted: true });
    for (const id of ['dana-1', 'dana-2', 'dana-3', 'dana-4'])
      assert.equal((await ask(id)).granted, false);
    // Last asked two hours ago, an hour past the staleness: dana-1 said it would ask again in
    // an hour, dana-2 said so three hours ago, dana-3 said nothing (a row from before the pause).
    await age('dana-1', '2 hours', '1 hour');
    await age('dana-2', '2 hours', '-3 hours');
    await age('dana-3', '2 hours', null);
    assert.deepEqual(await ask('dana-4'), { granted: false, ahead: 1, waiting: 2 });

    // Woken, dana-1 is asking now: were its workflow gone, its place would go stale an hour and
    // a half later, not hold up the line until the end of the pause it announced.
    await releaseProviderLease(test.db, 'dana-0', provider);
    assert.deepEqual(await providerWaitersToWake(test.db, provider, 1), ['dana-1']);
    await test.db
      .updateTable('provider_leases')
      .set({
        touched_at: sql<Date>`touched_at - interval '90 minutes'`,
        asks_again_at: sql<Date>`asks_again_at - interval '90 minutes'`,
      })
      .where('job_id', '=', 'dana-1')
      .execute();
    assert.deepEqual(await ask('dana-4'), { granted: true });
    const left = await test.db
      .selectFrom('provider_leases')
      .select('job_id')
      .where('provider', '=', provider)
      .orderBy('job_id')
      .execute();
    assert.deepEqual(
      left.map((row) => row.job_id),
      ['dana-4'],
      'the ask under the lock dropped the stale places',
    );
  });

  it('answers a waiting job the pause its row keeps its place for, longer further back', async () => {
    const provider = 'admit-veo';
    const quotas = {
      videoOperations: { provider, maxConcurrent: 2, requestsPerSecond: null },
      textProvider: 'text',
      analysisProvider: null,
      recheckMs: 10_000,
      rateLimitCooldownMs: 30_000,
    };
    const admit = (jobId: string) =>
      admitToProvider({ db: test.db, quotas, provider, jobId, ownerId: 'fay', maxConcurrent: 2 });
    assert.equal(await admit('fay-0'), null);
    assert.equal(await admit('fay-1'), null);
    const answers = [];
    for (let i = 2; i < 8; i += 1) answers.push(await admit(`fay-${i}`));
    assert.deepEqual(
      answers.map((answer) => [answer?.ahead, answer?.retryAfterMs]),
      [
        [0, 10_000],
        [1, 10_000],
        [2, 40_000],
        [3, 40_000],
        [4, 90_000],
        [5, 90_000],
      ],
    );
    const rows = await test.db
      .selectFrom('provider_leases')
      .select([
        'job_id',
        sql<string>`round(extract(epoch from asks_again_at - touched_at))`.as('pauseSeconds'),
      ])
      .where('provider', '=', provider)
      .where('state', '=', 'waiting')
      .orderBy('job_id')
      .execute();
    assert.deepEqual(
      rows.map((row) => Number(row.pauseSeconds)),
      [10, 10, 40, 40, 90, 90],
    );
  });

  // A cool-down longer than the 30 min a place is kept unrefreshed (a day's quota spent) made
  // every waiter look terminated: its place was dropped, and the metrics counted no one waiting.
  it("keeps a waiting job's place through a cool-down, each ask refreshing it", async () => {
    const provider = 'cooling-veo';
    const quotas = {
      videoOperations: { provider, maxConcurrent: 1, requestsPerSecond: null },
      textProvider: 'text',
      analysisProvider: null,
      recheckMs: 10_000,
      rateLimitCooldownMs: 30_000,
    };
    const admit = (jobId: string) =>
      admitToProvider({ db: test.db, quotas, provider, jobId, ownerId: 'gil', maxConcurrent: 1 });
    assert.equal(await admit('gil-1'), null);
    assert.equal((await admit('gil-2'))?.reason, 'quota');
    await sql`update provider_leases set asks_again_at = now() - interval '1 hour'
      where provider = ${provider} and job_id = 'gil-2'`.execute(test.db);
    await startProviderCooldown(test.db, provider, 600_000);
    assert.equal((await admit('gil-2'))?.reason, 'rate-limited');
    const [row] = await test.db
      .selectFrom('provider_leases')
      .select(['state', sql<boolean>`asks_again_at > now()`.as('refreshed')])
      .where('provider', '=', provider)
      .where('job_id', '=', 'gil-2')
      .execute();
    assert.deepEqual(row, { state: 'waiting', refreshed: true });
  });

  it('records the pause of a waiting job only: a job holding its lease keeps no pause', async () => {
    const provider = 'held-veo';
    const ask = askerFor(provider, 'erin');
    assert.deepEqual(await ask('erin-1'), { granted: true });
    await recordProviderRecheck(test.db, { provider, jobId: 'erin-1', inMs: 3_600_000 });
    assert.deepEqual(await ask('erin-2'), { granted: false, ahead: 0, waiting: 1 });
    await recordProviderRecheck(test.db, { provider, jobId: 'erin-2', inMs: 3_600_000 });
    const rows = await test.db
      .selectFrom('provider_leases')
      .select(['job_id', sql<boolean>`asks_again_at > now()`.as('pausing')])
      .where('provider', '=', provider)
      .orderBy('job_id')
      .execute();
    assert.deepEqual(rows, [
      { job_id: 'erin-1', pausing: null },
      { job_id: 'erin-2', pausing: true },
    ]);
    // Asking again clears the pause until the answer records the next one.
    await ask('erin-2');
    const [asked] = await test.db
      .selectFrom('provider_leases')
      .select('asks_again_at')
      .where('job_id', '=', 'erin-2')
      .execute();
    assert.equal(asked?.asks_again_at, null);

    // A job's end says which providers had an operation freed: a waiter's place frees none.
    assert.deepEqual(await releaseEndedJobLeases(test.db, 'erin-2'), []);
    assert.deepEqual(await releaseEndedJobLeases(test.db, 'erin-1'), [provider]);
  });

  it("frees an ending job's lease and place in line with its last update, in the same statement", async () => {
    const createdAt = new Date().toISOString();
    const snapshot = (status: JobSnapshot['status']) =>
      jobSnapshot({ status, startedAt: createdAt });
    await insertVlogs('carol', ['carol-1', 'carol-2'], createdAt);
    const carol = askerFor('carol-veo', 'carol');
    assert.deepEqual(await carol('carol-1'), { granted: true });
    assert.deepEqual(await carol('carol-2'), { granted: false, ahead: 0, waiting: 1 });
    const leases = () =>
      test.db
        .selectFrom('provider_leases')
        .select('job_id')
        .where('provider', '=', 'carol-veo')
        .orderBy('job_id')
        .execute();

    // An update in flight keeps them.
    await applyJobUpdate(test.db, { jobId: 'carol-1', seq: 1, snapshot: snapshot('generating') });
    await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 1, snapshot: snapshot('generating') });
    assert.deepEqual(await leases(), [{ job_id: 'carol-1' }, { job_id: 'carol-2' }]);

    // The end frees the lease in the update's own statement, and the waiting job's place once
    // it ends too, even when its end is a repeat the row no longer takes.
    const before = statements;
    assert.notEqual(
      await applyJobUpdate(test.db, { jobId: 'carol-1', seq: 2, snapshot: snapshot('completed') }),
      null,
    );
    assert.equal(statements - before, 1);
    assert.deepEqual(await leases(), [{ job_id: 'carol-2' }]);
    await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 2, snapshot: snapshot('cancelled') });
    await carol('carol-2');
    assert.equal(
      await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 2, snapshot: snapshot('cancelled') }),
      null,
    );
    assert.deepEqual(await leases(), []);
  });

  it('keeps the lease of a job that ends while its operation still runs at the provider, which counts it', async () => {
    const provider = 'frank-veo';
    const ask = askerFor(provider, 'frank');
    const leases = () =>
      test.db
        .selectFrom('provider_leases')
        .select(['job_id', 'state'])
        .where('provider', '=', provider)
        .orderBy('job_id')
        .execute();
    const createdAt = new Date().toISOString();
    await insertVlogs('frank', ['frank-1', 'frank-2', 'frank-3'], createdAt);
    const cancelled = jobSnapshot({
      status: 'cancelled',
      startedAt: createdAt,
      completedAt: createdAt,
    });
    const generating = (jobId: string) =>
      recordProviderOperation(test.db, {
        idempotencyKey: `${jobId}:video-generation:1`,
        jobId,
        operationName: `operations/${jobId}`,
      });

    // Cancelled while its generation runs: Veo goes on with it, so the lease stays held and the
    // next job in line waits, whether the workflow's last update or the reconciler ends the job.
    assert.deepEqual(await ask('frank-1'), { granted: true });
    await generating('frank-1');
    assert.equal((await ask('frank-2')).granted, false);
    await applyJobUpdate(test.db, { jobId: 'frank-1', seq: 1, snapshot: cancelled });
    assert.deepEqual(await releaseEndedJobLeases(test.db, 'frank-1'), []);
    assert.deepEqual(await leases(), [
      { job_id: 'frank-1', state: 'held' },
      { job_id: 'frank-2', state: 'waiting' },
    ]);
    assert.deepEqual(await ask('frank-2'), { granted: false, ahead: 0, waiting: 1 });

    // Once a check has seen its generation end, the end of the job frees the lease.
    await recordOperationOutcome(test.db, {
      jobId: 'frank-1',
      operationName: 'operations/frank-1',
      outcome: 'succeeded',
    });
    assert.deepEqual(await releaseEndedJobLeases(test.db, 'frank-1'), [provider]);
    assert.deepEqual(await ask('frank-2'), { granted: true });

    // A waiting job's place goes with its end, whatever its operations.
    await generating('frank-3');
    assert.equal((await ask('frank-3')).granted, false);
    await applyJobUpdate(test.db, { jobId: 'frank-3', seq: 1, snapshot: cancelled });
    assert.deepEqual(await leases(), [{ job_id: 'frank-2', state: 'held' }]);
  });

  it('lists for the reconciler the operations that ended jobs left running on leases that still count', async () => {
    const provider = 'gina-veo';
    const ask = askerFor(provider, 'gina', 10);
    const createdAt = new Date().toISOString();
    const ids = ['gina-ended', 'gina-live', 'gina-seen', 'gina-stale'];
    await insertVlogs('gina', ids, createdAt);
    for (const jobId of ids) {
      assert.deepEqual(await ask(jobId), { granted: true });
      await recordProviderOperation(test.db, {
        idempotencyKey: `${jobId}:video-generation:1`,
        jobId,
        operationName: `operations/${jobId}`,
      });
    }
    await recordOperationOutcome(test.db, {
      jobId: 'gina-seen',
      operationName: 'operations/gina-seen',
      outcome: 'failed',
    });
    await test.db
      .updateTable('provider_leases')
      .set({ touched_at: sql<Date>`now() - interval '2 hours'` })
      .where('job_id', '=', 'gina-stale')
      .execute();
    const ended = jobSnapshot({
      status: 'cancelled',
      startedAt: createdAt,
      completedAt: createdAt,
    });
    for (const jobId of ['gina-ended', 'gina-stale']) {
      await applyJobUpdate(test.db, { jobId, seq: 1, snapshot: ended });
    }
    // The seen operation's job ends last: its lease goes with it.
    await applyJobUpdate(test.db, { jobId: 'gina-seen', seq: 1, snapshot: ended });

    const list = (keyPart: string, staleAfterMs = 3_600_000) =>
      listOperationsHoldingEndedJobsLeases(test.db, { provider, keyPart, staleAfterMs, limit: 10 });
    assert.deepEqual(await list(':video-generation:'), [
      { jobId: 'gina-ended', operationName: 'operations/gina-ended' },
    ]);
    // Counted still when leases go stale later, the quiet one comes first.
    assert.deepEqual(await list(':video-generation:', 3 * 3_600_000), [
      { jobId: 'gina-stale', operationName: 'operations/gina-stale' },
      { jobId: 'gina-ended', operationName: 'operations/gina-ended' },
    ]);
    assert.deepEqual(await list(':other-operation:'), []);
  });
});

describe("a provider's request slots", () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  it('spaces the slots taken at once by the interval, one row a provider', async () => {
    const intervalMs = 1_000;
    const slots = (
      await Promise.all(
        Array.from({ length: 4 }, () => takeProviderRequestSlot(test.db, 'veo', intervalMs)),
      )
    ).sort((a, b) => a.at - b.at);
    assert.equal(slots[0]!.inMs, 0, 'the first slot is now');
    for (let index = 1; index < slots.length; index += 1) {
      const slot = slots[index]!;
      const before = slots[index - 1]!;
      assert.ok(Math.abs(slot.at - before.at - intervalMs) < 0.01, JSON.stringify(slots));
      // Counted when its statement ran, a few milliseconds after the one before.
      const gap = slot.inMs - before.inMs;
      assert.ok(gap > intervalMs - 100 && gap <= intervalMs, JSON.stringify(slots));
    }
    assert.equal((await takeProviderRequestSlot(test.db, 'gemini', intervalMs)).inMs, 0);
  });

  // A request admitted before another worker's 429, then sent after its slot's wait, went out
  // inside the cool-down, drew a 429 of its own and started the cool-down over.
  it('answers the cool-down a 429 started while a request waited for its slot, instead of a go', async () => {
    const pacing = { provider: 'veo-cooling', requestsPerSecond: 2 };
    const env = new MockActivityEnvironment();
    assert.equal(await env.run(() => awaitProviderRequestSlot(test.db, pacing)), null);
    // The next slot is half a second away; meanwhile another request is refused with a 429.
    const waiting = env.run(() => awaitProviderRequestSlot(test.db, pacing));
    await startProviderCooldown(test.db, pacing.provider, 30_000);
    const paused = (await waiting) as ProviderThrottle | null;
    assert.equal(paused?.reason, 'rate-limited', JSON.stringify(paused));
    assert.ok(paused.retryAfterMs > 0, JSON.stringify(paused));
  });
});
