// The OpenTelemetry SDK of a process that exports spans, loaded by `startTracing` only when an
// OTLP endpoint is configured (src/tracing/index.ts).
import {
  context,
  diag,
  DiagLogLevel,
  isSpanContextValid,
  SpanKind,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type SerializableSpan,
} from '@temporalio/interceptors-opentelemetry';
import type { WorkflowInfo } from '@temporalio/workflow';
import type { TracingSettings } from '../config.js';
import type { Logger } from '../logger.js';
import type { TraceFields, Tracing } from './index.js';

/** The name of the service's own instrumentation (requests, provider calls). */
const instrumentationName = 'vlogflow';

/**
 * Registers a tracer provider for the process (W3C trace context, async-local context) that
 * batches spans to the OTLP/HTTP endpoint in protobuf, and the interceptors that carry a trace
 * from the API's Temporal client into workflows, from workflows into activities, and from
 * activities into provider calls. Export failures are logged as warnings, never thrown.
 */
export function startOpenTelemetry(
  settings: TracingSettings,
  processName: string,
  logger: Logger,
): { tracing: Tracing; traceFields: () => TraceFields } {
  // Exports run in the context of the span that scheduled them: the warning is no line of it.
  const warn = (message: string, args: unknown[]) =>
    context.with(ROOT_CONTEXT, () =>
      logger.warn(args.length > 0 ? { args } : {}, `tracing: ${message}`),
    );
  diag.setLogger(
    {
      error: (message, ...args) => warn(message, args),
      warn: (message, ...args) => warn(message, args),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    DiagLogLevel.WARN,
  );
  const resource = Resource.default().merge(
    new Resource({ 'service.name': settings.serviceName, 'vlogflow.process': processName }),
  );
  const spanProcessor = new BatchSpanProcessor(
    new OTLPTraceExporter({ url: settings.tracesUrl, headers: settings.headers }),
  );
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  const tracer = trace.getTracer(instrumentationName);
  const workflowSpans = makeWorkflowExporter(spanProcessor, resource).export;

  const traceProviderCall: Tracing['traceProviderCall'] = (call, run, outcomeOf) =>
    tracer.startActiveSpan(
      `${call.provider} ${call.operation}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'vlogflow.provider': call.provider, 'vlogflow.operation': call.operation },
      },
      async (span) => {
        try {
          const answer = await run();
          span.setAttribute('vlogflow.outcome', 'ok');
          return answer;
        } catch (error) {
          span.setAttribute('vlogflow.outcome', outcomeOf(error));
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );

  return {
    tracing: {
      tracer,
      clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
      activityInterceptors: [
        (activity) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(activity),
          outbound: new OpenTelemetryActivityOutboundInterceptor(activity),
        }),
      ],
      workflowSinks: {
        exporter: {
          export: {
            ...workflowSpans,
            // The sink adds the whole WorkflowInfo to each workflow span: search attributes
            // (the owner's UserId), memo, last failure and the SDK's internals, some kilobytes
            // a span. These fields name the run, as the activities' spans do, and no more.
            fn: (info: WorkflowInfo, spans: SerializableSpan[]) =>
              workflowSpans.fn(
                {
                  workflowId: info.workflowId,
                  runId: info.runId,
                  workflowType: info.workflowType,
                  taskQueue: info.taskQueue,
                  namespace: info.namespace,
                  attempt: info.attempt,
                } as WorkflowInfo,
                spans,
              ),
          },
        },
      },
      traceProviderCall,
      // A collector that is down must not turn a clean stop into a failed one.
      shutdown: () =>
        provider
          .shutdown()
          .catch((error: unknown) =>
            logger.warn({ err: error }, 'tracing: spans not sent at shutdown'),
          ),
    },
    traceFields() {
      const context = trace.getActiveSpan()?.spanContext();
      return context && isSpanContextValid(context)
        ? { trace_id: context.traceId, span_id: context.spanId }
        : {};
    },
  };
}
