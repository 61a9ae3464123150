// The ledger charges a call once by its key, adds it to its job's actual cost, and the budget
// arithmetic counts a running job once: what it spent plus what its hold still allows for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  budgetUsage,
  closeCostHold,
  holdCost,
  recordLedgerEntry,
  voidEndOfJobCharge,
  type LedgerEntry,
} from '../../src/db/costs.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import { formatMoney, parseMoney } from '../../src/costs/money.js';
import { PriceBook } from '../../src/costs/prices.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('the cost ledger and holds', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  async function job(id: string, ownerId: string, estimatedCost: string) {
    await insertJob(
      test.db,
      {
        id,
        kind: 'vlog',
        type: 'VLOG',
        ownerId,
        input: { durationSeconds: 8 },
        idempotencyKey: null,
        requestFingerprint: null,
        createdAt: new Date().toISOString(),
        estimatedCost,
      },
      'pending',
    );
    await holdCost(test.db, { jobId: id, ownerId, amount: estimatedCost, attempt: 1 });
  }

  const entry = (jobId: string, key: string, cost: string): LedgerEntry => ({
    idempotencyKey: key,
    jobId,
    kind: 'video',
    provider: 'veo',
    model: 'veo-3.1-fast-generate-001',
    inputTokens: 0,
    outputTokens: 0,
    videoSeconds: 8,
    priceVersion: 'test',
    prices: { videoSeconds: '0.15' },
    cost,
    currency: 'USD',
  });

  const actualCost = async (jobId: string) =>
    (
      await test.db
        .selectFrom('jobs')
        .select('actual_cost')
        .where('id', '=', jobId)
        .executeTakeFirstOrThrow()
    ).actual_cost;

  it('charges a key once, whoever records it again, and adds it to the job', async () => {
    await job('vlog-once', 'ada', '2.00');
    const operation = entry('vlog-once', 'vlog-once:video:operations/1', '1.20');
    assert.equal(await recordLedgerEntry(test.db, operation), true);
    const again = await Promise.all([1, 2, 3].map(() => recordLedgerEntry(test.db, operation)));
    assert.deepEqual(again, [false, false, false]);
    assert.equal(parseMoney(await actualCost('vlog-once')), parseMoney('1.20'));
    const rows = await test.db
      .selectFrom('cost_ledger')
      .select(['owner_id', 'attempt'])
      .where('job_id', '=', 'vlog-once')
      .execute();
    assert.deepEqual(rows, [{ owner_id: 'ada', attempt: 1 }]);
    // A job with no row is not charged (nothing to tie the call to).
    assert.equal(await recordLedgerEntry(test.db, entry('no-such-job', 'k', '1.00')), false);
  });

  it("takes back a charge made at its job's end once, and no charge a provider reported", async () => {
    await job('vlog-void', 'cy', '2.00');
    const atEnd = {
      ...entry('vlog-void', 'vlog-void:video:operations/1', '1.20'),
      prices: { videoSeconds: '0.15', note: 'charged at the end of its job' },
    };
    const reported = entry('vlog-void', 'vlog-void:video:operations/2', '0.30');
    await recordLedgerEntry(test.db, atEnd);
    await recordLedgerEntry(test.db, reported);
    const reason = 'not billed: filtered';
    const voided = await Promise.all(
      [1, 2, 3].map(() =>
        voidEndOfJobCharge(test.db, { idempotencyKey: atEnd.idempotencyKey, reason }),
      ),
    );
    assert.deepEqual(
      voided.filter((charge) => charge !== null),
      [{ provider: atEnd.provider, kind: atEnd.kind, cost: '1.200000000' }],
      'taken back once, saying what it was',
    );
    assert.equal(
      await voidEndOfJobCharge(test.db, { idempotencyKey: reported.idempotencyKey, reason }),
      null,
    );
    assert.equal(parseMoney(await actualCost('vlog-void')), parseMoney('0.30'));
    const rows = await test.db
      .selectFrom('cost_ledger')
      .select(['idempotency_key', 'cost', 'prices'])
      .where('job_id', '=', 'vlog-void')
      .orderBy('idempotency_key')
      .execute();
    assert.deepEqual(
      rows.map((row) => [row.idempotency_key, parseMoney(String(row.cost)), row.prices]),
      [
        [atEnd.idempotencyKey, 0n, { ...atEnd.prices, voided: reason }],
        [reported.idempotencyKey, parseMoney('0.30'), reported.prices],
      ],
    );
  });

  it("reserves what a running job's hold still allows for, and nothing once it ended", async () => {
    await job('vlog-running', 'bea', '2.00');
    await job('vlog-over', 'bea', '0.50');
    assert.deepEqual(await budgetUsage(test.db, 'bea'), {
      spentToday: '0.000000000',
      spentThisMonth: '0.000000000',
      reserved: '2.500000000',
    });
    await recordLedgerEntry(test.db, entry('vlog-running', 'vlog-running:analysis', '0.000155'));
    // Spent more than it was estimated at: what it spent counts, its hold adds nothing more.
    await recordLedgerEntry(test.db, entry('vlog-over', 'vlog-over:video', '1.20'));
    const running = await budgetUsage(test.db, 'bea');
    assert.equal(running.spentToday, '1.200155000');
    assert.equal(running.reserved, '1.999845000');
    assert.equal(await closeCostHold(test.db, 'vlog-running', 1, 'released'), true);
    assert.equal(await closeCostHold(test.db, 'vlog-running', 1, 'settled'), false, 'closed once');
    assert.equal(await closeCostHold(test.db, 'vlog-over', 1, 'settled'), true);
    assert.deepEqual(await budgetUsage(test.db, 'bea'), {
      spentToday: '1.200155000',
      spentThisMonth: '1.200155000',
      reserved: '0.000000000',
    });
  });

  it("closes an ending job's holds up to its attempt in the update that ends it, a later one's never", async () => {
    await job('ai-ended', 'cai', '1.00');
    await holdCost(test.db, { jobId: 'ai-ended', ownerId: 'cai', amount: '1.00', attempt: 2 });
    const holds = () =>
      test.db
        .selectFrom('cost_holds')
        .select(['attempt', 'state'])
        .where('job_id', '=', 'ai-ended')
        .orderBy('attempt')
        .execute();
    const update = (seq: number, status: 'running' | 'completed', attempt: number) => ({
      jobId: 'ai-ended',
      seq,
      snapshot: {
        status,
        progress: status === 'completed' ? 100 : 0,
        phase: null,
        attempt,
        runId: 'run',
        startedAt: null,
        completedAt: null,
        result: null,
        error: null,
      },
    });
    assert.ok(await applyJobUpdate(test.db, update(1, 'running', 1)));
    assert.ok(
      await applyJobUpdate(test.db, update(2, 'completed', 1), { closeCostHolds: 'settled' }),
    );
    assert.deepEqual(await holds(), [
      { attempt: 1, state: 'settled' },
      { attempt: 2, state: 'held' },
    ]);
    // A repeated delivery applies nothing and closes nothing more.
    assert.equal(
      await applyJobUpdate(test.db, update(2, 'completed', 1), { closeCostHolds: 'released' }),
      null,
    );
    assert.deepEqual(await holds(), [
      { attempt: 1, state: 'settled' },
      { attempt: 2, state: 'held' },
    ]);
  });
});

describe('prices', () => {
  it('computes costs in exact decimals from the table, and from an operator override', () => {
    const table = new PriceBook();
    const gemini = table.charge({
      provider: 'gemini',
      model: 'gemini-2.5-flash',
      inputTokens: 1_234,
      outputTokens: 567,
    });
    // 1234 × 0.30 / 1e6 + 567 × 2.50 / 1e6, which a float sum gets wrong in its last digits.
    assert.equal(formatMoney(gemini.cost), '0.0017877');
    assert.equal(gemini.price.source, 'https://ai.google.dev/gemini-api/docs/pricing');
    const overridden = new PriceBook({ 'veo:*': { videoSeconds: '0.35' } }).charge({
      provider: 'veo',
      model: 'veo-3.1-fast-generate-001',
      videoSeconds: 8,
    });
    assert.equal(formatMoney(overridden.cost), '2.80');
    assert.match(overridden.price.version, /\+config$/);
    assert.equal(table.charge({ provider: 'local', model: 'ffmpeg', videoSeconds: 8 }).cost, 0n);
    assert.throws(() => new PriceBook({ 'veo:*': { videoSeconds: '-1' } }), /not a decimal/);
  });
});
