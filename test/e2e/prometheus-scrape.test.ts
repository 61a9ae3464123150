// A real Prometheus scrapes the production shape (an API process and a worker process) while
// jobs run, and the numbers are read back through its query API, as a dashboard reads them;
// the project's alert rules run in it too.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { testJwtSecret } from '../support/harness.js';
import { onFreePorts } from '../support/ports.js';
import { startReadyService, type ServiceProcess } from '../support/processes.js';
import { parseMetrics } from '../support/metrics.js';
import { startPrometheus, type PromSeries, type TestPrometheus } from '../support/prometheus.js';
import {
  alertRuleExpressions,
  asSentByGrafana,
  dashboardExpressions,
  metricNamesIn,
} from '../support/promql.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

interface View {
  id: string;
  status: string;
  error: { code: string } | null;
}

describe('a real Prometheus scraping the API and the worker', () => {
  let google: FakeGoogle;
  let database: TestDatabase;
  let prometheus: TestPrometheus;
  let baseUrl: string;
  let workerMetricsUrl: string;
  let token: string;
  const temporal = testTemporal();
  const running: ServiceProcess[] = [];
  const jobIds: string[] = [];

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    database = await createTestDatabase();
    const env = {
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-prometheus-${randomUUID()}`),
      AUTH_JWT_SECRET: testJwtSecret,
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue('prometheus'),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      PROVIDER_RETRY_INITIAL_MS: '200',
      PROVIDER_RETRY_MAX_MS: '1000',
      PROVIDER_RATE_LIMIT_COOLDOWN_MS: '200',
      WORKER_SHUTDOWN_GRACE_MS: '1000',
    };
    const [apiPort, workerMetricsPort] = await onFreePorts(2, async (ports) => {
      const [api, metrics] = ports.map(String);
      const portsEnv = { ...env, API_PORT: api!, METRICS_PORT: metrics! };
      const apiProcess = await startReadyService('api', portsEnv, running);
      try {
        const worker = await startReadyService('worker', portsEnv, running);
        await worker.waitForLine(/metrics served/);
      } catch (error) {
        // Started again on fresh ports: this API would hold its port for nothing.
        await apiProcess.stop('SIGTERM');
        throw error;
      }
      return ports;
    });
    baseUrl = `http://127.0.0.1:${apiPort}`;
    workerMetricsUrl = `http://127.0.0.1:${workerMetricsPort}/metrics`;
    token = await mintToken(testJwtSecret, 'watcher');
    prometheus = await startPrometheus({
      'vlogflow-api': [`127.0.0.1:${apiPort}`],
      'vlogflow-worker': [`127.0.0.1:${workerMetricsPort}`],
    });
  });
  after(async () => {
    await prometheus?.stop();
    for (const id of jobIds) {
      await temporal.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    for (const service of running) await service.stop('SIGKILL');
    await temporal.close();
    await database?.drop();
    await google.stop();
  });

  async function start(route: string, body: object): Promise<string> {
    const response = await fetch(`${baseUrl}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 202, await response.clone().text());
    const { id } = (await response.json()) as View;
    jobIds.push(id);
    return id;
  }

  const ended = (id: string) =>
    eventually(
      async () => {
        const response = await fetch(`${baseUrl}/api/jobs/${id}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return (await response.json()) as View;
      },
      (view) => ['completed', 'failed', 'timeout', 'cancelled'].includes(view.status),
      { what: `job ${id} ended`, timeoutMs: 60_000 },
    );

  /** Polls a query until `done` accepts its answer: Prometheus scrapes every second. */
  const queried = (promql: string, done: (series: PromSeries[]) => boolean) =>
    eventually(() => prometheus.query(promql), done, {
      what: `Prometheus answering ${promql}`,
      timeoutMs: 30_000,
      intervalMs: 250,
    });

  /** The value of the one series of an aggregated query, or 0 without one. */
  const only = (series: PromSeries[]) => series[0]?.value ?? 0;

  // `increase()` sees nothing in a series' first sample: a counter whose series appears at 1
  // (its first event) never raises the alert that watches it. Every series an alert's
  // increase() selects is exported before any job, by one process or the other, from 0 (the
  // reconciler's batches have run by then: they count from 0 as it starts).
  it("exports before any job every series the alert rules' increase() reads", async () => {
    await queried('up{job=~"vlogflow-.*"} == 1', (series) => series.length === 2);
    const selectors = new Set(
      (await alertRuleExpressions()).flatMap(({ expr }) =>
        [...expr.matchAll(/increase\(([a-z_:]+(?:\{[^}]*\})?)\[/g)].map((match) => match[1]!),
      ),
    );
    assert.ok(selectors.size >= 5, [...selectors].join(', '));
    for (const selector of [
      ...selectors,
      // The failure alert sums by code: a code first seen is as silent as a counter first seen.
      ...['probe', 'ai', 'vlog'].map(
        (kind) => `vlogflow_job_failures_total{kind="${kind}",code="OTHER"}`,
      ),
    ]) {
      await queried(selector, (series) => series.length > 0);
    }
  });

  it('sees jobs move through the counters, a failure with its outcome, and the alert it raises', async () => {
    // Both processes are up and the job counters start at 0, before any job: the first
    // failure is then an increase.
    await queried('up{job=~"vlogflow-.*"} == 1', (series) => series.length === 2);
    await queried(
      'sum(vlogflow_jobs_finished_total{kind="ai",outcome="failed"})',
      (series) => series.length === 1 && only(series) === 0,
    );

    const probe = await start('/api/probes', { steps: 2, stepDelayMs: 100 });
    google.scenario.analysisFailures.push({ status: 429, retryDelay: '1s' });
    const answered = await start('/api/ai/jobs', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Climb a mountain' },
    });
    assert.equal((await ended(answered)).status, 'completed');
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const blocked = await start('/api/ai/jobs', {
      type: 'ACTION_GENERATION',
      input: { goal: 'Climb a mountain', subGoal: 'Train on stairs' },
    });
    assert.deepEqual(
      [(await ended(blocked)).status, (await ended(blocked)).error?.code],
      ['failed', 'SAFETY_BLOCKED'],
    );
    assert.equal((await ended(probe)).status, 'completed');

    // Counted by the worker process, read back through Prometheus.
    const finished = await queried(
      'sum by (kind, outcome) (vlogflow_jobs_finished_total{job="vlogflow-worker"}) > 0',
      (series) => series.length === 3,
    );
    assert.deepEqual(
      finished.map(({ metric, value }) => `${metric['kind']} ${metric['outcome']} ${value}`).sort(),
      ['ai completed 1', 'ai failed 1', 'probe completed 1'],
    );
    assert.equal(only(await prometheus.query('sum(vlogflow_jobs_started_total{kind="ai"})')), 2);
    assert.equal(
      only(
        await prometheus.query('sum(vlogflow_job_failures_total{kind="ai",code="SAFETY_BLOCKED"})'),
      ),
      1,
    );
    assert.equal(
      only(
        await prometheus.query(
          'sum(vlogflow_provider_requests_total{provider="gemini",outcome="rate_limited"})',
        ),
      ),
      1,
    );
    assert.equal(
      only(await prometheus.query('sum(vlogflow_job_stage_duration_seconds_count{kind="probe"})')),
      1,
    );
    // Counted by the API process: its requests, by route pattern. The API is scraped on its own
    // schedule, so its last scrape may predate the second POST: wait for one after it.
    const posts = await queried(
      'sum(vlogflow_http_request_duration_seconds_count{job="vlogflow-api",method="POST",route="/api/ai/jobs"})',
      (series) => only(series) >= 2,
    );
    assert.equal(only(posts), 2);
    // The Temporal SDK's metrics come from the worker's /metrics too.
    assert.ok(
      only(
        await prometheus.query(
          'sum(temporal_worker_task_slots_available{job="vlogflow-worker",worker_type="WorkflowWorker"})',
        ),
      ) > 0,
    );
    // Each process reports its heap limit, above what its heap uses: the heap-limit alert
    // divides by it.
    const withHeapLimit = await prometheus.query(
      'vlogflow_heap_limit_bytes > on (job, instance) nodejs_heap_size_used_bytes',
    );
    assert.deepEqual([...new Set(withHeapLimit.map(({ metric }) => metric['job']))].sort(), [
      'vlogflow-api',
      'vlogflow-worker',
    ]);
    // And its memory limit, above its resident set: the memory alert divides by it.
    const withMemoryLimit = await prometheus.query(
      'vlogflow_memory_limit_bytes > on (job, instance) process_resident_memory_bytes',
    );
    assert.deepEqual([...new Set(withMemoryLimit.map(({ metric }) => metric['job']))].sort(), [
      'vlogflow-api',
      'vlogflow-worker',
    ]);
    // Shared state is reported by the API alone.
    assert.deepEqual(
      (await prometheus.query('count by (job) (vlogflow_task_queue_pollers)')).map(
        ({ metric }) => metric['job'],
      ),
      ['vlogflow-api'],
    );

    // The failure raises the dead-letter alert, with its kind and code.
    const alerts = await eventually(
      () => prometheus.alerts(),
      (current) => current.some((alert) => alert.labels['alertname'] === 'VlogflowJobFailed'),
      { what: 'the VlogflowJobFailed alert', timeoutMs: 30_000, intervalMs: 250 },
    );
    const failedAlert = alerts.find((alert) => alert.labels['alertname'] === 'VlogflowJobFailed');
    assert.equal(failedAlert?.state, 'firing');
    assert.equal(failedAlert?.labels['kind'], 'ai');
    assert.equal(failedAlert?.labels['code'], 'SAFETY_BLOCKED');
  });

  it('serves every metric the dashboard and the alert rules query, in PromQL Prometheus accepts', async () => {
    // A job with an activity, so that the SDK has recorded its workflow and activity metrics.
    const job = await start('/api/ai/jobs', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Read every panel' },
    });
    assert.equal((await ended(job)).status, 'completed');
    const families = new Map<string, string>();
    for (const url of [`${baseUrl}/metrics`, workerMetricsUrl]) {
      const scraped = parseMetrics(await (await fetch(url)).text());
      for (const [name, type] of scraped.families) families.set(name, type);
    }
    const exported = (name: string) => {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
      // `up` is Prometheus's own, one per target.
      return (
        name === 'up' ||
        families.has(name) ||
        (histogram !== null && families.get(histogram[1]!) === 'histogram')
      );
    };
    const queries = [
      ...(await alertRuleExpressions()).map(({ alert, expr }) => ({ where: alert, expr })),
      ...(await dashboardExpressions()).map(({ panel, expr }) => ({
        where: `panel "${panel}"`,
        expr: asSentByGrafana(expr),
      })),
    ];
    assert.ok(queries.length >= 30, `only ${queries.length} queries found`);
    const unknown = queries.flatMap(({ where, expr }) =>
      metricNamesIn(expr)
        .filter((name) => !exported(name))
        .map((name) => `${where}: ${name}`),
    );
    assert.deepEqual(unknown, [], 'queries of metrics no process exports');
    for (const { where, expr } of queries) {
      await prometheus.query(expr).catch((error: unknown) => {
        throw new Error(`${where}: Prometheus refuses ${expr}`, { cause: error });
      });
    }

    // What the dashboard must show: throughput, durations by stage, waiting and oldest age per
    // kind, provider quota line and queue, failures by code, provider rate and 429s, what the calls cost (spend and
    // usage, budget refusals, charges the database did not take), and each process's memory.
    const shown = new Set(
      (await dashboardExpressions()).flatMap(({ expr }) => metricNamesIn(expr)),
    );
    for (const name of [
      'vlogflow_jobs_started_total',
      'vlogflow_jobs_finished_total',
      'vlogflow_job_failures_total',
      'vlogflow_job_duration_seconds_bucket',
      'vlogflow_job_stage_duration_seconds_bucket',
      'vlogflow_jobs_waiting',
      'vlogflow_oldest_waiting_job_age_seconds',
      'vlogflow_provider_jobs_waiting',
      'vlogflow_provider_oldest_wait_seconds',
      'vlogflow_task_queue_backlog_tasks',
      'vlogflow_task_queue_backlog_age_seconds',
      'vlogflow_provider_requests_total',
      'vlogflow_provider_cost_usd_total',
      'vlogflow_provider_usage_total',
      'vlogflow_budget_refusals_total',
      'vlogflow_ledger_charges_handed_over_total',
      'vlogflow_ledger_charges_deferred',
      'vlogflow_ledger_charges_lost_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
    ])
      assert.ok(shown.has(name), `the dashboard shows no ${name}`);
  });
});
