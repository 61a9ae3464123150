// The worker as its own process (production shape): runs workflows and activities; its only
// HTTP is `GET /metrics` on METRICS_HOST:METRICS_PORT.
// `npm run worker -- --queues media,transfer` serves only those domains' task queues.
import { loadConfig, requireSharedServices } from '../config.js';
import { openDatabase } from '../db/database.js';
import { runCommand } from '../command-line.js';
import { stopOnSignals } from '../entry-point.js';
import { createLogger } from '../logger.js';
import { temporalEndpoint } from '../temporal-client.js';
import { startMetricsServer } from '../metrics/exposition.js';
import { assertPortsFree } from '../ports.js';
import { startTracing } from '../tracing/index.js';
import { createActivityDependencies, startEmbeddedModel } from './dependencies.js';
import { removeAbandonedRenders } from '../providers/local-generator.js';
import { startWorker, workerQueuesOf, workerSettings, workerUsage } from './worker.js';

runCommand(workerUsage, async () => {
  const config = loadConfig();
  const queues = workerQueuesOf(process.argv.slice(2), config);
  requireSharedServices(config, 'worker');
  const logger = createLogger(config, 'worker');
  const metricsAddress = { host: config.METRICS_HOST, port: config.METRICS_PORT };
  await assertPortsFree([
    {
      ...metricsAddress,
      what: "the worker's metrics",
      setting: 'METRICS_PORT',
      hostSetting: 'METRICS_HOST',
    },
  ]);
  const tracing = await startTracing(config, 'worker', logger);
  const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.dataDir });
  const dependencies = await createActivityDependencies(config, db, tracing);
  const { embeddedModel } = dependencies.providers;
  if (queues.includes('text-generation')) await startEmbeddedModel(embeddedModel, logger);
  if (queues.includes('video-generation'))
    await removeAbandonedRenders(config.renderWorkDir, logger);
  const worker = await startWorker(
    workerSettings(config, temporalEndpoint(config), queues),
    dependencies,
    logger,
    tracing,
  );
  const metrics = await startMetricsServer(metricsAddress, logger);
  logger.info({ url: metrics.url }, 'metrics served');
  stopOnSignals(
    logger,
    async () => {
      await worker.stop();
      await embeddedModel?.stop();
      await metrics.close();
      await db.destroy();
      await tracing?.shutdown();
    },
    config.WORKER_SHUTDOWN_GRACE_MS + 15_000,
    () => ({ activities: worker.activitiesInFlight() }),
  );
  await worker.finished;
});
