// A real Prometheus server for a test: its own configuration and storage in a temporary
// folder, a free port, the project's alert rules loaded, scraping every second; queried through
// its HTTP API as Grafana and operators do.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { testEnv } from './env.js';
import { eventually } from './eventually.js';
import { onFreePorts } from './ports.js';
import { repositoryRoot } from './docs.js';

/** One series of an instant query's answer. */
export interface PromSeries {
  metric: Record<string, string>;
  value: number;
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface TestPrometheus {
  url: string;
  /** An instant query (`/api/v1/query`). */
  query(promql: string): Promise<PromSeries[]>;
  /** The alerts pending or firing (`/api/v1/alerts`). */
  alerts(): Promise<PromAlert[]>;
  /** Every line Prometheus logged, for a failure's message. */
  output: string[];
  stop(): Promise<void>;
}

/** Scrapes each named job's targets (`host:port`) every second and evaluates the alert rules. */
export function startPrometheus(jobs: Record<string, string[]>): Promise<TestPrometheus> {
  return onFreePorts(1, ([port]) => startPrometheusOn(port!, jobs));
}

async function startPrometheusOn(
  port: number,
  jobs: Record<string, string[]>,
): Promise<TestPrometheus> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [path.join(repositoryRoot, 'ops/prometheus/alerts.yml')],
    scrape_configs: Object.entries(jobs).map(([job, targets]) => ({
      job_name: job,
      static_configs: [{ targets }],
    })),
  };
  // JSON is YAML: no YAML library needed to write it.
  await writeFile(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    testEnv.prometheusPath,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => output.push(...chunk.toString('utf8').trim().split('\n')));
  let closed = false;
  // Closed, not only exited: everything it logged (why it stopped) has been read.
  const exited = new Promise<void>((resolve) =>
    child.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };

  const api = async <T>(route: string): Promise<T> => {
    const response = await fetch(`${url}${route}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${route}: ${body.error}`);
    return body.data;
  };
  try {
    const ready = await eventually(
      async () => {
        // Exited (its port taken, say): fails at once, with what it logged.
        if (closed) return null;
        return fetch(`${url}/-/ready`).then(
          (response) => response.status,
          () => 0,
        );
      },
      (status) => status === 200 || status === null,
      { what: 'Prometheus ready', timeoutMs: 30_000 },
    );
    if (ready === null)
      throw new Error(`Prometheus exited with ${child.exitCode}:\n${output.join('\n')}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    output,
    stop,
    async query(promql) {
      const data = await api<{
        result: { metric: Record<string, string>; value: [number, string] }[];
      }>(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      return data.result.map(({ metric, value }) => ({ metric, value: Number(value[1]) }));
    },
    async alerts() {
      return (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
    },
  };
}
