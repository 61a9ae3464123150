import { randomUUID } from 'node:crypto';
import type { ActivityDependencies } from '../../src/activities/index.js';
import type { Logger } from '../../src/logger.js';
import { createTemporalAccess, type TemporalAccess } from '../../src/temporal/client.js';
import { startWorker } from '../../src/worker/worker.js';
import { testEnv } from './env.js';
import { testLogger } from './logs.js';

/** A client (and readiness ping) of the run's dev server. */
export function testTemporal(): TemporalAccess {
  return createTemporalAccess(testEnv.temporalAddress, testEnv.temporalNamespace);
}

/** Each test gets its own task queue so workers of parallel test files never steal its tasks. */
export function uniqueTaskQueue(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

/** Runs `fn` while a real worker (the production startWorker) polls `taskQueue`. */
export async function withWorker<T>(
  taskQueue: string,
  deps: ActivityDependencies,
  fn: () => Promise<T>,
  logger: Logger = testLogger(),
): Promise<T> {
  const running = await startWorker(
    {
      address: testEnv.temporalAddress,
      namespace: testEnv.temporalNamespace,
      taskQueue,
      shutdownGraceMs: 2_000,
    },
    deps,
    logger,
  );
  try {
    return await fn();
  } finally {
    await running.stop();
  }
}
