import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { processMetrics } from './metrics.js';
import { temporalSdkMetrics } from './sdk-metrics.js';

/** The Content-Type of `/metrics`: Prometheus text format 0.0.4. */
export const metricsContentType = processMetrics.contentType;

/**
 * What a process's `GET /metrics` answers: its own metrics, the `extra` registries' (the shared
 * state an API reads), and the Temporal runtime's where a worker runs. A source that fails is
 * left out and logged, so one slow part never costs the whole scrape.
 */
export async function renderMetrics(logger: Logger, extra: Registry[] = []): Promise<string> {
  const sdk = temporalSdkMetrics().catch((error: unknown) => {
    logger.warn({ err: error }, "metrics: the Temporal runtime's metrics did not answer");
    return '';
  });
  const texts = await Promise.all([
    processMetrics.metrics(),
    ...extra.map((registry) => registry.metrics()),
    sdk,
  ]);
  return texts
    .map((text) => text.trimEnd())
    .filter((text) => text !== '')
    .map((text) => `${text}\n`)
    .join('');
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * A worker process's `GET /metrics` (METRICS_HOST:METRICS_PORT). The worker serves no other
 * HTTP, so this is a bare server rather than an app.
 */
export async function startMetricsServer(
  options: { host: string; port: number },
  logger: Logger,
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: try /metrics\n');
      return;
    }
    renderMetrics(logger).then(
      (text) => response.writeHead(200, { 'content-type': metricsContentType }).end(text),
      (error: unknown) => {
        logger.error({ err: error }, 'metrics: rendering failed');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}/metrics`,
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
