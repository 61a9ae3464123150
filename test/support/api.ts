import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { mintToken } from '../../src/auth.js';
import type { Db } from '../../src/db/database.js';
import type { Logger } from '../../src/logger.js';
import type { TemporalAccess } from '../../src/temporal/client.js';
import { testLogger } from './logs.js';

export const testJwtSecret = 'test-secret-that-is-long-enough-for-hs256!';

export interface TestApi {
  app: FastifyInstance;
  /** `authorization` header value for a user. */
  authFor(userId: string): Promise<string>;
}

/** The full API app, as production builds it, over the given database and Temporal client. */
export async function createTestApi(options: {
  db: Db;
  temporal: TemporalAccess;
  taskQueue: string;
  logger?: Logger;
}): Promise<TestApi> {
  const app = await buildApp({
    db: options.db,
    temporal: options.temporal,
    taskQueue: options.taskQueue,
    jwtSecret: testJwtSecret,
    logger: options.logger ?? testLogger(),
    bodyLimitBytes: 64 * 1024,
    requestTimeoutMs: 10_000,
  });
  await app.ready();
  return {
    app,
    authFor: async (userId) => `Bearer ${await mintToken(testJwtSecret, userId)}`,
  };
}
