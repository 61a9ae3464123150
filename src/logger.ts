import { pino, type Logger, type DestinationStream } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * One JSON log format for every process, so `grep '"jobId":"…"'` follows a job through the
 * API and the worker.
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  processName: string,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      base: { service: 'vlogflow', process: processName },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
