/**
 * The service's own Prometheus metrics, named once here: the alert rules (ops/prometheus) and
 * the dashboard (ops/grafana) rely on these names, and tests check they query no other.
 *
 * Everything here counts what this process did itself (an API its requests and streams, a
 * worker the jobs it projected and the provider calls it made), so Prometheus sums it across
 * processes. What every API process reads from shared state (jobs waiting, task-queue
 * backlogs) is in `shared-state.ts` and aggregates with `max`, never `sum`.
 *
 * Labels are small closed sets (kinds, types, stages, outcomes, failure codes, routes): never a
 * job, user or run id.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** This process's metrics, with Node's own (`process_*`, `nodejs_*`). */
export const processMetrics = new Registry();
collectDefaultMetrics({ register: processMetrics });

/**
 * What Node's own metrics leave out: the heap's limit, which node sizes from the memory the
 * machine or container gives it (or `--max-old-space-size`). A heap that stays near it is a
 * process about to stop out of memory.
 */
new Gauge({
  name: 'vlogflow_heap_limit_bytes',
  help: "The main thread's V8 heap limit (heap_size_limit): nodejs_heap_size_used_bytes near it stops the process",
  registers: [processMetrics],
  collect() {
    this.set(v8.getHeapStatistics().heap_size_limit);
  },
});

/**
 * The memory the process may hold before the kernel stops it: its container's limit (cgroup),
 * or the machine's memory where none is set. Node reports no limit as 0 or, on some versions, as
 * the largest number the cgroup file allows, so anything not under the machine's memory is none.
 */
export function memoryLimitBytes(
  constrained = process.constrainedMemory(),
  machine = os.totalmem(),
): number {
  return constrained > 0 && constrained < machine ? constrained : machine;
}

new Gauge({
  name: 'vlogflow_memory_limit_bytes',
  help: 'The memory this process may hold: its container limit, else the machine memory; process_resident_memory_bytes near it is killed out of memory',
  registers: [processMetrics],
  collect() {
    this.set(memoryLimitBytes());
  },
});

/** From under a second (a probe, an AI job) to the half hour a Veo render may take. */
const jobSecondsBuckets = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

export const jobsStarted = new Counter({
  name: 'vlogflow_jobs_started_total',
  help: 'Job attempts that entered their first stage (a retry starts again)',
  labelNames: ['kind', 'type'] as const,
  registers: [processMetrics],
});

export const jobsFinished = new Counter({
  name: 'vlogflow_jobs_finished_total',
  help: 'Job attempts that ended, by outcome: completed, failed, timed_out, cancelled',
  labelNames: ['kind', 'type', 'outcome'] as const,
  registers: [processMetrics],
});

export const jobFailures = new Counter({
  name: 'vlogflow_job_failures_total',
  help: 'Job attempts that ended failed or timed out, by failure code',
  labelNames: ['kind', 'code'] as const,
  registers: [processMetrics],
});

export const jobDuration = new Histogram({
  name: 'vlogflow_job_duration_seconds',
  help: 'Time from an attempt entering its first stage to its end, by outcome',
  labelNames: ['kind', 'outcome'] as const,
  buckets: jobSecondsBuckets,
  registers: [processMetrics],
});

export const jobStageDuration = new Histogram({
  name: 'vlogflow_job_stage_duration_seconds',
  help: 'Time a job spent in one stage of its kind (its status while it runs)',
  labelNames: ['kind', 'stage'] as const,
  buckets: jobSecondsBuckets,
  registers: [processMetrics],
});

export const jobsReconciled = new Counter({
  name: 'vlogflow_jobs_reconciled_total',
  help: 'Jobs the reconciler moved because their workflow closed outside its code (terminated, timed_out, not_found, …) or was reset',
  labelNames: ['kind', 'reason'] as const,
  registers: [processMetrics],
});

/**
 * The reconciler's batches by outcome: `completed`, or `failed` (the activity threw: the
 * database or Temporal out, or a bug). Without it a reconciler that failed every run, or no
 * longer ran, showed nowhere: jobs closed from outside stayed in flight and leases stayed held.
 */
export const jobReconcileBatches = new Counter({
  name: 'vlogflow_job_reconcile_batches_total',
  help: "Batches of the job reconciler's checks (reconcileJobBatch attempts), by outcome: completed, failed",
  labelNames: ['outcome'] as const,
  registers: [processMetrics],
});

/**
 * Jobs an operator's re-drive (`POST /api/admin/redrives`) gave a next attempt or left as they
 * were, by kind (`unknown` for an id no job has) and result: `redriven`, or the code it was
 * skipped with. Dry runs count nothing.
 */
export const redriveJobs = new Counter({
  name: 'vlogflow_redrive_jobs_total',
  help: "Jobs operators' re-drives gave a next attempt (result redriven) or skipped (result: the refusal's code), by kind",
  labelNames: ['kind', 'result'] as const,
  registers: [processMetrics],
});

export const providerRequests = new Counter({
  name: 'vlogflow_provider_requests_total',
  help: 'Provider calls by outcome: ok, rate_limited (429), rejected (permanent), error, cancelled',
  labelNames: ['provider', 'operation', 'outcome'] as const,
  registers: [processMetrics],
});

export const providerCost = new Counter({
  name: 'vlogflow_provider_cost_usd_total',
  help: 'Cost of the provider calls this worker recorded in the ledger, in USD (the ledger keeps exact decimals; this is for rates and dashboards)',
  labelNames: ['provider', 'kind'] as const,
  registers: [processMetrics],
});

export const providerCostVoided = new Counter({
  name: 'vlogflow_provider_cost_voided_usd_total',
  help: 'Charges taken back, in USD: generations charged as their job ended that a later look saw the provider filter or fail, which it does not bill. Net spend is vlogflow_provider_cost_usd_total minus this',
  labelNames: ['provider', 'kind'] as const,
  registers: [processMetrics],
});

export const unansweredSubmissions = new Counter({
  name: 'vlogflow_unanswered_submissions_total',
  help: 'Paid submissions that got no answer (worker lost, request timed out), by what became of them: found (their retry used the video the provider made of it), sent_again (none came within VEO_UNANSWERED_SUBMISSION_WAIT_MS), or abandoned (the job ended first, cancelled say: the provider may bill a generation nobody uses)',
  labelNames: ['provider', 'outcome'] as const,
  registers: [processMetrics],
});

export const ledgerChargesDeferred = new Gauge({
  name: 'vlogflow_ledger_charges_deferred',
  help: 'Charges of answered provider calls this worker holds until the database takes their ledger write (neither the database nor Temporal took them in time)',
  registers: [processMetrics],
});

export const ledgerChargesHandedOver = new Counter({
  name: 'vlogflow_ledger_charges_handed_over_total',
  help: 'Charges of answered provider calls whose ledger write the database did not take in time, handed to a recordDeferredCharge workflow that writes them once it is back',
  registers: [processMetrics],
});

export const ledgerChargesLost = new Counter({
  name: 'vlogflow_ledger_charges_lost_total',
  help: 'Deferred charges the database refused for a reason other than being unreachable (not written)',
  registers: [processMetrics],
});

export const providerUsage = new Counter({
  name: 'vlogflow_provider_usage_total',
  help: 'What the provider calls this worker recorded consumed, by unit: input_tokens, output_tokens, video_seconds',
  labelNames: ['provider', 'kind', 'unit'] as const,
  registers: [processMetrics],
});

export const budgetRefusals = new Counter({
  name: 'vlogflow_budget_refusals_total',
  help: 'Submissions and retries this API refused with 402 BUDGET_EXCEEDED, by the budget they would have passed: daily, monthly',
  labelNames: ['period'] as const,
  registers: [processMetrics],
});

export const providerRequestDuration = new Histogram({
  name: 'vlogflow_provider_request_duration_seconds',
  help: 'Time a provider call took, whatever its outcome',
  labelNames: ['provider', 'operation'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [processMetrics],
});

export const httpRequestDuration = new Histogram({
  name: 'vlogflow_http_request_duration_seconds',
  help: 'API requests by route pattern and status class (its _count is the request count)',
  labelNames: ['method', 'route', 'status_class'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [processMetrics],
});

/**
 * What only an API process has (a worker exported its streams as 0 of 0, which the dashboard
 * drew as a share of NaN): served by the API's `/metrics`, with `processMetrics`.
 */
export const apiMetrics = new Registry();

export const refusedConnections = new Counter({
  name: 'vlogflow_http_connections_refused_total',
  help: 'Requests refused before any route saw them (not valid HTTP, headers too large, not received in time, an Expect other than 100-continue), by the error code answered',
  labelNames: ['code'] as const,
  registers: [apiMetrics],
});

export const openSseStreams = new Gauge({
  name: 'vlogflow_sse_streams_open',
  help: 'Progress streams (Server-Sent Events) this API process holds open',
  registers: [apiMetrics],
});

/**
 * What `vlogflow_sse_streams_open` may reach: streams piling up towards it are refused, 503
 * `STREAM_CAPACITY_REACHED`, once there; the alert rules read how near they are.
 */
export const sseStreamsMax = new Gauge({
  name: 'vlogflow_sse_streams_max',
  help: 'The most progress streams this API process holds open (EVENT_STREAM_MAX_OPEN); more are refused 503 STREAM_CAPACITY_REACHED',
  registers: [apiMetrics],
});
