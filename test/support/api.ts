import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { mintToken } from '../../src/auth.js';
import { loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/database.js';
import { createMediaStorage } from '../../src/storage/index.js';
import type { MediaStorage } from '../../src/storage/object-storage.js';
import type { Logger } from '../../src/logger.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
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
  /** Environment overrides on top of the test defaults. */
  env?: Record<string, string>;
  mediaStorage?: MediaStorage;
  /** Default: the ffmpeg the service would find. */
  mediaTools?: MediaTools | null;
}): Promise<TestApi> {
  const config = loadConfig({
    TEMPORAL_TASK_QUEUE: options.taskQueue,
    API_BODY_LIMIT_BYTES: String(64 * 1024),
    API_PUBLIC_URL: 'http://api.test',
    DATA_DIR: path.join(os.tmpdir(), `vlogflow-api-${randomUUID()}`),
    ...options.env,
  });
  const app = await buildApp({
    config,
    db: options.db,
    temporal: options.temporal,
    mediaStorage: options.mediaStorage ?? createMediaStorage(config, testJwtSecret),
    mediaTools: options.mediaTools === undefined ? await findMediaTools() : options.mediaTools,
    jwtSecret: testJwtSecret,
    logger: options.logger ?? testLogger(),
  });
  await app.ready();
  return {
    app,
    authFor: async (userId) => `Bearer ${await mintToken(testJwtSecret, userId)}`,
  };
}
