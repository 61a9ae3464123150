import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { jobLedger } from '../../src/db/costs.js';
import { eventually } from '../support/eventually.js';
import { FaultStack, isTerminal, type FaultJob, type JobView } from '../support/fault-stack.js';
import type { ServiceProcess } from '../support/processes.js';

/** The order statuses move in; a poller must never see a job go back in it. */
const statusOrder: Record<string, number> = {
  pending: 0,
  analyzing: 1,
  processing: 1,
  generating: 2,
  transferring: 3,
  completed: 4,
  failed: 4,
  cancelled: 4,
  timeout: 4,
};

/** The least time PostgreSQL stays unreachable. */
const outageMs = 6_000;

/** What one polling client saw. */
interface PollLog {
  job: FaultJob;
  answers: { at: number; status: number | 'connection error'; view: JobView | null }[];
}

// The service's dependencies fail while jobs run: the AI provider answers nothing but 429 and
// 5xx for a while, PostgreSQL becomes unreachable, and the API is killed while clients poll.
describe('fault: dependencies fail mid-job', () => {
  let stack: FaultStack;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  before(async () => {
    stack = await FaultStack.start({
      name: 'deps',
      // A storm of several seconds outlasts the default three attempts at these short backoffs.
      // A 429 without RetryInfo cools the provider down for 1 s, as long as the storm's 429 that
      // names its delay, so calls meet the storm again and again within seconds.
      env: { PROVIDER_RETRY_ATTEMPTS: '20', PROVIDER_RATE_LIMIT_COOLDOWN_MS: '1000' },
    });
    api = await stack.start('api');
    worker = await stack.start('worker');
  });
  // A scenario that failed half-way must not leave its fault on for the next one.
  afterEach(() => {
    stack.fakes.google.scenario.storm = null;
    stack.fakes.google.scenario.answerFor = null;
    stack.database.restore();
    stack.googleGate.releaseAll();
  });
  after(() => stack.stop());

  it('an AI provider storm of 429/500/503, then recovery: every job completes, a blocked one still fails', async () => {
    const google = stack.fakes.google;
    google.scenario.answerFor = (prompt) =>
      prompt.includes(stack.markerPrefix('storm-blocked')) ? { kind: 'blocked' } : undefined;
    // Two vlogs wait at Veo (one to start its generation, one to check it) when the storm begins.
    const veoHolds = [
      stack.holdGoogleCalls('startVideoGeneration', ['storm-start'], 'predictLongRunning'),
      stack.holdGenerationChecks('checkVideoGeneration', ['storm-check']),
    ];
    const vlogs = [await stack.submitVlog('storm-start'), await stack.submitVlog('storm-check')];
    for (const hold of veoHolds) await stack.waitHeld(hold, 1);

    // The vlogs wait at Veo: every model call refused is an AI job's (streamGenerateContent).
    const before = { ...google.stormRefusalsByMethod };
    const refusedSince = () => {
      const { generateContent: _analyses, ...calls } = google.stormRefusalsByMethod;
      return Object.fromEntries(
        Object.entries(calls).map(([method, count]) => [
          method,
          count - before[method as keyof typeof before],
        ]),
      );
    };
    const storm = [
      { status: 429, retryDelay: '1s' },
      { status: 500 },
      { status: 503 },
      { status: 429 },
    ] as const;
    const servedBefore = new Map(google.responsesByStatus);
    const servedSince = (status: number) =>
      (google.responsesByStatus.get(status) ?? 0) - (servedBefore.get(status) ?? 0);
    google.scenario.storm = [...storm];
    const stormStarted = Date.now();
    for (const hold of veoHolds) hold.release();
    const jobs = [
      ...vlogs,
      ...(await Promise.all([
        ...Array.from({ length: 4 }, () => stack.submitAi('storm')),
        stack.submitAi('storm-blocked', { status: 'failed', code: 'SAFETY_BLOCKED' }),
      ])),
    ];
    // Every kind of call is refused, again and again, every failure of the storm at least
    // twice, for 5 s at least. Each 429 stops the calls to its provider for its cool-down.
    await eventually(
      async () => refusedSince(),
      (refused) =>
        Object.values(refused).every((count) => count >= 2) &&
        Object.values(refused).reduce((sum, count) => sum + count, 0) >= 2 * storm.length,
      { what: 'every kind of call refused repeatedly', timeoutMs: 60_000, intervalMs: 100 },
    );
    await delay(Math.max(0, stormStarted + 5_000 - Date.now()));
    assert.ok(
      (await Promise.all(jobs.map((job) => stack.view(job)))).every(
        (view) => view !== null && !isTerminal(view),
      ),
      'a job gave up during the storm',
    );
    google.scenario.storm = null;
    const stormEnded = Date.now();
    const refused = refusedSince();
    const recoveryMs = await stack.waitAllFinal(jobs);
    google.scenario.answerFor = null;
    // The fake served the storm's failures in turn, and no other error, before or after it.
    const refusals = Object.values(refused).reduce((sum, count) => sum + count, 0);
    for (const status of [429, 500, 503]) {
      const expected = Array.from(
        { length: refusals },
        (_, turn) => storm[turn % storm.length]!,
      ).filter((failure) => failure.status === status).length;
      assert.ok(expected >= 2, `only ${refusals} refusals`);
      assert.equal(servedSince(status), expected, `${status} answers served`);
    }
    // The 429s to Gemini and to Veo each started a cool-down shared by every worker.
    const cooledDown = await stack.testDatabase.db
      .selectFrom('provider_cooldowns')
      .select('provider')
      .orderBy('provider')
      .execute();
    assert.deepEqual(
      cooledDown.map((row) => row.provider),
      ['gemini', 'veo'],
    );
    // A 429 is waited out on a timer, not retried: only the 5xx answers cost activity attempts.
    const retried = (await Promise.all(jobs.map((job) => stack.retriedAttempts(job)))).reduce(
      (sum, count) => sum + count,
      0,
    );
    const served5xx = servedSince(500) + servedSince(503);
    assert.ok(
      retried <= served5xx,
      `${retried} activity attempts retried for ${served5xx} 5xx answers: 429s were retried too`,
    );

    await stack.finish(
      {
        scenario: 'AI provider 429/5xx storm',
        fault:
          'every Gemini and Veo call answered 429 (RetryInfo 1 s), 500, 503 or 429 in turn for 5 s, then recovery',
        faultMs: stormEnded - stormStarted,
        recoveryMs,
        notes: [
          `refused during the storm: ${refused['streamGenerateContent']} model calls, ${refused['predictLongRunning']} Veo starts, ${refused['fetchPredictOperation']} Veo checks; no job gave up`,
          `answers served: ${servedSince(429)} × 429, ${servedSince(500)} × 500, ${servedSince(503)} × 503`,
          `each 429 cooled its provider down (RetryInfo, else PROVIDER_RATE_LIMIT_COOLDOWN_MS = 1 s) for every worker, and its job waited on a timer: ${retried} activity attempts retried, for the 5xx answers only`,
          'the job blocked for safety failed SAFETY_BLOCKED once the storm was over, without retries',
        ],
      },
      jobs,
    );
  });

  it('PostgreSQL unreachable: /readyz answers 503, projections retry, and the jobs complete after', async () => {
    const holds = [
      stack.holdGoogleCalls('generateAiItems', ['pg'], 'streamGenerateContent'),
      stack.holdGoogleCalls('analyzeMedia', ['pg-vlog'], 'generateContent'),
    ];
    const jobs = await Promise.all([
      stack.submitAi('pg'),
      stack.submitAi('pg'),
      stack.submitAi('pg'),
      stack.submitVlog('pg-vlog'),
      stack.submitVlog('pg-vlog'),
    ]);
    await stack.waitHeld(holds[0]!, 3);
    await stack.waitHeld(holds[1]!, 2);

    // The path to PostgreSQL goes dead first, so both processes have queries in flight on
    // connections they hold (the worker's projections and streamed model output, the API's
    // readiness ping and a job view); then it is cut, and those connections drop under them.
    // A vlog's analysis ends and its projection waits on the dead path; an AI job's model
    // call writes the answer's pieces to the event log as they come, so the call itself
    // waits on it until the cut.
    const cutAt = Date.now();
    stack.database.stall();
    for (const hold of holds) hold.release();
    for (const job of jobs.filter((each) => each.kind === 'vlog'))
      await stack.waitProjecting(job, 'analyzeMedia');
    const viewDuringOutage = fetch(stack.viewUrl(jobs[0]), {
      headers: { authorization: `Bearer ${stack.token}` },
    }).then(
      async (response) =>
        `${response.status} ${((await response.json()) as { error?: { code: string } }).error?.code}`,
      () => 'connection error',
    );
    const stalled = await stack.readiness();
    assert.equal(stalled.status, 503);
    stack.database.cut();
    for (const job of jobs.filter((each) => each.kind === 'ai'))
      await stack.waitProjecting(job, 'generateAiItems');

    const notReady = await eventually(
      () => stack.readiness(),
      (answer) => answer.status === 503,
      { what: '/readyz 503', timeoutMs: 15_000, intervalMs: 200 },
    );
    const checks = (
      notReady.body['error'] as { details: { checks: Record<string, { ok: boolean }> } }
    ).details.checks;
    assert.equal(checks['database']?.ok, false);
    assert.equal(checks['temporal']?.ok, true);
    const refusedStart = await fetch(`${stack.baseUrl}/api/ai/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'SUBGOAL_GENERATION', input: { goal: 'Not now' } }),
    });
    assert.equal(
      refusedStart.status,
      503,
      'a job is refused, not half-started, without its database',
    );
    assert.equal(
      ((await refusedStart.json()) as { error: { code: string } }).error.code,
      'DATABASE_UNAVAILABLE',
    );

    // Every job fails its next database write, and retries it (a local activity: its failed
    // attempts are in the worker's log, not in the workflow's pending activities). An AI job's
    // is the projection of its next state; a vlog past its analysis first asks for its Veo
    // turn (the governor's lease request), and writes its next state with the answer.
    const nextWrite = (job: FaultJob) =>
      job.kind === 'vlog' ? 'admitVideoGeneration' : 'recordJobUpdates';
    let maxProjectionAttempt = 0;
    for (const job of jobs) {
      const failed = await eventually(
        async () =>
          worker
            .logs()
            .filter(
              (line) =>
                line['msg'] === 'Activity failed' &&
                line['activityType'] === nextWrite(job) &&
                line['workflowId'] === job.id,
            )
            .map((line) => Number(line['attempt'])),
        (attempts) => attempts.some((attempt) => attempt >= 3),
        { what: `${job.id}: its ${nextWrite(job)} failed three times`, timeoutMs: 60_000 },
      );
      maxProjectionAttempt = Math.max(maxProjectionAttempt, ...failed);
    }
    assert.equal(api.child.exitCode, null, 'the API outlived its database connections');
    assert.equal(worker.child.exitCode, null, 'the worker outlived its database connections');
    await delay(Math.max(0, cutAt + outageMs - Date.now()));
    stack.database.restore();
    const restoredAt = Date.now();
    await eventually(
      () => stack.readiness(),
      (answer) => answer.status === 200,
      { what: '/readyz 200 again', timeoutMs: 15_000, intervalMs: 200 },
    );
    const readyAgainMs = Date.now() - restoredAt;
    assert.equal(
      await viewDuringOutage,
      '503 DATABASE_UNAVAILABLE',
      'a read without its database is a 503 to retry, not a 500',
    );
    const recoveryMs = await stack.waitAllFinal(jobs);

    // The vlogs' analyses were answered while the path was stalled: their charges waited in the
    // worker instead of failing the analysis (whose retry would have paid again), and reached the
    // ledger once the database was back, one row each.
    const deferred = worker
      .logs()
      .filter((line) => line['msg'] === 'the ledger write of a charge waits for the database');
    const vlogs = jobs.filter((each) => each.kind === 'vlog');
    for (const vlog of vlogs) {
      assert.ok(
        deferred.some((line) => line['jobId'] === vlog.id),
        `${vlog.id}: its analysis's charge waited for the database`,
      );
    }
    for (const vlog of vlogs) {
      const analyses = await eventually(
        async () =>
          (await jobLedger(stack.testDatabase.db, vlog.id)).filter(
            (entry) => entry.kind === 'analysis',
          ).length,
        (count) => count >= 1,
        { what: `${vlog.id}: its analysis in the ledger`, timeoutMs: 30_000 },
      );
      assert.equal(analyses, 1, `${vlog.id}: its analysis charged once`);
    }

    await stack.finish(
      {
        scenario: 'PostgreSQL unreachable',
        fault:
          'the API’s and the worker’s path to PostgreSQL stalled with queries in flight, then cut (connections closed, new ones refused), then restored',
        faultMs: restoredAt - cutAt,
        recoveryMs,
        notes: [
          `/readyz: 503 NOT_READY with checks.database.ok = false during the outage, 200 again ${readyAgainMs} ms after the restore`,
          `GET of a job whose query was in flight when the path was cut: ${await viewDuringOutage}; POST of a new job: 503 DATABASE_UNAVAILABLE and no workflow`,
          `the next database write of every job (an AI job's projection, a vlog's Veo turn request) was retrying (attempt ${maxProjectionAttempt} at most when all were seen retrying) and every final state was projected after the restore; their backoff (1 s doubling, 10 s at most: databaseRetry) decides how soon`,
        ],
      },
      jobs,
    );
  });

  it('a worker SIGKILLed while a charge waits for PostgreSQL: the charge reaches the ledger once, from Temporal, when the database is back', async () => {
    const hold = stack.holdGoogleCalls('analyzeMedia', ['charge-kill'], 'generateContent');
    const vlog = await stack.submitVlog('charge-kill');
    await stack.waitHeld(hold, 1);

    // The analysis is answered while the path to PostgreSQL is stalled: its charge cannot be
    // written, the activity ends without it, and the worker that made it is killed before the
    // database is back.
    stack.database.stall();
    hold.release();
    await stack.waitProjecting(vlog, 'analyzeMedia');
    await eventually(
      async () =>
        worker
          .logs()
          .some(
            (line) =>
              line['msg'] === 'the ledger write of a charge waits for the database' &&
              line['jobId'] === vlog.id,
          ),
      Boolean,
      { what: `${vlog.id}: its analysis's charge waited for the database`, timeoutMs: 10_000 },
    );
    // Cut, so no write the stalled path still holds lands when it is restored.
    stack.database.cut();
    const killedAt = Date.now();
    await stack.kill(worker);
    stack.database.restore();
    worker = await stack.start('worker');
    const recoveryMs = await stack.waitAllFinal([vlog]);

    const analyses = await eventually(
      async () =>
        (await jobLedger(stack.testDatabase.db, vlog.id)).filter(
          (entry) => entry.kind === 'analysis',
        ),
      (rows) => rows.length >= 1,
      { what: `${vlog.id}: its analysis in the ledger`, timeoutMs: 60_000 },
    );
    assert.equal(analyses.length, 1, 'its analysis charged once');
    const deferred = stack.client.workflow.getHandle(
      `ledger-charge:${analyses[0]!.idempotency_key}`,
    );
    // Its activity writes the row before the workflow closes: the close is the workflow's end.
    await deferred.result();
    assert.equal(
      (await deferred.describe()).status.name,
      'COMPLETED',
      'written by the workflow it was handed to',
    );

    await stack.finish(
      {
        scenario: 'worker killed while a charge waits for PostgreSQL',
        fault:
          'a vlog’s analysis answered while the path to PostgreSQL stalled, its worker SIGKILLed before the database came back, then the database restored and a worker started again',
        faultMs: Date.now() - killedAt,
        recoveryMs,
        notes: [
          'the charge was handed to a recordDeferredCharge workflow before the analysis activity ended; the new worker wrote it under its key, once',
        ],
      },
      [vlog],
    );
  });

  it('the API SIGKILLed and restarted while clients poll: only valid answers, nothing goes backwards', async () => {
    const holds = [
      stack.holdGoogleCalls('generateAiItems', ['poll'], 'streamGenerateContent'),
      stack.holdGenerationChecks('checkVideoGeneration', ['poll-vlog']),
    ];
    const jobs = await Promise.all([
      stack.submitAi('poll'),
      stack.submitAi('poll'),
      stack.submitAi('poll'),
      stack.submitVlog('poll-vlog'),
      stack.submitVlog('poll-vlog'),
    ]);
    await stack.waitHeld(holds[0]!, 3);
    await stack.waitHeld(holds[1]!, 2);

    let polling = true;
    const logs: PollLog[] = jobs.flatMap((job) => [
      { job, answers: [] },
      { job, answers: [] },
    ]);
    const pollers = logs.map(async (log) => {
      while (polling) {
        const at = Date.now();
        try {
          const response = await fetch(stack.viewUrl(log.job), {
            headers: { authorization: `Bearer ${stack.token}` },
          });
          const body: unknown = await response.json();
          log.answers.push({
            at,
            status: response.status,
            view: response.ok ? (body as JobView) : null,
          });
          if (response.ok && isTerminal(body as JobView)) return;
        } catch {
          log.answers.push({ at, status: 'connection error', view: null });
        }
        await delay(50);
      }
    });
    const answeredSince = (since: number) =>
      logs.every((log) =>
        log.answers.some((answer) => answer.at >= since && answer.status === 200),
      );
    await eventually(async () => answeredSince(0), Boolean, { what: 'every poller answered' });

    const killedAt = Date.now();
    await stack.kill(api);
    await delay(1_000);
    api = await stack.start('api');
    const restartedAt = Date.now();
    await eventually(async () => answeredSince(restartedAt), Boolean, {
      what: 'every poller answered by the restarted API',
    });
    for (const hold of holds) hold.release();
    const recoveryMs = await stack.waitAllFinal(jobs);
    polling = false;
    await Promise.all(pollers);

    const answers = logs.flatMap((log) => log.answers);
    const invalid = answers.filter(
      (answer) => answer.status !== 200 && answer.status !== 'connection error',
    );
    assert.deepEqual(invalid, [], 'pollers only ever get a view or no connection');
    for (const log of logs) {
      const views = log.answers.flatMap((answer) => (answer.view ? [answer.view] : []));
      for (let i = 1; i < views.length; i += 1) {
        const [before, now] = [views[i - 1]!, views[i]!];
        assert.ok(
          statusOrder[now.status]! >= statusOrder[before.status]! &&
            now.progress >= before.progress,
          `${log.job.id} went back from ${before.status} ${before.progress}% to ${now.status} ${now.progress}%`,
        );
      }
    }
    const connectionErrors = answers.filter(
      (answer) => answer.status === 'connection error',
    ).length;

    await stack.finish(
      {
        scenario: 'API restarted while clients poll',
        fault: `the API SIGKILLed and started again 1 s later while ${logs.length} clients polled ${jobs.length} jobs`,
        faultMs: restartedAt - killedAt,
        recoveryMs,
        notes: [
          `${answers.length} polls: ${answers.length - connectionErrors} answered 200, ${connectionErrors} connection errors while the API was down, no other status`,
          'no poller saw a job’s status or progress go backwards',
          'recovery is measured from the restart; the jobs were held mid-job until then',
        ],
      },
      jobs,
    );
  });
});
