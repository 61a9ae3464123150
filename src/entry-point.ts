import { ConfigError } from './config.js';
import type { Logger } from './logger.js';

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits. Repeated signals are expected (npm and a
 * terminal both deliver Ctrl-C), so they do not cut the shutdown short; `forceAfterMs` does,
 * logging what `stillRunning` says was left (a worker: the activities that did not end).
 * Returns what starts the same shutdown for a reason of the process's own, exiting 1.
 */
export function stopOnSignals(
  logger: Logger,
  stop: () => Promise<void>,
  forceAfterMs: number,
  stillRunning: () => Record<string, unknown> = () => ({}),
): (reason: string) => void {
  let stopping = false;
  const shutDown = (cause: Record<string, unknown>, exitCode: number) => {
    if (stopping) {
      logger.info(cause, 'already shutting down');
      return;
    }
    stopping = true;
    logger.info(cause, 'shutting down');
    setTimeout(() => {
      logger.error({ forceAfterMs, ...stillRunning() }, 'shutdown took too long: exiting');
      process.exit(1);
    }, forceAfterMs).unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(exitCode);
      },
      (error: unknown) => {
        logger.error({ err: error, ...stillRunning() }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', (signal) => shutDown({ signal }, 0));
  process.on('SIGTERM', (signal) => shutDown({ signal }, 0));
  // The same orderly stop for a failure the process found itself, ending with exit code 1.
  return (reason) => shutDown({ reason }, 1);
}

/**
 * A failure of a command's work that its message says in full (a missing file, a server that
 * cannot be reached): printed alone, where any other error shows its stack.
 */
export class CommandFailure extends Error {}

/**
 * Runs an entry point, exit code 1 on failure; a configuration error, a service its settings
 * name that cannot be used at start (ConfigError, StartupError) or a CommandFailure is printed
 * plainly, without a stack.
 */
export function runEntryPoint(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof CommandFailure) {
      console.error(error.message);
    } else {
      console.error(error);
    }
    process.exit(1);
  });
}
