// The provider-quota governor against the fake Google server: Veo generations never exceed
// VEO_MAX_CONCURRENT_OPERATIONS, and a 429 makes the job wait on a timer (its phase says so)
// instead of failing an activity attempt, with one paid generation per vlog.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { jpegBytes, multipartBody, pngBytes } from '../fixtures/media.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import type { Db } from '../../src/db/database.js';
import {
  startHarness,
  type Harness,
  type HarnessOptions,
  type UserClient,
} from '../support/harness.js';
import { CloudFakes } from '../support/cloud-fakes.js';
import { eventually } from '../support/eventually.js';

interface VlogView {
  id: string;
  status: string;
  attempt: number;
  error: { code: string; message: string } | null;
}

const maxConcurrent = 2;
const recheckMs = 60_000;
/** The job reconciler every second, checking jobs quiet for a second. */
const reconcileEverySecond = {
  intervalMs: 1_000,
  staleMs: 1_000,
  reopenWindowMs: 60_000,
  batchSize: 100,
};

/** Until the vlog's phase says it waits in line for a Veo lease. */
async function untilWaitingInLine(h: Harness, jobId: string, what: string): Promise<void> {
  await eventually(
    async () =>
      (
        await h.db
          .selectFrom('jobs')
          .select('phase')
          .where('id', '=', jobId)
          .executeTakeFirstOrThrow()
      ).phase ?? '',
    (phase) => phase.startsWith('waiting for video generation quota'),
    { what, timeoutMs: 60_000 },
  );
}

/** A stack where Veo runs one generation at once, and a user of it. */
interface OneLeaseStack {
  fakes: CloudFakes;
  h: Harness;
  alice: UserClient;
  /** Starts a vlog of one photo as alice, terminated when the harness stops. */
  startVlog: (title: string) => Promise<string>;
}

/**
 * Starts, before the calling describe's tests, a stack where Veo runs one generation at once and
 * a vlog waiting in line asks again only after `recheckMs`, longer than any test here takes (a
 * waiting vlog moves on when woken), and stops it after them.
 */
function useOneLeaseStack(
  options: Pick<HarnessOptions, 'jobReconcile'> & {
    /** The worker's dependencies, from the fakes' own. */
    worker?: (fakes: CloudFakes, db: Db) => Promise<Partial<ActivityDependencies>>;
  } = {},
): OneLeaseStack {
  const stack = {} as OneLeaseStack;
  before(async () => {
    const fakes = await CloudFakes.start();
    Object.assign(fakes.env, {
      VEO_MAX_CONCURRENT_OPERATIONS: '1',
      PROVIDER_QUOTA_RECHECK_MS: String(recheckMs),
    });
    const { worker = (own, db) => own.activityDependencies(db), jobReconcile } = options;
    const h = await startHarness({
      env: fakes.env,
      worker: (db) => worker(fakes, db),
      ...(jobReconcile && { jobReconcile }),
    });
    const alice = h.user('alice');
    const startVlog = async (title: string) => {
      const view = await alice.startJob<VlogView>(
        'vlog',
        multipartBody({ title }, [
          { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
        ]),
      );
      h.terminateOnStop(view.id);
      return view.id;
    };
    Object.assign(stack, { fakes, h, alice, startVlog });
  });
  after(async () => {
    await stack.h.stop();
    await stack.fakes.stop();
  });
  return stack;
}

/** The states of the job's places at the providers: `held` leases, `waiting` places in line. */
const leasesOf = (h: Harness, jobId: string) =>
  h.db
    .selectFrom('provider_leases')
    .select('state')
    .where('job_id', '=', jobId)
    .execute()
    .then((rows) => rows.map((row) => row.state));

describe('vlogs under the provider-quota governor', () => {
  let fakes: CloudFakes;
  let h: Harness;
  let alice: UserClient;

  before(async () => {
    fakes = await CloudFakes.start();
    Object.assign(fakes.env, {
      VEO_MAX_CONCURRENT_OPERATIONS: String(maxConcurrent),
      // Longer than any test here takes: a vlog waiting in line moves on only when the vlog
      // whose generation ended wakes it.
      PROVIDER_QUOTA_RECHECK_MS: String(recheckMs),
    });
    h = await startHarness({ env: fakes.env, worker: (db) => fakes.activityDependencies(db) });
    alice = h.user('alice');
  });
  afterEach(() => fakes.google.resetScenario());
  after(async () => {
    await h.stop();
    await fakes.stop();
  });

  async function startVlog(title: string, user = alice): Promise<string> {
    const view = await user.startJob<VlogView>(
      'vlog',
      multipartBody({ title }, [
        { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
        { field: 'media', filename: 'b.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
      ]),
    );
    return view.id;
  }

  const finished = (id: string, user = alice) =>
    user.awaitJob<VlogView>(
      'vlog',
      id,
      (view) => ['completed', 'failed', 'cancelled'].includes(view.status),
      { what: `vlog ${id} finished`, timeoutMs: 120_000, intervalMs: 200 },
    );

  async function phases(id: string): Promise<string[]> {
    const rows = await h.db
      .selectFrom('job_events')
      .select('phase')
      .where('job_id', '=', id)
      .orderBy('seq')
      .execute();
    return rows.map((row) => row.phase ?? '');
  }

  /** Attempts of each `activityType` activity the workflow ran, in order. */
  async function attemptsOf(id: string, activityType: string): Promise<number[]> {
    const history = await h.temporal.client.workflow.getHandle(id).fetchHistory();
    const submissions = new Set(
      (history.events ?? [])
        .filter(
          (event) =>
            event.activityTaskScheduledEventAttributes?.activityType?.name === activityType,
        )
        .map((event) => Number(event.eventId)),
    );
    return (history.events ?? [])
      .map((event) => event.activityTaskStartedEventAttributes)
      .filter((started) => started && submissions.has(Number(started.scheduledEventId)))
      .map((started) => started!.attempt ?? 0);
  }

  it('never runs more Veo generations at once than the limit, and the others wait in line', async () => {
    // The generations run until the vlogs beyond the limit wait in line, however long the
    // uploads and analyses take on a loaded machine (with a fixed length, a slow machine
    // submitted each after the one before had ended, and none waited).
    fakes.google.scenario.pollsBeforeDone = Number.MAX_SAFE_INTEGER;
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await startVlog(`Quota ${i}`));
    await eventually(
      () =>
        h.db
          .selectFrom('provider_leases')
          .select('state')
          .where('job_id', 'in', ids)
          .execute()
          .then((rows) => rows.map((row) => row.state).sort()),
      (states) =>
        JSON.stringify(states) ===
        JSON.stringify([
          ...Array.from({ length: maxConcurrent }, () => 'held'),
          ...Array.from({ length: 5 - maxConcurrent }, () => 'waiting'),
        ]),
      {
        what: `${maxConcurrent} generations running and the other vlogs in line`,
        timeoutMs: 90_000,
      },
    );
    fakes.google.scenario.pollsBeforeDone = 4;
    for (const id of ids) {
      const done = await finished(id);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.equal(fakes.google.paidCallsMentioning(id).length, 1, `${id} paid once`);
      assert.deepEqual(
        (await attemptsOf(id, 'startVideoGeneration')).filter((attempt) => attempt !== 1),
        [],
        'waiting never used up an attempt',
      );
    }
    assert.equal(fakes.google.maxRunningOperations, maxConcurrent);
    const waited = await Promise.all(ids.map(phases));
    assert.ok(
      waited
        .flat()
        .some((phase) =>
          /^waiting for video generation quota \(\d+ ahead, retry in \d+ s\)$/.test(phase),
        ),
      `no job showed its wait: ${JSON.stringify(waited)}`,
    );
    const leases = await h.db.selectFrom('provider_leases').selectAll().execute();
    assert.deepEqual(leases, [], 'every lease was given back');
  });

  it("gives the next free lease to another user's vlog before one user's backlog, woken as it frees", async () => {
    // The backlog's generations run until Bob's vlog waits in line, however long his analysis
    // takes on a loaded machine: only then is there a lease to give him or the backlog.
    fakes.google.scenario.pollsBeforeDone = Number.MAX_SAFE_INTEGER;
    const started = Date.now();
    const backlog: string[] = [];
    for (let i = 0; i < 4; i += 1) backlog.push(await startVlog(`Backlog ${i}`));
    let newcomer = '';
    // The vlogs whose generation Veo accepted, in order.
    const submitted = () =>
      fakes.google.paidCalls
        .filter((call) => call.method === 'predictLongRunning')
        .map((call) => [...backlog, newcomer].find((id) => id && call.subject.includes(id)))
        .filter((id) => id !== undefined);
    await eventually(
      async () => submitted().length,
      (count) => count === maxConcurrent,
      { what: 'the backlog holding every lease', timeoutMs: 60_000 },
    );
    const bob = h.user('bob');
    newcomer = await startVlog('Newcomer', bob);
    await untilWaitingInLine(h, newcomer, "Bob's vlog waiting in line");
    fakes.google.scenario.pollsBeforeDone = 3;
    const views = await Promise.all([
      ...backlog.map((id) => finished(id)),
      finished(newcomer, bob),
    ]);
    for (const view of views) assert.equal(view.status, 'completed', JSON.stringify(view.error));
    // The backlog's two generations end together, so the two leases they free are taken at
    // once, and which of their takers reaches Veo first is a race. In line, Bob came after the
    // whole backlog: first come, first served, he would have had the last lease of the three.
    const [first, second, last] = submitted().slice(maxConcurrent);
    assert.deepEqual(
      [[first, second].sort(), last],
      [[newcomer, backlog[2]].sort(), backlog[3]],
      "Bob's vlog took one of the first leases freed, before the rest of Alice's backlog",
    );
    assert.ok(
      Date.now() - started < recheckMs,
      `every vlog done in ${Date.now() - started} ms: the waiting ones were woken, not rechecked`,
    );
  });

  it('waits out a 429 to the submission on a timer, then completes on its first attempt and pays once', async () => {
    fakes.google.scenario.startFailures = [{ status: 429, retryDelay: '2s' }];
    fakes.google.scenario.pollFailures = [{ status: 429, retryDelay: '1s' }];
    const submitted = fakes.google.calls.predictLongRunning;
    const id = await startVlog('Rate limited');
    const done = await finished(id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 1);
    // The refused submission and the accepted one; only the accepted one is an operation.
    assert.equal(fakes.google.calls.predictLongRunning - submitted, 2);
    assert.equal(fakes.google.paidCallsMentioning(id).length, 1);
    assert.deepEqual(await attemptsOf(id, 'startVideoGeneration'), [1, 1]);
    assert.ok(
      (await phases(id)).includes(
        'waiting for video generation quota (the provider is rate limiting, retry in 2 s)',
      ),
      JSON.stringify(await phases(id)),
    );
    const [refused, accepted] = fakes.google.submissionTimes.slice(-2);
    assert.ok(accepted! - refused! >= 1_900, `submitted again after ${accepted! - refused!} ms`);
  });

  it('waits out a 429 to the analysis on a timer, every worker cooling down, then analyses on its first attempt', async () => {
    fakes.google.scenario.analysisFailures = [{ status: 429, retryDelay: '2s' }];
    const id = await startVlog('Analysis rate limited');
    const done = await finished(id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 1);
    assert.deepEqual(await attemptsOf(id, 'analyzeMedia'), [1, 1]);
    assert.ok(
      (await phases(id)).includes(
        'waiting for media analysis quota (the provider is rate limiting, retry in 2 s)',
      ),
      JSON.stringify(await phases(id)),
    );
    const cooldown = await h.db
      .selectFrom('provider_cooldowns')
      .select('provider')
      .where('provider', '=', 'gemini')
      .executeTakeFirst();
    assert.ok(cooldown, 'the 429 started the shared cool-down of gemini');
  });
});

// A vlog holding a Veo lease whose workflow an operator terminated never passes its turn
// itself: the reconciler that ends it frees the lease and wakes the vlog next in line, which
// must not wait out its recheck. (Its submission never answered, Veo runs no generation of
// it: one that Veo runs keeps the lease counted, test/db/provider-quota.test.ts.)
describe('a terminated vlog holding a Veo lease, once reconciled', () => {
  const stack = useOneLeaseStack({ jobReconcile: reconcileEverySecond });
  const submitted = (id: string) =>
    stack.fakes.google.paidCallsMentioning(id).some((call) => call.method === 'predictLongRunning');

  it('wakes the next waiting vlog, which is admitted before its recheck', async () => {
    const { fakes, h, alice, startVlog } = stack;
    fakes.google.scenario.holdStarts = true;
    fakes.google.scenario.pollsBeforeDone = Number.MAX_SAFE_INTEGER;
    const startsBefore = fakes.google.calls.predictLongRunning;
    const holder = await startVlog('Holder');
    await eventually(
      async () => fakes.google.calls.predictLongRunning,
      (starts) => starts > startsBefore,
      { what: 'the holder submitting on the only lease', timeoutMs: 60_000 },
    );
    // It asks for its turn after this, and without a wake-up again a recheck later.
    const askedFrom = Date.now();
    const next = await startVlog('Next');
    await untilWaitingInLine(h, next, 'the next vlog waiting in line');
    fakes.google.scenario.holdStarts = false;

    await h.temporal.client.workflow.getHandle(holder).terminate('stopped by an operator');
    const ended = await alice.awaitJob<VlogView>(
      'vlog',
      holder,
      (view) => view.status === 'failed',
      { what: 'the holder ended by the reconciler', timeoutMs: 30_000, intervalMs: 200 },
    );
    assert.equal(ended.error?.code, 'WORKFLOW_TERMINATED');
    await eventually(
      async () => submitted(next),
      (done) => done,
      { what: 'the next vlog submitted its generation', timeoutMs: recheckMs },
    );
    assert.ok(
      Date.now() - askedFrom < recheckMs,
      `submitted ${Date.now() - askedFrom} ms after it asked: woken, not rechecked`,
    );
    const leases = await h.db.selectFrom('provider_leases').select(['job_id', 'state']).execute();
    assert.deepEqual(leases, [{ job_id: next, state: 'held' }], "the holder's lease was freed");
  });
});

describe('a vlog cancelled while it waits in line for Veo', () => {
  /** While set, a cancelled vlog's cleanup waits for it before it deletes anything. */
  let storageHeld: Promise<void> | null = null;
  const stack = useOneLeaseStack({
    worker: async (own, db) => {
      const deps = await own.activityDependencies(db);
      const storage = deps.mediaStorage;
      const listMultipartUploads: typeof storage.listMultipartUploads = async (prefix) => {
        await storageHeld;
        return storage.listMultipartUploads(prefix);
      };
      return {
        ...deps,
        mediaStorage: Object.assign(Object.create(storage) as typeof storage, {
          listMultipartUploads,
        }),
      };
    },
  });

  it('leaves the line as its cleanup begins, not once storage has deleted its outputs', async () => {
    const { fakes, h, alice, startVlog } = stack;
    const placesOf = (jobId: string) => leasesOf(h, jobId);
    fakes.google.scenario.pollsBeforeDone = Number.MAX_SAFE_INTEGER;
    const holder = await startVlog('Holder');
    await eventually(
      () => placesOf(holder),
      (states) => states.includes('held'),
      { what: 'the holder on the only lease', timeoutMs: 60_000 },
    );
    const waiter = await startVlog('Waiter');
    await untilWaitingInLine(h, waiter, 'the waiter in line');
    assert.deepEqual(await placesOf(waiter), ['waiting']);

    let releaseStorage = () => {};
    storageHeld = new Promise((resolve) => (releaseStorage = resolve));
    try {
      assert.equal((await alice.cancel('vlog', waiter)).statusCode, 202);
      // Were it still in line, the first lease to free would wake it, and it would never take it.
      await eventually(
        () => placesOf(waiter),
        (states) => states.length === 0,
        { what: 'the cancelled vlog out of the line', timeoutMs: 30_000 },
      );
      const row = await h.db
        .selectFrom('jobs')
        .select('status')
        .where('id', '=', waiter)
        .executeTakeFirstOrThrow();
      assert.equal(row.status, 'generating', 'its cleanup has not ended');
    } finally {
      releaseStorage();
      storageHeld = null;
    }
    const cancelled = await alice.awaitJob<VlogView>(
      'vlog',
      waiter,
      (view) => view.status === 'cancelled',
      { what: 'the waiter cancelled', timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.equal(cancelled.error?.code, 'CANCELLED');
    assert.deepEqual(await placesOf(holder), ['held']);
  });
});

describe('a vlog cancelled while Veo generates its video', () => {
  const stack = useOneLeaseStack({ jobReconcile: reconcileEverySecond });
  /** The Veo operation the vlog submitted, as fake Veo keeps it. */
  const operationOf = (jobId: string) =>
    [...stack.fakes.google.operations.values()].find((operation) =>
      operation.storageUri.includes(jobId),
    );

  it('keeps its lease while the generation runs on, and frees it for the next vlog once a look sees it end', async () => {
    const { fakes, h, alice, startVlog } = stack;
    fakes.google.scenario.pollsBeforeDone = Number.MAX_SAFE_INTEGER;
    const holder = await startVlog('Holder');
    const generation = await eventually(
      async () => operationOf(holder),
      (operation) => operation !== undefined,
      { what: "the holder's generation submitted on the only lease", timeoutMs: 60_000 },
    );
    const next = await startVlog('Next');
    await untilWaitingInLine(h, next, 'the next vlog waiting in line');

    assert.equal((await alice.cancel('vlog', holder)).statusCode, 202);
    await alice.awaitJob<VlogView>('vlog', holder, (view) => view.status === 'cancelled', {
      what: 'the holder cancelled',
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    // Runs of the job reconciler look at the generation the holder left running: it runs on.
    const looksBefore = generation!.polls;
    await eventually(
      async () => generation!.polls,
      (polls) => polls >= looksBefore + 2,
      { what: 'the reconciler looking at the generation left running', timeoutMs: 30_000 },
    );
    assert.deepEqual(await leasesOf(h, holder), ['held'], 'Veo still counts the generation');
    assert.equal(operationOf(next), undefined, 'the next vlog waits while it runs');

    const endedAt = Date.now();
    fakes.google.scenario.pollsBeforeDone = 0;
    const nextGeneration = await eventually(
      async () => operationOf(next),
      (operation) => operation !== undefined,
      { what: 'the next vlog submitted its generation', timeoutMs: recheckMs },
    );
    assert.ok(
      nextGeneration!.acceptedAt - endedAt < recheckMs,
      `submitted ${nextGeneration!.acceptedAt - endedAt} ms after the generation ended: woken, not rechecked`,
    );
    assert.equal(fakes.google.maxRunningOperations, 1, 'never two generations at Veo at once');
    assert.deepEqual(await leasesOf(h, holder), []);
    const seen = await h.db
      .selectFrom('provider_operations')
      .select('outcome')
      .where('job_id', '=', holder)
      .execute();
    assert.deepEqual(seen, [{ outcome: 'succeeded' }]);
    const charges = await h.db
      .selectFrom('cost_ledger')
      .select('kind')
      .where('job_id', '=', holder)
      .where('kind', '=', 'video')
      .execute();
    assert.equal(charges.length, 1, 'charged once, when it was cancelled');
  });
});
