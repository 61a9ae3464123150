import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { leaseStaleAfterMs } from '../../src/activities/provider-quota.js';
import { loadConfig } from '../../src/config.js';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/database.js';
import { insertJob } from '../../src/db/jobs.js';
import {
  acquireProviderLease,
  releaseProviderLease,
  startProviderCooldown,
} from '../../src/db/provider-quota.js';
import { startMetricsServer } from '../../src/metrics/exposition.js';
import { createTemporalAccess } from '../../src/temporal-client.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { createTestDatabase } from '../support/database.js';
import { jobRecord } from '../support/jobs.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness, type TestApi } from '../support/harness.js';
import { testLogger } from '../support/logs.js';
import { parseMetrics, type Scrape } from '../support/metrics.js';
import { testEnv } from '../support/env.js';
import { openEventStream } from '../support/sse.js';
import { TcpProxy } from '../support/tcp-proxy.js';

interface View {
  id: string;
  status: string;
  error: { code: string } | null;
}

const ended = (view: View) => ['completed', 'failed', 'timeout', 'cancelled'].includes(view.status);

async function scrape(api: TestApi): Promise<Scrape> {
  const response = await api.app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(response.body);
}

function assertSourceUp(answer: Scrape, expected: { temporal: number; database: number }): void {
  assert.equal(answer.families.get('vlogflow_shared_state_up'), 'gauge');
  const up: Record<string, number> = {};
  for (const sample of answer.samples)
    if (sample.name === 'vlogflow_shared_state_up')
      up[sample.labels['source'] ?? ''] = sample.value;
  assert.deepEqual(up, expected);
}

/** What the server at `base` answers to `bytes` sent as they are, once it closes the connection. */
function rawExchange(base: string, bytes: string): Promise<string> {
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.write(bytes);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve(received));
  });
}

/** How much each counted series moved between two scrapes. */
function moved(before: Scrape, after: Scrape) {
  return (name: string, labels: Record<string, string> = {}) =>
    after.value(name, labels) - before.value(name, labels);
}

describe('metrics at GET /metrics', () => {
  let google: FakeGoogle;
  let h: Harness;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-metrics-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      PROVIDER_RETRY_INITIAL_MS: '200',
      PROVIDER_RETRY_MAX_MS: '1000',
      PROVIDER_RATE_LIMIT_COOLDOWN_MS: '200',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
  });
  after(async () => {
    await h.stop();
    await google.stop();
  });

  it('count jobs started and finished by kind, type and outcome, their stages, provider calls and requests', async () => {
    const ada = h.user('ada');
    const first = await scrape(h.api);

    const probe = await ada.startJob('probe', { steps: 2, stepDelayMs: 100 });
    // A 429, then a 503, then an answer: each call counted with its own outcome.
    google.scenario.analysisFailures.push({ status: 429, retryDelay: '1s' }, { status: 503 });
    const retried = await ada.startJob('ai', {
      type: 'ACTION_GENERATION',
      input: { goal: 'Sail around the island', subGoal: 'Learn to reef' },
    });
    assert.equal((await ada.awaitJob<View>('ai', retried.id, ended)).status, 'completed');
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const blocked = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Sail around the island' },
    });
    const failed = await ada.awaitJob<View>('ai', blocked.id, ended);
    assert.deepEqual([failed.status, failed.error?.code], ['failed', 'SAFETY_BLOCKED']);
    assert.equal((await ada.awaitJob<View>('probe', probe.id, ended)).status, 'completed');
    const unmatched = await ada.get('/no-such-route');
    assert.equal(unmatched.statusCode, 404);

    const last = await scrape(h.api);
    const delta = moved(first, last);
    assert.equal(delta('vlogflow_jobs_started_total', { kind: 'probe', type: 'PROBE' }), 1);
    assert.equal(
      delta('vlogflow_jobs_finished_total', { kind: 'probe', type: 'PROBE', outcome: 'completed' }),
      1,
    );
    assert.equal(delta('vlogflow_jobs_started_total', { kind: 'ai' }), 2);
    assert.equal(
      delta('vlogflow_jobs_finished_total', {
        kind: 'ai',
        type: 'ACTION_GENERATION',
        outcome: 'completed',
      }),
      1,
    );
    assert.equal(
      delta('vlogflow_jobs_finished_total', {
        kind: 'ai',
        type: 'SUBGOAL_GENERATION',
        outcome: 'failed',
      }),
      1,
    );
    assert.equal(delta('vlogflow_job_failures_total', { kind: 'ai', code: 'SAFETY_BLOCKED' }), 1);

    // Durations: one per finished attempt that ran, one per stage left.
    assert.equal(
      delta('vlogflow_job_duration_seconds_count', { kind: 'probe', outcome: 'completed' }),
      1,
    );
    assert.equal(delta('vlogflow_job_duration_seconds_count', { kind: 'ai' }), 2);
    // The 429 and the 503 were retried with backoff inside the one `processing` stage.
    assert.ok(
      delta('vlogflow_job_duration_seconds_sum', { kind: 'ai', outcome: 'completed' }) >= 1,
    );
    assert.equal(
      delta('vlogflow_job_stage_duration_seconds_count', { kind: 'probe', stage: 'running' }),
      1,
    );
    assert.ok(
      delta('vlogflow_job_stage_duration_seconds_sum', { kind: 'probe', stage: 'running' }) >= 0.2,
      'two 100 ms steps ran in the stage',
    );
    assert.equal(
      delta('vlogflow_job_stage_duration_seconds_count', { kind: 'ai', stage: 'processing' }),
      2,
    );

    const calls = { provider: 'gemini', operation: 'generate_text' };
    assert.equal(
      delta('vlogflow_provider_requests_total', { ...calls, outcome: 'rate_limited' }),
      1,
    );
    assert.equal(delta('vlogflow_provider_requests_total', { ...calls, outcome: 'error' }), 1);
    assert.equal(delta('vlogflow_provider_requests_total', { ...calls, outcome: 'rejected' }), 1);
    assert.equal(delta('vlogflow_provider_requests_total', { ...calls, outcome: 'ok' }), 1);
    assert.equal(delta('vlogflow_provider_request_duration_seconds_count', calls), 4);

    // Requests by route pattern (never an id) and status class.
    const requests = 'vlogflow_http_request_duration_seconds_count';
    assert.equal(
      delta(requests, { method: 'POST', route: '/api/ai/jobs', status_class: '2xx' }),
      2,
    );
    assert.equal(delta(requests, { method: 'POST', route: '/api/probes', status_class: '2xx' }), 1);
    assert.ok(
      delta(requests, { method: 'GET', route: '/api/ai/jobs/:id', status_class: '2xx' }) >= 2,
    );
    assert.equal(delta(requests, { method: 'GET', route: 'unmatched', status_class: '4xx' }), 1);
    assert.ok(
      last.samples.every(
        (sample) => !Object.values(sample.labels).some((value) => value.includes(probe.id)),
      ),
      'no label carries a job id',
    );

    // The Temporal SDK's own metrics are in the same answer, in seconds and with _total.
    assert.ok(last.value('temporal_worker_task_slots_available', { task_queue: h.taskQueue }) > 0);
    // The probe and the AI job that completed; the failed one stays open for a retry.
    assert.equal(delta('temporal_workflow_completed_total'), 2);
    assert.equal(
      last.families.get('temporal_workflow_task_schedule_to_start_latency_seconds'),
      'histogram',
    );
    // And Node's own.
    assert.ok(last.value('process_resident_memory_bytes') > 0);
  });

  it('report jobs waiting, the oldest wait and each task queue from shared state', async () => {
    // Jobs accepted on a queue no worker polls wait there.
    const idleQueue = `metrics-idle-${randomUUID().slice(0, 8)}`;
    const idle = await h.startApi({ taskQueue: idleQueue });
    const jobs = [await idle.user('bo').startJob('probe'), await idle.user('bo').startJob('probe')];
    h.terminateOnStop(...jobs.map((job) => job.id));

    const waiting = await eventually(
      () => scrape(idle),
      (current) =>
        current.value('vlogflow_jobs_waiting', { kind: 'probe' }) >= 2 &&
        current.value('vlogflow_task_queue_backlog_tasks', { queue: 'workflows' }) >= 2,
      { what: 'two jobs waiting in the backlog of the idle queue', timeoutMs: 30_000 },
    );
    assert.equal(
      waiting.value('vlogflow_jobs_waiting', { kind: 'vlog' }),
      0,
      'every kind has a series',
    );
    assert.ok(
      waiting.value('vlogflow_oldest_waiting_job_age_seconds', {
        kind: 'probe',
        status: 'pending',
      }) > 0,
    );
    // A job queued behind its key waits by design (for as long as the job ahead runs): it is
    // told apart from a pending one, which waits on the service.
    await insertJob(
      h.db,
      jobRecord({ createdAt: new Date(Date.now() - 3_600_000).toISOString() }),
      'queued',
    );
    const queued = await eventually(
      () => scrape(idle),
      (current) =>
        current.value('vlogflow_jobs_waiting', { kind: 'probe', status: 'queued' }) === 1,
      { what: 'the queued job counted apart' },
    );
    assert.ok(
      queued.value('vlogflow_oldest_waiting_job_age_seconds', {
        kind: 'probe',
        status: 'queued',
      }) >= 3_600,
    );
    assert.ok(
      queued.value('vlogflow_oldest_waiting_job_age_seconds', {
        kind: 'probe',
        status: 'pending',
      }) < 3_600,
    );
    assert.equal(
      waiting.value('vlogflow_task_queue_pollers', {
        queue: 'workflows',
        task_queue_type: 'workflow',
      }),
      0,
    );
    assert.ok(waiting.value('vlogflow_task_queue_backlog_age_seconds', { queue: 'workflows' }) > 0);

    // The harness's own queues have a worker.
    const polled = await scrape(h.api);
    assert.ok(polled.value('vlogflow_task_queue_pollers', { queue: 'workflows' }) >= 1);
    assert.ok(polled.value('vlogflow_task_queue_pollers', { queue: 'text-generation' }) >= 1);
  });

  it("report each provider's line at the quota governor: jobs waiting, the first one's wait, operations held, the cool-down", async () => {
    // Jobs waiting for a provider's quota are in a stage already, on timers, in no task queue:
    // only these gauges show a line growing, or one that no longer moves.
    const provider = `metrics-veo-${randomUUID().slice(0, 8)}`;
    const lease = (jobId: string, ownerId: string) =>
      acquireProviderLease(h.db, {
        provider,
        jobId,
        ownerId,
        limit: 1,
        staleAfterMs: leaseStaleAfterMs,
      });
    const jobIds = ['held-1', 'waiting-1', 'waiting-2'].map((id) => `${provider}-${id}`);
    assert.deepEqual(await lease(jobIds[0]!, 'ann'), { granted: true });
    assert.equal((await lease(jobIds[1]!, 'ann')).granted, false);
    assert.equal((await lease(jobIds[2]!, 'bo')).granted, false);
    await startProviderCooldown(h.db, provider, 60_000);

    const waiting = await eventually(
      () => scrape(h.api),
      (current) => current.value('vlogflow_provider_jobs_waiting', { provider }) === 2,
      { what: "two jobs in the provider's line" },
    );
    assert.equal(waiting.families.get('vlogflow_provider_jobs_waiting'), 'gauge');
    assert.equal(waiting.value('vlogflow_provider_operations_held', { provider }), 1);
    assert.ok(waiting.value('vlogflow_provider_oldest_wait_seconds', { provider }) > 0);
    const cooldown = waiting.value('vlogflow_provider_cooldown_seconds', { provider });
    assert.ok(cooldown > 0 && cooldown <= 60, `cool-down ${cooldown} s`);

    for (const jobId of jobIds) await releaseProviderLease(h.db, jobId, provider);
    const drained = await eventually(
      () => scrape(h.api),
      (current) =>
        current.value('vlogflow_provider_jobs_waiting', { provider }) === 0 &&
        current.value('vlogflow_provider_operations_held', { provider }) === 0,
      { what: "the provider's line drained" },
    );
    assert.equal(drained.value('vlogflow_provider_oldest_wait_seconds', { provider }), 0);
  });

  it("report how long the quietest job in a stage has gone without an update, leaving out a provider's line", async () => {
    // A job whose workflow tasks fail stays in its stage and writes nothing: only its row's age
    // says so. One waiting in a provider's line asks again only as its place comes.
    const own = await startHarness();
    try {
      const stuck = jobRecord();
      const inLine = jobRecord({ id: `vlog-${randomUUID()}`, kind: 'vlog', type: 'VLOG' });
      const moving = jobRecord({ id: `vlog-${randomUUID()}`, kind: 'vlog', type: 'VLOG' });
      await insertJob(own.db, stuck, 'running');
      await insertJob(own.db, inLine, 'generating');
      await insertJob(own.db, moving, 'generating');
      await own.db
        .updateTable('jobs')
        .set({ updated_at: sql<Date>`now() - interval '1 hour'` })
        .where('id', 'in', [stuck.id, inLine.id])
        .execute();
      await own.db
        .updateTable('jobs')
        .set({ updated_at: sql<Date>`now() - interval '2 minutes'` })
        .where('id', '=', moving.id)
        .execute();
      const provider = `metrics-quiet-${randomUUID().slice(0, 8)}`;
      const lease = (jobId: string) =>
        acquireProviderLease(own.db, {
          provider,
          jobId,
          ownerId: 'alice',
          limit: 1,
          staleAfterMs: leaseStaleAfterMs,
        });
      assert.deepEqual(await lease(`${provider}-held`), { granted: true });
      assert.equal((await lease(inLine.id)).granted, false);

      const scraped = await scrape(own.api);
      assert.equal(scraped.families.get('vlogflow_oldest_quiet_job_seconds'), 'gauge');
      const quiet = (kind: string) => scraped.value('vlogflow_oldest_quiet_job_seconds', { kind });
      assert.ok(quiet('probe') >= 3600 && quiet('probe') < 3700, `probe quiet ${quiet('probe')} s`);
      assert.ok(quiet('vlog') >= 120 && quiet('vlog') < 220, `vlog quiet ${quiet('vlog')} s`);
      assert.equal(quiet('ai'), 0, 'every kind has a series');
      assert.ok(
        scraped.samples.some(
          (sample) =>
            sample.name === 'vlogflow_oldest_quiet_job_seconds' && sample.labels['kind'] === 'ai',
        ),
      );
    } finally {
      await own.stop();
    }
  });

  it('still answer when Temporal does not: the queue gauges are left out, the rest is there', async () => {
    // Temporal behind a proxy that stops forwarding: calls hang, as behind a dead network path.
    const [host, port] = testEnv.temporalAddress.split(':');
    const proxy = await TcpProxy.start(host!, Number(port));
    const temporal = createTemporalAccess(
      { address: `127.0.0.1:${proxy.port}` },
      testEnv.temporalNamespace,
    );
    const cut = await startHarness({ temporal });
    try {
      const answering = await scrape(cut.api);
      assert.ok(answering.families.has('vlogflow_task_queue_pollers'));
      assert.equal(answering.value('vlogflow_shared_state_up', { source: 'temporal' }), 1);
      assert.equal(answering.value('vlogflow_shared_state_up', { source: 'database' }), 1);
      proxy.stall();
      // The read before the stall serves the scrapes of the next few seconds; the first read
      // after it finds Temporal silent.
      const scraped = await eventually(
        async () => {
          const startedAt = Date.now();
          const answer = await scrape(cut.api);
          assert.ok(Date.now() - startedAt < 10_000, 'within a scrape timeout');
          return answer;
        },
        (answer) =>
          !answer.samples.some((sample) => sample.name.startsWith('vlogflow_task_queue_')),
        { what: 'a scrape without the queue gauges', timeoutMs: 30_000 },
      );
      assert.equal(scraped.value('vlogflow_jobs_waiting', { kind: 'probe' }), 0);
      assert.equal(scraped.families.get('vlogflow_jobs_waiting'), 'gauge');
      assert.ok(scraped.value('process_resident_memory_bytes') > 0);
      // The gauges' absence alone silences every alert on them: the source says it is out.
      assertSourceUp(scraped, { temporal: 0, database: 1 });
      proxy.restore();
      await eventually(
        () => scrape(cut.api),
        (answer) => answer.value('vlogflow_shared_state_up', { source: 'temporal' }) === 1,
        { what: 'Temporal read again', timeoutMs: 30_000 },
      );
    } finally {
      await cut.stop();
      await temporal.close();
      await proxy.stop();
    }
  });

  it('say when the database does not answer, rather than only leaving its gauges out', async () => {
    // The database behind a proxy that stops forwarding: queries hang, as on a stalled server.
    const database = await createTestDatabase();
    const postgres = new URL(database.url);
    const proxy = await TcpProxy.start(postgres.hostname, Number(postgres.port || 5432));
    const proxied = new URL(database.url);
    proxied.port = String(proxy.port);
    const db = await openDatabase({ databaseUrl: proxied.href, dataDir: '.', maxConnections: 5 });
    const own = await startHarness({ db });
    try {
      assertSourceUp(await scrape(own.api), { temporal: 1, database: 1 });
      proxy.stall();
      const scraped = await eventually(
        () => scrape(own.api),
        (answer) => !answer.samples.some((sample) => sample.name === 'vlogflow_jobs_waiting'),
        { what: 'a scrape without the database gauges', timeoutMs: 30_000 },
      );
      assertSourceUp(scraped, { temporal: 1, database: 0 });
    } finally {
      proxy.restore();
      await own.stop();
      await db.destroy().catch(() => undefined);
      await proxy.stop();
      await database.drop();
    }
  });

  it('read the shared state once for the scrapes that come together', async () => {
    // The waiting jobs' count, the database's part of each read.
    const statements: string[] = [];
    const database = await createTestDatabase({
      onQuery: (query) => {
        if (query.sql.includes('"oldestAgeSeconds"')) statements.push(query.sql);
      },
    });
    const own = await startHarness({ db: database.db });
    try {
      statements.length = 0;
      await scrape(own.api);
      const oneRead = statements.length;
      assert.equal(oneRead, 1, 'a scrape reads the database');
      const scrapes = await Promise.all(Array.from({ length: 20 }, () => scrape(own.api)));
      assert.equal(statements.length, oneRead, 'the scrapes after it read nothing more');
      for (const answer of scrapes)
        assert.equal(answer.families.get('vlogflow_jobs_waiting'), 'gauge');
    } finally {
      await own.stop();
      await database.drop();
    }
  });

  it('count the progress streams held open', async () => {
    const ada = h.user('ada');
    google.scenario.analysisAnswers.push({ kind: 'hang' });
    const job = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Hold the stream open' },
    });
    const base = await h.api.listen();
    const openStreams = async () => (await scrape(h.api)).value('vlogflow_sse_streams_open');
    const before = await openStreams();
    const stream = await openEventStream(`${base}/api/ai/jobs/${job.id}/events`, {
      authorization: await ada.authorization(),
    });
    assert.equal(stream.status, 200);
    await stream.next();
    assert.equal(await openStreams(), before + 1);
    stream.close();
    await eventually(openStreams, (open) => open === before, { what: 'the stream counted closed' });
    assert.equal((await ada.cancel('ai', job.id)).statusCode, 202);
    await ada.awaitJob<View>('ai', job.id, ended);
  });

  // rate() reads a series' first sample as its start: a route's first 5xx, the one that made
  // its 5xx series, was counted as none.
  it("have each route's 5xx series from the start, at 0", async () => {
    const fresh = await h.startApi();
    const lines = (await fresh.app.inject({ method: 'GET', url: '/metrics' })).body.split('\n');
    for (const [method, route] of [
      ['GET', '/api/jobs/:id'],
      ['POST', '/api/vlogs'],
      ['POST', '/api/ai/jobs/:id/cancel'],
    ]) {
      const line = `vlogflow_http_request_duration_seconds_count{method="${method}",route="${route}",status_class="5xx"} 0`;
      assert.ok(lines.includes(line), line);
    }
  });

  it('count every answer: the API docs, router refusals and requests Node refused before routing', async () => {
    const fresh = await h.startApi();
    const base = await fresh.listen();
    const before = await scrape(fresh);
    for (const url of [
      '/docs/json',
      '/docs/static/missing.css',
      '/api/%zz',
      '/api/jobs/%E0%A4%A',
    ]) {
      await fresh.app.inject({ method: 'GET', url });
    }
    // Bytes that are not HTTP, over a real socket: Node answers them before Fastify sees them.
    const answer = await rawExchange(base, 'BREW /api/jobs HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const delta = moved(before, await scrape(fresh));
    const requests = 'vlogflow_http_request_duration_seconds_count';
    assert.equal(delta(requests, { method: 'GET', route: '/docs/json', status_class: '2xx' }), 1);
    assert.equal(delta(requests, { method: 'GET', route: 'unmatched', status_class: '4xx' }), 3);
    assert.equal(delta('vlogflow_http_connections_refused_total', { code: 'BAD_REQUEST' }), 1);
  });

  it('answer gzipped to Prometheus, which asks for it', async () => {
    const fresh = await h.startApi();
    const response = await fresh.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-encoding'], 'gzip');
    assert.equal(response.headers.vary, 'accept-encoding');
    const text = gunzipSync(response.rawPayload).toString();
    assert.equal(parseMetrics(text).families.get('vlogflow_sse_streams_open'), 'gauge');
    assert.ok(response.rawPayload.length * 4 < text.length, 'a quarter of the bytes at most');
  });

  it('say how many progress streams an API process may hold open, for how near the open ones are', async () => {
    const capped = await h.startApi({ env: { EVENT_STREAM_MAX_OPEN: '1234' } });
    const scraped = await scrape(capped);
    assert.equal(scraped.families.get('vlogflow_sse_streams_max'), 'gauge');
    assert.equal(scraped.value('vlogflow_sse_streams_max'), 1234);
  });

  it("serve a worker process's metrics on a port of their own", async () => {
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, testLogger());
    try {
      const response = await fetch(server.url);
      assert.equal(response.status, 200);
      const scraped = parseMetrics(await response.text());
      assert.equal(scraped.families.get('vlogflow_jobs_finished_total'), 'counter');
      assert.ok(scraped.value('vlogflow_jobs_finished_total') >= 3, 'the jobs this process ran');
      assert.ok(scraped.value('temporal_worker_task_slots_available') > 0);
      // Shared state is the API's to report, so that it is counted once; streams are the API's
      // alone (a worker's 0 of 0 was drawn as a share of NaN).
      assert.equal(scraped.families.has('vlogflow_jobs_waiting'), false);
      assert.equal(scraped.families.has('vlogflow_sse_streams_open'), false);
      assert.equal(scraped.families.has('vlogflow_sse_streams_max'), false);
      assert.equal((await fetch(new URL('/other', server.url))).status, 404);
    } finally {
      await server.close();
    }
  });
});
