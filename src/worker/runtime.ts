import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import type { Logger } from '../logger.js';

const pinoLevels = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
} as const;

/**
 * Sends the SDK's, workflows' and activities' logs to pino. Every job workflow's id is its job
 * id, so lines from workflow or activity context also carry `jobId` for one grep across processes.
 */
class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly logger: Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const workflowId: unknown = meta?.['workflowId'];
    const fields = typeof workflowId === 'string' ? { jobId: workflowId, ...meta } : meta;
    this.logger[pinoLevels[level]](fields ?? {}, message);
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

let installed = false;

/**
 * Installs the process-wide Temporal runtime once, before any worker connects. Signals are
 * left to the entry points, which stop the API, the worker and the dev server in order.
 */
export function installWorkerRuntime(logger: Logger): void {
  if (installed) return;
  Runtime.install({
    logger: new PinoTemporalLogger(logger),
    shutdownSignals: [],
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
  installed = true;
}
