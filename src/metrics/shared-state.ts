/**
 * Gauges read from state every process shares: the jobs waiting to start and each provider's
 * line at the provider-quota governor (the database), and each task queue's backlog and
 * pollers (Temporal's task-queue statistics). They are read when
 * Prometheus scrapes an API process, so every API process reports the same values: aggregate
 * them with `max` (or `min`), never `sum`. Workers do not export them.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Gauge, Registry } from 'prom-client';
import type { Db } from '../db/database.js';
import { quietJobsByKind, waitingJobsByKind } from '../db/jobs.js';
import { providerLines } from '../db/provider-quota.js';
import { leaseStaleAfterMs } from '../activities/provider-quota.js';
import { waitingStatuses } from '../jobs/model.js';
import { jobKindRegistry } from '../kinds/index.js';
import type { Logger } from '../logger.js';
import type { TaskQueueWatch } from '../task-queue-status.js';

/** How long a read of the shared state serves the scrapes that follow it. */
const defaultFreshForMs = 5_000;

/** How long one scrape waits for each source; a scrape must not outlast Prometheus's timeout. */
const readTimeoutMs = 3_000;

export interface SharedStateMetrics {
  registry: Registry;
  /**
   * Reads the shared state into the gauges, unless a read began within the freshness window;
   * a source that does not answer leaves its gauges empty.
   */
  refresh(): Promise<void>;
}

export function createSharedStateMetrics(deps: {
  db: Db;
  /** The task queues' pollers and backlogs, as the API's other readers of them see them. */
  queues: TaskQueueWatch;
  logger: Logger;
  /** How long a read serves the scrapes after it; default 5 s, a third of Prometheus's interval. */
  freshForMs?: number;
}): SharedStateMetrics {
  const registry = new Registry();
  const registers = [registry];
  // By status: a job `queued` behind an earlier job of its user's concurrency key waits by
  // design, for as long as that job runs; only a `pending` one waits on the service.
  const waiting = new Gauge({
    name: 'vlogflow_jobs_waiting',
    help: 'Jobs accepted and not yet in their first stage, by status: pending, or queued behind their concurrency key',
    labelNames: ['kind', 'status'] as const,
    registers,
  });
  const oldestWaiting = new Gauge({
    name: 'vlogflow_oldest_waiting_job_age_seconds',
    help: 'How long the longest-waiting job in the status (pending, queued) has waited to start; 0 when none waits',
    labelNames: ['kind', 'status'] as const,
    registers,
  });
  // A job whose workflow tasks fail, or that waits on something that will not come, stays in
  // its stage with nothing to show for it: no gauge, counter or alert moved until its user asked.
  const oldestQuiet = new Gauge({
    name: 'vlogflow_oldest_quiet_job_seconds',
    help: "How long the job in a stage (not waiting in a provider's quota line) that has gone longest without an update has been quiet; 0 when none",
    labelNames: ['kind'] as const,
    registers,
  });
  // A job waiting for a provider's quota is in a stage already (a vlog `generating`), on a
  // durable timer rather than in a task queue: without these, a line of thousands of jobs and a
  // line that no longer moves showed in no gauge.
  const providerWaiting = new Gauge({
    name: 'vlogflow_provider_jobs_waiting',
    help: "Jobs waiting in the provider-quota governor's line for one of a provider's operations at once",
    labelNames: ['provider'] as const,
    registers,
  });
  const providerOldestWait = new Gauge({
    name: 'vlogflow_provider_oldest_wait_seconds',
    help: "How long the first job in a provider's line has waited for an operation; 0 when none waits",
    labelNames: ['provider'] as const,
    registers,
  });
  const providerHeld = new Gauge({
    name: 'vlogflow_provider_operations_held',
    help: "A provider's operations at once held by jobs (leases)",
    labelNames: ['provider'] as const,
    registers,
  });
  const providerCooldown = new Gauge({
    name: 'vlogflow_provider_cooldown_seconds',
    help: "What is left of a provider's cool-down after a 429; 0 when it may be called",
    labelNames: ['provider'] as const,
    registers,
  });
  const providerGauges = [providerWaiting, providerOldestWait, providerHeld, providerCooldown];
  const queueLabels = ['queue', 'task_queue_type'] as const;
  const backlog = new Gauge({
    name: 'vlogflow_task_queue_backlog_tasks',
    help: "Tasks waiting in a task queue for a worker (Temporal's approximate backlog count)",
    labelNames: queueLabels,
    registers,
  });
  const backlogAge = new Gauge({
    name: 'vlogflow_task_queue_backlog_age_seconds',
    help: 'Age of the oldest task waiting in a task queue',
    labelNames: queueLabels,
    registers,
  });
  const pollers = new Gauge({
    name: 'vlogflow_task_queue_pollers',
    help: 'Workers that polled a task queue in the last 90 s',
    labelNames: queueLabels,
    registers,
  });

  // Without it, a source that stopped answering showed only as its gauges going missing, and
  // every alert on them went quiet: a database or Temporal out looked like nothing to report.
  const sourceUp = new Gauge({
    name: 'vlogflow_shared_state_up',
    help: "1 when this API process's last read of a shared source (database, temporal) answered within 3 s; 0 when it failed or did not, and that source's gauges are left out",
    labelNames: ['source'] as const,
    registers,
  });

  async function readWaitingJobs(): Promise<void> {
    const [rows, quiet] = await Promise.all([waitingJobsByKind(deps.db), quietJobsByKind(deps.db)]);
    waiting.reset();
    oldestWaiting.reset();
    oldestQuiet.reset();
    // Every kind has a series, 0 when none of its jobs waits, so rules see a value rather than none.
    for (const { declaration } of jobKindRegistry) {
      for (const status of waitingStatuses) {
        const row = rows.find(
          (candidate) => candidate.kind === declaration.kind && candidate.status === status,
        );
        waiting.set({ kind: declaration.kind, status }, row?.count ?? 0);
        oldestWaiting.set({ kind: declaration.kind, status }, row?.oldestAgeSeconds ?? 0);
      }
      const quietest = quiet.find((candidate) => candidate.kind === declaration.kind);
      oldestQuiet.set({ kind: declaration.kind }, quietest?.oldestQuietSeconds ?? 0);
    }
  }

  async function readProviderLines(): Promise<void> {
    const lines = await providerLines(deps.db, leaseStaleAfterMs);
    for (const gauge of providerGauges) gauge.reset();
    for (const line of lines) {
      const labels = { provider: line.provider };
      providerWaiting.set(labels, line.waiting);
      providerOldestWait.set(labels, line.oldestWaitSeconds);
      providerHeld.set(labels, line.held);
      providerCooldown.set(labels, line.cooldownSeconds);
    }
  }

  async function readQueues(): Promise<void> {
    const statuses = await deps.queues.statuses();
    backlog.reset();
    backlogAge.reset();
    pollers.reset();
    for (const [queue, status] of statuses) {
      const labels = { queue, task_queue_type: queue === 'workflows' ? 'workflow' : 'activity' };
      backlog.set(labels, status.backlog);
      backlogAge.set(labels, status.backlogAgeSeconds);
      pollers.set(labels, status.pollers.length);
    }
  }

  /**
   * A gauge nobody could read in time is dropped rather than left at its last value (the queues'
   * watch bounds its own read). Says whether the read answered.
   */
  const orEmpty = async (
    read: () => Promise<void>,
    gauges: Gauge[],
    source: string,
  ): Promise<boolean> => {
    const timer = new AbortController();
    try {
      await Promise.race([
        read(),
        delay(readTimeoutMs, undefined, { signal: timer.signal }).then(() => {
          throw new Error(`no answer within ${readTimeoutMs} ms`);
        }),
      ]);
      return true;
    } catch (error) {
      for (const gauge of gauges) gauge.reset();
      deps.logger.warn({ err: error }, `metrics: ${source} did not answer; its gauges are empty`);
      return false;
    } finally {
      timer.abort();
    }
  };

  // One read serves every scrape that comes while it runs or within `freshForMs` of its start:
  // /metrics needs no token, and each read asks the database and Temporal (8 task queues), so
  // a flood of scrapes had slowed every request of the API (7 ms to 2.1 s).
  let latest: { startedAt: number; done: Promise<void> } | undefined;
  return {
    registry,
    refresh() {
      const now = performance.now();
      if (latest && now - latest.startedAt < (deps.freshForMs ?? defaultFreshForMs)) {
        return latest.done;
      }
      const done = Promise.all([
        orEmpty(readWaitingJobs, [waiting, oldestWaiting, oldestQuiet], 'the database'),
        orEmpty(readProviderLines, providerGauges, 'the database'),
        orEmpty(readQueues, [backlog, backlogAge, pollers], 'Temporal'),
      ]).then(([jobs, lines, queues]) => {
        sourceUp.set({ source: 'database' }, jobs && lines ? 1 : 0);
        sourceUp.set({ source: 'temporal' }, queues ? 1 : 0);
      });
      latest = { startedAt: now, done };
      return done;
    },
  };
}
