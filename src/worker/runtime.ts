import net from 'node:net';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import type { Logger } from '../logger.js';
import { setTemporalSdkMetricsUrl } from '../metrics/sdk-metrics.js';

const pinoLevels = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
} as const;

/**
 * Sends the SDK's, workflows' and activities' logs to pino. Every job workflow's id is its job
 * id, so lines from workflow or activity context also carry `jobId` for one grep across
 * processes; activity lines name the run `runId` as workflow lines do.
 */
class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly logger: Logger) {}

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    // The task token is an opaque credential-like blob: keep it out of the logs.
    const {
      taskToken: _taskToken,
      workflowRunId,
      error,
      ...fields
    } = meta as Record<string, unknown>;
    // pino serialises errors (message, stack) only under `err`.
    if (error !== undefined) fields['err'] = error;
    if (typeof fields['workflowId'] === 'string') fields['jobId'] = fields['workflowId'];
    if (typeof workflowRunId === 'string') fields['runId'] = workflowRunId;
    this.logger[pinoLevels[level]](fields, message);
  }
  trace(message: string, meta?: LogMetadata) {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata) {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata) {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata) {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata) {
    this.log('ERROR', message, meta);
  }
}

/** Tries this many loopback ports taken by someone else between choosing and binding. */
const sdkMetricsBindAttempts = 5;

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function installRuntime(logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const bindAddress = `127.0.0.1:${await freeLoopbackPort()}`;
    try {
      Runtime.install({
        logger: new PinoTemporalLogger(logger),
        shutdownSignals: [],
        telemetryOptions: {
          logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
          metrics: {
            prometheus: {
              bindAddress,
              countersTotalSuffix: true,
              unitSuffix: true,
              useSecondsForDurations: true,
            },
          },
        },
      });
      setTemporalSdkMetricsUrl(`http://${bindAddress}/metrics`);
      return;
    } catch (error) {
      if (attempt >= sdkMetricsBindAttempts || !/address already in use/i.test(String(error)))
        throw error;
    }
  }
}

let installing: Promise<void> | undefined;

/**
 * Installs the process-wide Temporal runtime once, before any worker connects. Signals are
 * left to the entry points, which stop the API, the worker and the dev server in order.
 *
 * The runtime's own metrics (slots, pollers, schedule-to-start latencies, workflow and
 * activity outcomes: `temporal_*`) are served by the SDK on a loopback port of its own, which
 * `temporalSdkMetrics` (`src/metrics/sdk-metrics.ts`) reads, so that the process's `/metrics`
 * shows them beside the service's. Durations are in seconds and counters end in `_total`, as
 * Prometheus names them.
 */
export function installWorkerRuntime(logger: Logger): Promise<void> {
  installing ??= installRuntime(logger).catch((error: unknown) => {
    installing = undefined;
    throw error;
  });
  return installing;
}
