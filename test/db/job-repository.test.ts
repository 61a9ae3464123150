import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { JobSnapshot } from '../../src/jobs/contracts.js';
import {
  applyJobUpdate,
  countJobsInFlight,
  dropExpiredReservations,
  endJobInFlight,
  findJobsToReconcile,
  followResetRun,
  findOwnedJob,
  insertJob,
  isIdempotencyKeyReserved,
  listOwnedJobs,
  releaseReservation,
  reserveJob,
  waitingJobsByKind,
  type JobCursor,
} from '../../src/db/jobs.js';
import { openDatabase } from '../../src/db/database.js';
import { appendJobOutput, readJobEvents } from '../../src/db/job-events.js';
import { countRequestInWindow } from '../../src/db/rate-limit-windows.js';
import { jobEventId } from '../../src/jobs/job-event.js';
import { eventually } from '../support/eventually.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';

describe('job repository', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  it('inserts a job once, whoever writes it first', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await insertJob(test.db, { ...job, input: { other: true } }, 'pending');
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.deepEqual(row?.input, job.input);
    assert.equal(row?.created_at.toISOString(), job.createdAt);
  });

  it('hides a job from every user but its owner', async () => {
    const job = jobRecord({ ownerId: 'alice' });
    await insertJob(test.db, job, 'pending');
    assert.equal(await findOwnedJob(test.db, 'bob', job.id), undefined);
    assert.ok(await findOwnedJob(test.db, 'alice', job.id));
  });

  it('reads and writes jobs with statements prepared once a connection, which survive a column added by a migration', async () => {
    const scratch = await createTestDatabase();
    // One connection: the session whose prepared statements the test reads is the reader's.
    const db = await openDatabase({ databaseUrl: scratch.url, dataDir: '.', maxConnections: 1 });
    try {
      const job = jobRecord();
      assert.equal((await insertJob(db, job, 'pending'))?.id, job.id);
      assert.equal((await findOwnedJob(db, 'alice', job.id))?.id, job.id);
      const { rows } = await sql<{
        statement: string;
      }>`select statement from pg_prepared_statements`.execute(db);
      const statements = rows.map((row) => row.statement);
      assert.equal(statements.length, 2);
      assert.ok(
        statements.some((text) => /from "jobs" where "id" = any\(\$1::text\[\]\)/.test(text)),
      );
      assert.ok(statements.some((text) => /insert into "jobs"/.test(text)));
      await sql`alter table jobs add column added_later text`.execute(db);
      assert.equal((await findOwnedJob(db, 'alice', job.id))?.id, job.id);
      const later = jobRecord();
      assert.equal((await insertJob(db, later, 'pending'))?.id, later.id);
      assert.equal(await insertJob(db, later, 'pending'), undefined);
    } finally {
      await db.destroy();
      await scratch.drop();
    }
  });

  it('applies updates in sequence order, ignores late ones, and says what each changed', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    const first = await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ progress: 50 }),
    });
    assert.ok(first);
    assert.deepEqual(
      [first.kind, first.type, first.previousStatus],
      [job.kind, job.type, 'pending'],
    );
    assert.ok(first.secondsInPreviousStatus !== null && first.secondsInPreviousStatus >= 0);
    // A retried activity delivering an older update must not move the job backwards.
    assert.equal(
      await applyJobUpdate(test.db, {
        jobId: job.id,
        seq: 1,
        snapshot: jobSnapshot({ progress: 10 }),
      }),
      null,
    );
    assert.equal(
      await applyJobUpdate(test.db, {
        jobId: job.id,
        seq: 2,
        snapshot: jobSnapshot({ progress: 50 }),
      }),
      null,
    );
    const done = jobSnapshot({
      status: 'completed',
      progress: 100,
      completedAt: '2026-01-01T00:00:05.000Z',
      result: { ok: true },
    });
    const completed = await applyJobUpdate(test.db, { jobId: job.id, seq: 3, snapshot: done });
    assert.ok(completed);
    assert.equal(completed.previousStatus, 'running');
    // Time in a status runs from the update that entered it, a moment ago.
    assert.ok(
      completed.secondsInPreviousStatus !== null && completed.secondsInPreviousStatus < 60,
      String(completed.secondsInPreviousStatus),
    );
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.equal(row?.status, 'completed');
    assert.equal(row?.progress, 100);
    assert.equal(row?.projection_seq, 3);
    assert.deepEqual(row?.result, { ok: true });
    assert.equal(row?.completed_at?.toISOString(), '2026-01-01T00:00:05.000Z');
  });

  it('measures the time in a status from the change that entered it, through progress updates', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await applyJobUpdate(test.db, { jobId: job.id, seq: 1, snapshot: jobSnapshot() });
    // As if the job had entered `running` 100 s ago.
    await sql`update jobs set status_changed_at = now() - interval '100 seconds' where id = ${job.id}`.execute(
      test.db,
    );
    const progress = await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ progress: 50 }),
    });
    assert.equal(progress?.previousStatus, 'running');
    const ended = await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 3,
      snapshot: jobSnapshot({ status: 'completed', progress: 100 }),
    });
    assert.equal(ended?.previousStatus, 'running');
    assert.ok(
      ended.secondsInPreviousStatus !== null && ended.secondsInPreviousStatus >= 100,
      String(ended.secondsInPreviousStatus),
    );
    const next = await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 4,
      snapshot: jobSnapshot({ status: 'running', attempt: 2 }),
    });
    // A retry leaves `completed`'s time, counted afresh from the end.
    assert.equal(next?.previousStatus, 'completed');
    assert.ok(next.secondsInPreviousStatus !== null && next.secondsInPreviousStatus < 60);
  });

  it('logs exactly the states the row went through, in order, typed status or progress', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await insertJob(test.db, job, 'pending');
    const updates: [number, Partial<JobSnapshot>][] = [
      [1, { status: 'running', progress: 10 }],
      [3, { status: 'running', progress: 60, phase: 'rendering' }],
      // Late deliveries of older or repeated updates change neither the row nor the log.
      [2, { status: 'running', progress: 30 }],
      [3, { status: 'running', progress: 60, phase: 'rendering' }],
      [4, { status: 'failed', error: { code: 'BOOM', message: 'it broke' } }],
    ];
    for (const [seq, change] of updates) {
      await applyJobUpdate(test.db, { jobId: job.id, seq, snapshot: jobSnapshot(change) });
    }
    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: -1 }], 100);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.type, event.status, event.progress, event.phase]),
      [
        [0, 'status', 'pending', 0, null],
        [1, 'status', 'running', 10, null],
        [3, 'progress', 'running', 60, 'rendering'],
        [4, 'status', 'failed', 0, null],
      ],
    );
    assert.deepEqual(log.at(-1)?.event.error, { code: 'BOOM', message: 'it broke' });

    // Readers of several jobs are served by one query, each from its own position and limit.
    const other = jobRecord();
    await insertJob(test.db, other, 'pending');
    const read = await readJobEvents(
      test.db,
      [
        { jobId: job.id, afterSeq: 1 },
        { jobId: other.id, afterSeq: -1 },
        { jobId: job.id, afterSeq: 4 },
      ],
      1,
    );
    assert.deepEqual(
      read.map(({ cursor, event }) => [cursor, event.jobId, event.seq]),
      [
        [0, job.id, 3],
        [1, other.id, 0],
      ],
    );
  });

  it('logs the state a replacement workflow task projected after the one its refused task projected, and numbers the run after it', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    const apply = (seq: number, historyLength: number | undefined, change: Partial<JobSnapshot>) =>
      applyJobUpdate(test.db, {
        jobId: job.id,
        seq,
        snapshot: jobSnapshot(change),
        ...(historyLength === undefined ? {} : { historyLength }),
      });
    await apply(1, 5, { status: 'running', progress: 50 });
    // The task that accepted a cancel projected it, then the server refused its completion.
    assert.ok(await apply(2, 11, { status: 'cancelled' }));
    // The task that replaced it saw the attempt fail first: that is what happened.
    const failure = { code: 'SAFETY_BLOCKED', message: 'blocked' };
    const replaced = await apply(2, 15, { status: 'failed', error: failure });
    assert.equal(replaced?.previousStatus, 'cancelled');
    // A late or repeated delivery of either, or a run without history lengths, changes nothing.
    assert.equal(await apply(2, 11, { status: 'cancelled' }), null);
    assert.equal(await apply(2, 15, { status: 'failed', error: failure }), null);
    assert.equal(await apply(2, undefined, { status: 'cancelled' }), null);

    const row = await findOwnedJob(test.db, job.ownerId, job.id);
    assert.deepEqual(
      [row?.status, row?.error_code, row?.projection_seq, row?.projection_seq_offset],
      ['failed', 'SAFETY_BLOCKED', 3, 1],
    );
    // The correction follows the state it corrects, so a reader past that state still gets it.
    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: -1 }], 100);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.status, event.error?.code ?? null]),
      [
        [0, 'pending', null],
        [1, 'running', null],
        [2, 'cancelled', null],
        [3, 'failed', 'SAFETY_BLOCKED'],
      ],
    );
    // The run's next update numbers after the correction, and a second correction of it too.
    assert.ok(await apply(3, 20, { status: 'timeout', error: failure }));
    assert.ok(await apply(3, 24, { status: 'completed', progress: 100 }));
    assert.equal(await apply(3, 20, { status: 'timeout', error: failure }), null);
    const after = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: 3 }], 100);
    assert.deepEqual(
      after.map(({ event }) => [event.seq, event.status]),
      [
        [4, 'timeout'],
        [5, 'completed'],
      ],
    );
  });

  it("records the stage a job failed in from its current attempt, never another attempt's or a superseded state", async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    const apply = (seq: number, historyLength: number, change: Partial<JobSnapshot>) =>
      applyJobUpdate(test.db, { jobId: job.id, seq, historyLength, snapshot: jobSnapshot(change) });
    const failedStage = async () =>
      (await findOwnedJob(test.db, job.ownerId, job.id))?.failed_stage ?? null;
    const failure = { code: 'PROVIDER_ERROR', message: 'it broke' };

    await apply(1, 5, { status: 'analyzing' });
    await apply(2, 9, { status: 'failed', error: failure });
    assert.equal(await failedStage(), 'analyzing');
    // Restated by the same attempt (its deadline), the stage stays.
    await apply(3, 12, { status: 'timeout', error: failure });
    assert.equal(await failedStage(), 'analyzing');

    // The retry's states in flight never reached the row (a database that lost them): its end
    // does not name the first attempt's stage.
    await apply(6, 30, { status: 'failed', attempt: 2, error: failure });
    assert.equal(await failedStage(), null);

    // A third attempt ends in a phantom (a refused task's), superseded by its real failure.
    await apply(7, 40, { status: 'generating', attempt: 3 });
    await apply(8, 45, { status: 'cancelled', attempt: 3 });
    assert.equal(await failedStage(), null);
    await apply(8, 49, { status: 'failed', attempt: 3, error: failure });
    assert.equal(await failedStage(), 'generating');

    // A completed attempt has no failed stage.
    await apply(9, 60, { status: 'processing', attempt: 4 });
    await apply(10, 64, { status: 'completed', attempt: 4 });
    assert.equal(await failedStage(), null);
  });

  it('keeps the row and the log in order when updates of one job race each other', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    // Sequence numbers out of order, several writers at once; statuses alternate so each
    // event's type depends on the state the row had when that update took it.
    const seqs = [7, 2, 9, 4, 1, 12, 5, 3, 11, 8, 6, 10];
    const statusOf = (seq: number) => (seq % 3 === 0 ? 'analyzing' : 'running');
    const applied = await Promise.all(
      seqs.map((seq) =>
        applyJobUpdate(test.db, {
          jobId: job.id,
          seq,
          snapshot: jobSnapshot({ status: statusOf(seq), progress: seq }),
        }),
      ),
    );
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.equal(row?.projection_seq, 12);
    assert.equal(row?.progress, 12);
    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: 0 }], 100);
    const logged = log.map(({ event }) => event.seq);
    assert.deepEqual(
      logged,
      seqs.filter((_, index) => applied[index]).sort((a, b) => a - b),
    );
    let previous = 'pending';
    for (const { event } of log) {
      assert.equal(
        event.type,
        event.status === previous ? 'progress' : 'status',
        `seq ${event.seq}`,
      );
      assert.equal(event.status, statusOf(event.seq));
      previous = event.status;
    }
  });

  it('counts a reserved job once, before and after its row is written, and lets an expired reservation of the same id be taken again', async () => {
    const ownerId = `reserver-${Date.now()}`;
    const job = jobRecord({ ownerId, idempotencyKey: 'key-1' });
    const reservation = { jobId: job.id, ownerId, idempotencyKey: 'key-1' };
    await reserveJob(test.db, { ...reservation, ttlMs: 60_000 });
    assert.equal(await countJobsInFlight(test.db, ownerId), 1);
    await insertJob(test.db, job, 'pending');
    assert.equal(await countJobsInFlight(test.db, ownerId), 1, 'row and reservation both there');
    await releaseReservation(test.db, job.id);
    assert.equal(await countJobsInFlight(test.db, ownerId), 1);

    // An API that died mid-start leaves an expired reservation: the key's next request reserves
    // the same id again, and the expired one neither blocks it nor counts.
    const retried = jobRecord({ ownerId, idempotencyKey: 'key-2' });
    await reserveJob(test.db, {
      ...reservation,
      jobId: retried.id,
      idempotencyKey: 'key-2',
      ttlMs: 1,
    });
    await eventually(
      () => isIdempotencyKeyReserved(test.db, ownerId, 'key-2'),
      (reserved) => !reserved,
      { timeoutMs: 5_000, intervalMs: 20, what: 'the reservation expired' },
    );
    assert.equal(await countJobsInFlight(test.db, ownerId), 1);
    await reserveJob(test.db, {
      ...reservation,
      jobId: retried.id,
      idempotencyKey: 'key-2',
      ttlMs: 60_000,
    });
    assert.equal(await isIdempotencyKeyReserved(test.db, ownerId, 'key-2'), true);
    assert.equal(await countJobsInFlight(test.db, ownerId), 2);
  });

  it('drops reservations expired over the stale time, whoever holds them, and keeps live ones', async () => {
    // Each owner's own next reservation drops its expired ones: these owners never come back.
    const owners = ['a', 'b', 'live'].map((name) => `dropper-${name}-${Date.now()}`);
    const reserve = async (ownerId: string, ttlMs: number) => {
      const job = jobRecord({ ownerId });
      await reserveJob(test.db, { jobId: job.id, ownerId, idempotencyKey: null, ttlMs });
      return job.id;
    };
    const expired = [await reserve(owners[0]!, 0), await reserve(owners[1]!, 0)];
    const live = await reserve(owners[2]!, 60_000);
    const left = async () =>
      (
        await test.db
          .selectFrom('job_reservations')
          .select('job_id')
          .where('owner_id', 'in', owners)
          .execute()
      )
        .map((row) => row.job_id)
        .sort();
    // Expired, but not an hour ago.
    await dropExpiredReservations(test.db, { staleMs: 3_600_000, limit: 100 });
    assert.deepEqual(await left(), [...expired, live].sort());
    assert.ok((await dropExpiredReservations(test.db, { staleMs: 0, limit: 100 })) >= 2);
    assert.deepEqual(await left(), [live]);
  });

  it('writes a reservation and its cost hold in one statement, and neither when the cap refuses it', async () => {
    const ownerId = `holder-${Date.now()}`;
    const holdsOf = (jobId: string) =>
      test.db
        .selectFrom('cost_holds')
        .select(['owner_id', 'amount', 'attempt', 'state'])
        .where('job_id', '=', jobId)
        .execute();
    const first = jobRecord({ ownerId });
    const outcome = await reserveJob(test.db, {
      jobId: first.id,
      ownerId,
      idempotencyKey: null,
      ttlMs: 60_000,
      maxInFlight: 1,
      hold: { amount: '0.00', attempt: 1 },
    });
    assert.deepEqual(outcome, { reserved: true, inFlight: 0, held: true });
    assert.deepEqual(
      (await holdsOf(first.id)).map((hold) => ({ ...hold, amount: Number(hold.amount) })),
      [{ owner_id: ownerId, amount: 0, attempt: 1, state: 'held' }],
    );
    const refused = jobRecord({ ownerId });
    assert.deepEqual(
      await reserveJob(test.db, {
        jobId: refused.id,
        ownerId,
        idempotencyKey: null,
        ttlMs: 60_000,
        maxInFlight: 1,
        hold: { amount: '0.00', attempt: 1 },
      }),
      { reserved: false, inFlight: 1, held: false },
    );
    assert.deepEqual(await holdsOf(refused.id), []);
  });

  it('says a reservation that takes an expired one’s place found its cost hold already written', async () => {
    // An Idempotency-Key's job whose API died mid-start: its reservation expired, its hold stays.
    const ownerId = `reholder-${Date.now()}`;
    const job = jobRecord({ ownerId });
    const reservation = {
      jobId: job.id,
      ownerId,
      idempotencyKey: 'key',
      maxInFlight: 5,
      hold: { amount: '0.00', attempt: 1 },
    };
    assert.deepEqual(await reserveJob(test.db, { ...reservation, ttlMs: 0 }), {
      reserved: true,
      inFlight: 0,
      held: true,
    });
    assert.deepEqual(await reserveJob(test.db, { ...reservation, ttlMs: 60_000 }), {
      reserved: true,
      inFlight: 0,
      held: false,
    });
    const holds = await test.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', job.id)
      .execute();
    assert.deepEqual(holds, [{ attempt: 1, state: 'held' }]);
  });

  it("commits a projection update and a rate-limit count without waiting for the disk, and leaves the session's setting alone", async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    const synchronousCommit = async (db: typeof test.db) =>
      (await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(db)).rows[0]
        ?.synchronous_commit;
    await test.db.transaction().execute(async (tx) => {
      assert.equal(await synchronousCommit(tx), 'on');
      await applyJobUpdate(tx, { jobId: job.id, seq: 1, snapshot: jobSnapshot() });
      assert.equal(await synchronousCommit(tx), 'off');
    });
    await test.db.transaction().execute(async (tx) => {
      await countRequestInWindow(tx, job.ownerId, new Date());
      assert.equal(await synchronousCommit(tx), 'off');
    });
    assert.equal(await synchronousCommit(test.db), 'on');
    assert.equal((await findOwnedJob(test.db, job.ownerId, job.id))?.projection_seq, 1);
  });

  it("writes a job's row once when the API and the workflow write it at the same moment, without a deadlock", async () => {
    for (let round = 0; round < 30; round += 1) {
      const job = jobRecord({ ownerId: `racer-${Date.now()}-${round}` });
      await reserveJob(test.db, {
        jobId: job.id,
        ownerId: job.ownerId,
        idempotencyKey: null,
        ttlMs: 60_000,
      });
      await Promise.all([
        insertJob(test.db, job, 'pending', { dropReservation: true }),
        insertJob(test.db, job, 'pending'),
      ]);
      const events = await test.db
        .selectFrom('job_events')
        .select('seq')
        .where('job_id', '=', job.id)
        .execute();
      assert.deepEqual(events, [{ seq: 0 }]);
      assert.equal((await findOwnedJob(test.db, job.ownerId, job.id))?.status, 'pending');
      assert.equal(await countJobsInFlight(test.db, job.ownerId), 1);
      const reservations = await test.db
        .selectFrom('job_reservations')
        .select('job_id')
        .where('job_id', '=', job.id)
        .execute();
      assert.deepEqual(reservations, []);
    }
  });

  it('reserves a place only below the cap, in one statement, and says how many were taken', async () => {
    const ownerId = `capped-${Date.now()}`;
    await insertJob(test.db, jobRecord({ ownerId }), 'pending');
    const next = jobRecord({ ownerId });
    const reservation = { jobId: next.id, ownerId, idempotencyKey: null, ttlMs: 60_000 };
    assert.deepEqual(await reserveJob(test.db, { ...reservation, maxInFlight: 1 }), {
      reserved: false,
      inFlight: 1,
    });
    assert.equal(await countJobsInFlight(test.db, ownerId), 1, 'nothing reserved');
    assert.deepEqual(await reserveJob(test.db, { ...reservation, maxInFlight: 2 }), {
      reserved: true,
      inFlight: 1,
    });
    assert.equal(await countJobsInFlight(test.db, ownerId), 2);
  });

  it('logs streamed output after the last state, in order, and none once the job has ended', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 1,
      snapshot: jobSnapshot({ status: 'running', progress: 50 }),
    });
    // Written at once, as a worker's pieces and the workflow's states may be: the row's lock
    // numbers them in commit order.
    const written = await Promise.all(
      ['{"it', 'ems"', ': []}'].map((text, index) =>
        appendJobOutput(test.db, job.id, { text, offset: index }),
      ),
    );
    assert.deepEqual(written, [true, true, true]);
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ status: 'running', progress: 50, phase: 'repairing' }),
    });
    assert.equal(await appendJobOutput(test.db, job.id, { text: '{', offset: 0 }), true);
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 3,
      snapshot: jobSnapshot({ status: 'cancelled' }),
    });
    assert.equal(await appendJobOutput(test.db, job.id, { text: 'late', offset: 1 }), false);

    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: -1 }], 100);
    assert.deepEqual(
      log.map(({ event }) => [jobEventId(event), event.type, event.status]),
      [
        ['0', 'status', 'pending'],
        ['1', 'status', 'running'],
        ['1-1', 'output', 'running'],
        ['1-2', 'output', 'running'],
        ['1-3', 'output', 'running'],
        ['2', 'progress', 'running'],
        ['2-1', 'output', 'running'],
        ['3', 'status', 'cancelled'],
      ],
    );
    assert.deepEqual(
      log.filter(({ event }) => event.part === 0).map(({ event }) => event.output),
      [null, null, null, null],
    );
    assert.deepEqual(log[6]?.event.output, { text: '{', offset: 0 });

    // A reader in the middle of the output goes on from there.
    const rest = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: 1, afterPart: 2 }], 2);
    assert.deepEqual(
      rest.map(({ event }) => jobEventId(event)),
      ['1-3', '2'],
    );
  });

  it('ends a job for the reconciler only as it read it, never over a projection that landed', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 1,
      snapshot: jobSnapshot({ progress: 30 }),
    });
    const terminated = jobSnapshot({
      status: 'failed',
      progress: 30,
      completedAt: '2026-01-01T00:00:05.000Z',
      error: { code: 'WORKFLOW_TERMINATED', message: 'The workflow was terminated in Temporal' },
    });
    // The workflow projected seq 2 after the reconciler read seq 1: its end is not written.
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ progress: 60 }),
    });
    assert.equal(
      await endJobInFlight(test.db, { jobId: job.id, expectedSeq: 1, snapshot: terminated }),
      null,
    );
    const ended = await endJobInFlight(test.db, {
      jobId: job.id,
      expectedSeq: 2,
      snapshot: terminated,
    });
    assert.equal(ended?.previousStatus, 'running');
    // An ended job is not ended again, and a late update of the closed run does not reopen it.
    assert.equal(
      await endJobInFlight(test.db, { jobId: job.id, expectedSeq: 3, snapshot: terminated }),
      null,
    );
    assert.equal(
      await applyJobUpdate(test.db, { jobId: job.id, seq: 3, snapshot: jobSnapshot() }),
      null,
    );
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.deepEqual(
      [row?.status, row?.progress, row?.error_code, row?.projection_seq],
      ['failed', 30, 'WORKFLOW_TERMINATED', 3],
    );
    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: -1 }], 10);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.status]),
      [
        [0, 'pending'],
        [1, 'running'],
        [2, 'running'],
        [3, 'failed'],
      ],
    );
  });

  it('numbers a reset run after every logged event once the job follows it', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    for (const seq of [1, 2, 3]) {
      await applyJobUpdate(test.db, {
        jobId: job.id,
        seq,
        snapshot: jobSnapshot({ progress: seq * 10, runId: 'run-1' }),
      });
    }
    const follow = {
      jobId: job.id,
      fromRunId: 'run-1',
      runId: 'run-2',
      endedWith: ['WORKFLOW_TERMINATED'],
    };
    // The row moved on since it was read: no move.
    assert.equal(await followResetRun(test.db, { ...follow, expectedSeq: 2 }), false);
    assert.equal(await followResetRun(test.db, { ...follow, expectedSeq: 3 }), true);
    // The reset run counts from its reset point again (seq 2), yet applies after seq 3.
    const applied = await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 2,
      snapshot: jobSnapshot({ progress: 5, runId: 'run-2' }),
    });
    assert.ok(applied);
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.deepEqual(
      [row?.run_id, row?.progress, row?.projection_seq, row?.projection_seq_offset],
      ['run-2', 5, 5, 3],
    );
    const log = await readJobEvents(test.db, [{ jobId: job.id, afterSeq: 3 }], 10);
    assert.deepEqual(
      log.map(({ event }) => [event.seq, event.progress]),
      [[5, 5]],
    );
  });

  it('finds the jobs to reconcile: in flight and quiet, or ended by it within the window', async () => {
    const quiet = jobRecord();
    const busy = jobRecord();
    const ended = jobRecord();
    const endedLongAgo = jobRecord();
    const completed = jobRecord();
    for (const job of [quiet, busy, ended, endedLongAgo, completed]) {
      await insertJob(test.db, job, 'pending');
    }
    const end = (code: string) =>
      jobSnapshot({ status: 'failed', error: { code, message: 'ended' } });
    await applyJobUpdate(test.db, {
      jobId: ended.id,
      seq: 1,
      snapshot: end('WORKFLOW_TERMINATED'),
    });
    await applyJobUpdate(test.db, {
      jobId: endedLongAgo.id,
      seq: 1,
      snapshot: end('WORKFLOW_TERMINATED'),
    });
    await applyJobUpdate(test.db, {
      jobId: completed.id,
      seq: 1,
      snapshot: jobSnapshot({ status: 'completed', progress: 100 }),
    });
    await test.db
      .updateTable('jobs')
      .set({ updated_at: sql<Date>`now() - interval '1 minute'` })
      .where('id', 'in', [quiet.id, ended.id, completed.id])
      .execute();
    await test.db
      .updateTable('jobs')
      .set({ updated_at: sql<Date>`now() - interval '2 hours'` })
      .where('id', '=', endedLongAgo.id)
      .execute();
    const found = await findJobsToReconcile(test.db, {
      staleMs: 30_000,
      reopenWindowMs: 3_600_000,
      endedWith: ['WORKFLOW_TERMINATED'],
      afterId: null,
      limit: 100,
    });
    const ids = new Set(found.map((job) => job.id));
    assert.deepEqual(
      [quiet, busy, ended, endedLongAgo, completed].map((job) => ids.has(job.id)),
      [true, false, true, false, false],
    );
  });

  it('records a failure with its code and message', async () => {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    await applyJobUpdate(test.db, {
      jobId: job.id,
      seq: 1,
      snapshot: jobSnapshot({
        status: 'failed',
        error: { code: 'PROVIDER_REJECTED', message: 'no' },
      }),
    });
    const row = await findOwnedJob(test.db, 'alice', job.id);
    assert.equal(row?.error_code, 'PROVIDER_REJECTED');
    assert.equal(row?.error_message, 'no');
  });

  it('pages newest first without skipping or repeating rows while new jobs arrive', async () => {
    const owner = 'pager';
    const base = Date.parse('2026-03-01T00:00:00.000Z');
    const ids: string[] = [];
    // Pairs share a timestamp so the id tie-breaker is exercised.
    for (let i = 0; i < 25; i += 1) {
      const job = jobRecord({
        ownerId: owner,
        createdAt: new Date(base + Math.floor(i / 2) * 1000).toISOString(),
      });
      ids.push(job.id);
      await insertJob(test.db, job, i % 3 === 0 ? 'failed' : 'completed');
    }
    const seen: string[] = [];
    let after: JobCursor | undefined;
    let page = 0;
    for (;;) {
      const result = await listOwnedJobs(test.db, { ownerId: owner, limit: 4, after });
      seen.push(...result.jobs.map((row) => row.id));
      // Newer jobs land at the top of the listing; the pages already handed out are unaffected.
      await insertJob(
        test.db,
        jobRecord({
          ownerId: owner,
          createdAt: new Date(base + 3_600_000 + page * 1000).toISOString(),
        }),
        'pending',
      );
      page += 1;
      if (!result.next) break;
      after = result.next;
    }
    const originals = seen.filter((id) => ids.includes(id));
    assert.equal(new Set(seen).size, seen.length, 'a row was repeated');
    assert.equal(originals.length, 25, 'a row was skipped');
    const expectedOrder = ids
      .map((id, i) => ({ id, t: Math.floor(i / 2) }))
      .sort((a, b) => b.t - a.t || (a.id < b.id ? 1 : -1))
      .map((entry) => entry.id);
    assert.deepEqual(originals, expectedOrder);
  });

  it('filters by status and creation time', async () => {
    const owner = 'filterer';
    await insertJob(
      test.db,
      jobRecord({ ownerId: owner, createdAt: '2026-04-01T00:00:00.000Z' }),
      'failed',
    );
    await insertJob(
      test.db,
      jobRecord({ ownerId: owner, createdAt: '2026-04-02T00:00:00.000Z' }),
      'failed',
    );
    await insertJob(
      test.db,
      jobRecord({ ownerId: owner, createdAt: '2026-04-03T00:00:00.000Z' }),
      'completed',
    );
    const failed = await listOwnedJobs(test.db, { ownerId: owner, status: 'failed', limit: 10 });
    assert.equal(failed.jobs.length, 2);
    const window = await listOwnedJobs(test.db, {
      ownerId: owner,
      createdFrom: new Date('2026-04-02T00:00:00.000Z'),
      createdTo: new Date('2026-04-03T00:00:00.000Z'),
      limit: 10,
    });
    assert.deepEqual(
      window.jobs.map((row) => row.created_at.toISOString()),
      ['2026-04-02T00:00:00.000Z'],
    );
  });
});

describe('waiting jobs', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  it('counts the jobs pending or queued by kind and status, with the longest wait, and no others', async () => {
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1_000).toISOString();
    await insertJob(test.db, jobRecord({ createdAt: ago(300) }), 'pending');
    await insertJob(test.db, jobRecord({ createdAt: ago(10) }), 'queued');
    const started = jobRecord({ createdAt: ago(900) });
    await insertJob(test.db, started, 'pending');
    await applyJobUpdate(test.db, { jobId: started.id, seq: 1, snapshot: jobSnapshot() });
    await insertJob(test.db, jobRecord({ createdAt: ago(5) }), 'completed');
    await insertJob(
      test.db,
      jobRecord({
        id: `ai-${crypto.randomUUID()}`,
        kind: 'ai',
        type: 'TASK_GENERATION',
        createdAt: ago(60),
      }),
      'pending',
    );
    // By status: one queued behind its key waits by design, a pending one on the service.
    const waiting = (await waitingJobsByKind(test.db)).sort(
      (a, b) => a.kind.localeCompare(b.kind) || a.status.localeCompare(b.status),
    );
    assert.deepEqual(
      waiting.map(({ kind, status, count }) => [kind, status, count]),
      [
        ['ai', 'pending', 1],
        ['probe', 'pending', 1],
        ['probe', 'queued', 1],
      ],
    );
    const ages = waiting.map(({ oldestAgeSeconds }) => oldestAgeSeconds);
    assert.ok(Math.abs(ages[0]! - 60) < 30, String(ages[0]));
    assert.ok(Math.abs(ages[1]! - 300) < 30, String(ages[1]));
    assert.ok(Math.abs(ages[2]! - 10) < 30, String(ages[2]));
  });
});
