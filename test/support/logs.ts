import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

/** A real JSON logger whose lines the test can read back. */
export function captureLogs(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: createLogger({ LOG_LEVEL: 'info' }, 'test', sink), lines: () => lines };
}

/** A logger that prints only when TEST_LOG_LEVEL asks for it. */
export function testLogger(): Logger {
  const level = (process.env['TEST_LOG_LEVEL'] ?? 'silent') as 'silent';
  return createLogger({ LOG_LEVEL: level }, 'test');
}
