import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from '../../logger.js';
import { metricsContentType, rationedRendering, renderMetrics } from '../../metrics/exposition.js';
import { apiMetrics, httpRequestDuration } from '../../metrics/metrics.js';
import type { SharedStateMetrics } from '../../metrics/shared-state.js';

/** The route label of a request no route matched, so scanners cannot add series. */
const unmatched = 'unmatched';

/** Whether an Accept-Encoding header takes gzip (named, or `*`, without `q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  return (header ?? '').split(',').some((each) => {
    const [coding = '', ...parameters] = each.split(';').map((part) => part.trim().toLowerCase());
    const refused = parameters.some((parameter) => /^q=0(\.0{0,3})?$/.test(parameter));
    return (coding === 'gzip' || coding === '*') && !refused;
  });
}

/** Counts and times one answered request. */
export function observeRequest(
  method: string,
  route: string | undefined,
  statusCode: number,
  elapsedMs: number,
): void {
  httpRequestDuration.observe(
    { method, route: route ?? unmatched, status_class: `${Math.floor(statusCode / 100)}xx` },
    elapsedMs / 1_000,
  );
}

/**
 * `GET /metrics` for Prometheus (outside `/api`, unauthenticated like the health checks: keep it
 * off the public ingress), and every request timed by method, route pattern and status class.
 * A request no route matched counts under the route `unmatched`; one Node refused before any
 * route saw it, in `vlogflow_http_connections_refused_total` by the code answered.
 */
export const metrics = fp(
  async (
    app: FastifyInstance,
    {
      sharedState,
      logger,
      rendersPerSecond,
    }: {
      sharedState: SharedStateMetrics;
      logger: Logger;
      /** API_METRICS_RENDERS_PER_SECOND: past them a scrape gets the latest rendering. */
      rendersPerSecond: number;
    },
  ) => {
    // Each route's 5xx series exists from the start: rate() reads a series' first sample as its
    // start, so a route's first 5xx, the one that made its series, counted as none.
    app.addHook('onRoute', ({ method, url }) => {
      for (const each of [method].flat()) {
        httpRequestDuration.zero({ method: each, route: url, status_class: '5xx' });
      }
    });
    app.addHook('onResponse', async (request, reply) => {
      observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime);
    });
    const rendered = rationedRendering(
      async () => {
        await sharedState.refresh();
        return renderMetrics(logger, [apiMetrics, sharedState.registry]);
      },
      { perSecond: rendersPerSecond },
    );
    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      const { text, gzipped } = await rendered();
      reply.type(metricsContentType).header('vary', 'accept-encoding');
      // Prometheus asks for gzip: a tenth of the bytes.
      if (acceptsGzip(request.headers['accept-encoding'])) {
        return reply.header('content-encoding', 'gzip').send(gzipped);
      }
      return reply.send(text);
    });
  },
  { name: 'metrics' },
);
