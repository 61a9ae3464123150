// The API as its own process (production shape): serves HTTP, starts workflows, runs none.
import { resolveJwtSecret } from '../auth.js';
import { loadConfig, requireSharedServices } from '../config.js';
import { openDatabase } from '../db/database.js';
import { runWithoutArguments } from '../command-line.js';
import { stopOnSignals } from '../entry-point.js';
import { createLogger } from '../logger.js';
import { createTemporalAccess, temporalEndpoint } from '../temporal-client.js';
import { startTracing } from '../tracing/index.js';
import { startApiServer } from './server.js';

runWithoutArguments('npm run api', async () => {
  const config = loadConfig();
  requireSharedServices(config, 'API');
  const logger = createLogger(config, 'api');
  const tracing = await startTracing(config, 'api', logger);
  const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.dataDir });
  const temporal = createTemporalAccess(
    temporalEndpoint(config),
    config.TEMPORAL_NAMESPACE,
    undefined,
    tracing?.clientInterceptors,
  );
  const server = await startApiServer(config, {
    db,
    temporal,
    logger,
    tracing,
    jwtSecret: await resolveJwtSecret(config),
  });
  stopOnSignals(
    logger,
    async () => {
      await server.close();
      await temporal.close();
      await db.destroy();
      await tracing?.shutdown();
    },
    config.WORKER_SHUTDOWN_GRACE_MS + 15_000,
  );
});
