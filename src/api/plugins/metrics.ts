import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from '../../logger.js';
import { metricsContentType, renderMetrics } from '../../metrics/exposition.js';
import { apiMetrics, httpRequestDuration } from '../../metrics/metrics.js';
import type { SharedStateMetrics } from '../../metrics/shared-state.js';

/**
 * `GET /metrics` for Prometheus (outside `/api`, unauthenticated like the health checks: keep it
 * off the public ingress), and every request timed by method, route pattern and status class.
 * A request no route matched counts under the route `unmatched`, so scanners cannot add series.
 */
export const metrics = fp(
  async (
    app: FastifyInstance,
    { sharedState, logger }: { sharedState: SharedStateMetrics; logger: Logger },
  ) => {
    // Each route's 5xx series exists from the start: rate() reads a series' first sample as its
    // start, so a route's first 5xx, the one that made its series, counted as none.
    app.addHook('onRoute', ({ method, url }) => {
      for (const each of [method].flat()) {
        httpRequestDuration.zero({ method: each, route: url, status_class: '5xx' });
      }
    });
    app.addHook('onResponse', async (request, reply) => {
      httpRequestDuration.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status_class: `${Math.floor(reply.statusCode / 100)}xx`,
        },
        reply.elapsedTime / 1_000,
      );
    });
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      await sharedState.refresh();
      const text = await renderMetrics(logger, [apiMetrics, sharedState.registry]);
      return reply.type(metricsContentType).send(text);
    });
  },
  { name: 'metrics' },
);
