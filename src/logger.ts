import { pino, type Logger, type DestinationStream } from 'pino';
import { tracesEndpoint, type Config } from './config.js';
import { traceFields } from './tracing/index.js';

export type { Logger };

/**
 * One JSON log format for every process, so `grep '"jobId":"…"'` follows a job through the
 * API and the worker. With tracing configured, a line written inside a span also carries its
 * `trace_id` and `span_id` (once `startTracing` has run); without, nothing is added to a line.
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'> & Parameters<typeof tracesEndpoint>[0],
  processName: string,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      base: { service: 'vlogflow', process: processName },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(tracesEndpoint(config) !== undefined && { mixin: traceFields }),
    },
    destination,
  );
}
