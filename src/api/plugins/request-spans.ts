import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import fp from 'fastify-plugin';

/** Probes and scrapes: a trace for each would bury the jobs' traces. */
const untraced = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One server span per request, named by method and route pattern (`POST /api/ai/jobs`), which
 * continues a caller's `traceparent`. Each route's handler runs inside it, so the Temporal
 * client's interceptor carries it into the job's workflow and the handler's log lines carry its
 * ids. Loaded only when tracing is on (`buildApp`); registered before every route, whose
 * handlers it wraps as they are added.
 */
export const requestSpans = fp(
  async (app: FastifyInstance, { tracer }: { tracer: Tracer }) => {
    const spans = new WeakMap<FastifyRequest, Span>();
    app.addHook('onRequest', async (request) => {
      const route = request.routeOptions.url;
      if (route !== undefined && untraced.has(route)) return;
      spans.set(
        request,
        tracer.startSpan(
          route === undefined ? request.method : `${request.method} ${route}`,
          {
            kind: SpanKind.SERVER,
            attributes: {
              'http.request.method': request.method,
              'url.path': request.url.split('?')[0]!,
              ...(route !== undefined && { 'http.route': route }),
            },
          },
          propagation.extract(ROOT_CONTEXT, request.headers),
        ),
      );
    });
    app.addHook('onRoute', (route) => {
      const handler = route.handler as RouteHandlerMethod;
      route.handler = function (this: FastifyInstance, request, reply) {
        const span = spans.get(request);
        if (!span) return handler.call(this, request, reply);
        return context.with(trace.setSpan(context.active(), span), () =>
          handler.call(this, request, reply),
        );
      };
    });
    app.addHook('onResponse', async (request, reply) => {
      const span = spans.get(request);
      if (!span) return;
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
  },
  { name: 'request-spans' },
);
