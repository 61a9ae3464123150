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
