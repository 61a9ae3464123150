import { ConfigError } from './config.js';
import type { Logger } from './logger.js';

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits. Repeated signals are expected (npm and a
 * terminal both deliver Ctrl-C), so they do not cut the shutdown short; `forceAfterMs` does,
 * logging what `stillRunning` says was left (a worker: the activities that did not end).
 */
export function stopOnSignals(
  logger: Logger,
  stop: () => Promise<void>,
  forceAfterMs: number,
  stillRunning: () => Record<string, unknown> = () => ({}),
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.info({ signal }, 'already shutting down');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ forceAfterMs, ...stillRunning() }, 'shutdown took too long: exiting');
      process.exit(1);
    }, forceAfterMs).unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error, ...stillRunning() }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
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
