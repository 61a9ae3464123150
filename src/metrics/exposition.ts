import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { processMetrics } from './metrics.js';
import { temporalSdkMetrics } from './sdk-metrics.js';

const gzipped = promisify(gzip);

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

/** A rendering of `/metrics`, as sent: its text and the same gzipped. */
export interface RenderedMetrics {
  text: Buffer;
  gzipped: Buffer;
}

/**
 * Renderings rationed to `perSecond`, a scrape past them answered with the latest one, and the
 * scrapes that come while one runs sharing it: on an API's own port `/metrics` answers anyone who
 * reaches it, and a rendering takes milliseconds of the event loop every request shares, so a
 * flood of scrapes would slow every user. Prometheus, scraping every few seconds, always gets a
 * fresh one. A failed rendering serves nobody after it.
 */
export function rationedRendering(
  render: () => Promise<string>,
  { perSecond, now = () => performance.now() }: { perSecond: number; now?: () => number },
): () => Promise<RenderedMetrics> {
  const startedAt: number[] = [];
  let latest: Promise<RenderedMetrics> | undefined;
  let running = false;
  return () => {
    const at = now();
    while (startedAt.length > 0 && at - startedAt[0]! >= 1_000) startedAt.shift();
    if (latest && (running || startedAt.length >= perSecond)) return latest;
    startedAt.push(at);
    running = true;
    const answer = render()
      .then(async (text) => ({ text: Buffer.from(text), gzipped: await gzipped(text) }))
      .finally(() => {
        if (latest === answer) running = false;
      });
    latest = answer;
    answer.catch(() => {
      if (latest === answer) latest = undefined;
    });
    return answer;
  };
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
