// Tracing is off unless an OTLP endpoint is configured. This module is all the rest of the
// service imports: it names what tracing gives each part (types only) and loads the
// OpenTelemetry SDK and Temporal's interceptors on demand, so a process without an endpoint
// never loads them, and its logs, requests, workflows and provider calls run as they did.
import { createRequire } from 'node:module';
import type { Tracer } from '@opentelemetry/api';
import type { ClientInterceptors } from '@temporalio/client';
import type { WorkerInterceptors, WorkerOptions } from '@temporalio/worker';
import { tracingSettings, type Config } from '../config.js';
import type { Logger } from '../logger.js';

/** The ids of the active span, as every log line written inside it carries them. */
export interface TraceFields {
  trace_id?: string;
  span_id?: string;
}

/** Runs one provider call in a span of its own, labelled with the metrics' `outcome`. */
export type TraceProviderCall = <T>(
  call: { provider: string; operation: string },
  run: () => Promise<T>,
  outcomeOf: (error: unknown) => string,
) => Promise<T>;

/** What a process that exports spans hands to its parts. */
export interface Tracing {
  /** Spans of the API's requests (`src/api/plugins/request-spans.ts`). */
  tracer: Tracer;
  /** The API's Temporal client: starting, signalling or updating a workflow passes the trace on. */
  clientInterceptors: ClientInterceptors;
  /** Every worker: a span for each activity, continuing the trace of the workflow that scheduled it. */
  activityInterceptors: NonNullable<WorkerInterceptors['activity']>;
  /** The workflows' worker: workflow spans are made in the sandbox and leave it through this sink. */
  workflowSinks: NonNullable<WorkerOptions['sinks']>;
  traceProviderCall: TraceProviderCall;
  /** Sends the spans still buffered; the entry points call it last on shutdown. */
  shutdown(): Promise<void>;
}

/**
 * The workflow interceptor modules of Temporal's OpenTelemetry package: a worker bundling from
 * source passes them to the bundler, and `npm run build` bundles them into the tracing variant
 * of the prebuilt bundle. Resolving the path loads nothing.
 */
export function tracingWorkflowModules(): string[] {
  return [
    createRequire(import.meta.url).resolve(
      '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
    ),
  ];
}

let activeTraceFields: (() => TraceFields) | undefined;

/** The active span's ids for a log line; set once tracing has started (pino `mixin`). */
export function traceFields(): TraceFields {
  return activeTraceFields?.() ?? {};
}

/**
 * Starts exporting this process's spans when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set:
 * registers the OpenTelemetry SDK for the process, and from then on log lines written inside a
 * span carry its ids. Null, having loaded nothing, when neither is set.
 */
export async function startTracing(
  config: Config,
  processName: string,
  logger: Logger,
): Promise<Tracing | null> {
  const settings = tracingSettings(config);
  if (!settings) return null;
  const { startOpenTelemetry } = await import('./opentelemetry.js');
  const started = startOpenTelemetry(settings, processName, logger);
  activeTraceFields = started.traceFields;
  logger.info(
    { tracesUrl: settings.tracesUrl, serviceName: settings.serviceName },
    'tracing: exporting spans',
  );
  return started.tracing;
}
