// `npm start`: the whole service in one process on embedded defaults — a Temporal dev server
// (child process) unless TEMPORAL_ADDRESS is set, the embedded database unless DATABASE_URL is
// set, the worker and the API.
import { startLocalDevServer, type DevServer } from '../temporal/dev-server.js';
import { prepareNamespaceAt } from '../temporal/namespace.js';
import { startApiServer } from './api/server.js';
import { mintToken, resolveJwtSecret } from './auth.js';
import { errorChain, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { makeDataDir } from './directories.js';
import { runWithoutArguments } from './command-line.js';
import { stopOnSignals } from './entry-point.js';
import { createLogger, type Logger } from './logger.js';
import { assertPortsFree } from './ports.js';
import { startBanner } from './start-banner.js';
import { createTemporalAccess, temporalEndpoint } from './temporal-client.js';
import { startTracing } from './tracing/index.js';
import { createActivityDependencies, startEmbeddedModel } from './worker/dependencies.js';
import { removeAbandonedRenders } from './providers/local-generator.js';
import { startWorker, workerSettings } from './worker/worker.js';

runWithoutArguments('npm start', async () => {
  const config = loadConfig();
  const logger = createLogger(config, 'all-in-one');
  const tracing = await startTracing(config, 'all-in-one', logger);

  // Checked before anything starts: a taken API port found later would leave a dev server
  // and a worker running for nothing.
  await assertPortsFree([
    {
      host: config.API_HOST,
      port: config.API_PORT,
      what: 'the API',
      setting: 'API_PORT',
      hostSetting: 'API_HOST',
    },
  ]);
  await makeDataDir(config.dataDir);
  const devServer = config.TEMPORAL_ADDRESS ? undefined : await keptDevServer(config, logger);
  const endpoint = temporalEndpoint(config, devServer?.address);
  await prepareNamespaceAt(endpoint, config.TEMPORAL_NAMESPACE);

  const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.dataDir });
  const dependencies = await createActivityDependencies(config, db, tracing);
  const { textGenerator, embeddedModel } = dependencies.providers;
  await startEmbeddedModel(embeddedModel, logger);
  await removeAbandonedRenders(config.renderWorkDir, logger);
  const worker = await startWorker(workerSettings(config, endpoint), dependencies, logger, tracing);
  const temporal = createTemporalAccess(
    endpoint,
    config.TEMPORAL_NAMESPACE,
    worker.workflowConnection,
    tracing?.clientInterceptors,
  );
  const jwtSecret = await resolveJwtSecret(config);
  const api = await startApiServer(config, { db, temporal, logger, tracing, jwtSecret });

  const stopStack = stopOnSignals(
    logger,
    async () => {
      // Outside in: stop taking requests and tasks, let running activities report back, then
      // close the stores they report to. The work a retry redoes for nothing (ffmpeg, the
      // embedded model's answers) ends at once, each activity failing retryably, so Ctrl-C
      // takes seconds; provider calls that cost money get the grace time to finish.
      await api.close();
      const workerStopped = worker.stop();
      dependencies.mediaTools?.processes.stop();
      await embeddedModel?.stop();
      await workerStopped;
      await temporal.close();
      await db.destroy();
      await devServer?.stop();
      await tracing?.shutdown();
    },
    config.WORKER_SHUTDOWN_GRACE_MS + 15_000,
    () => ({ activities: worker.activitiesInFlight() }),
  );

  devServer?.onGiveUp(stopStack);

  const tokenHours = Math.min(12, config.AUTH_MAX_TOKEN_LIFETIME_SECONDS / 3_600);
  const token = config.AUTH_JWKS_URL
    ? null
    : await mintToken(jwtSecret, 'local-dev', {
        expiresIn: `${Math.floor(tokenHours * 3_600)}s`,
        issuer: config.AUTH_ISSUER,
        audience: config.AUTH_AUDIENCE,
      });
  console.log(
    startBanner({
      apiUrl: api.url,
      token: token === null ? null : { value: token, hours: tokenHours },
      temporalUiUrl: config.TEMPORAL_UI_URL ?? devServer?.uiUrl,
      temporalNamespace: config.TEMPORAL_NAMESPACE,
      databaseUrl: config.DATABASE_URL,
      dataDir: config.dataDir,
      textGenerator,
    }),
  );
});

/**
 * The dev server `npm start` runs, started again on its own file when it exits by itself (a
 * crash, an OOM kill, a stray `kill`): without it every job would stand still, and on its file
 * they pick up where they were, as after a restart of the whole stack. One that cannot be
 * started again ends the stack (`onGiveUp`), exit code 1, saying why.
 */
async function keptDevServer(config: Config, logger: Logger) {
  const start = async () => {
    const server = await startLocalDevServer(config, logger);
    logger.info(
      { address: server.address, pid: server.pid, ports: config.temporalDevPorts },
      'Temporal dev server started',
    );
    return server;
  };
  let current = await start();
  let stopping = false;
  let giveUp: (reason: string) => void = () => undefined;
  const watch = (server: DevServer) => {
    void server.exited.then(async (code) => {
      if (stopping) return;
      logger.error({ code, pid: server.pid }, 'Temporal dev server exited: starting it again');
      try {
        current = await start();
        watch(current);
      } catch (error) {
        logger.error({ err: error }, 'Temporal dev server cannot be started again');
        giveUp(`the Temporal dev server exited and cannot be started again: ${errorChain(error)}`);
      }
    });
  };
  watch(current);
  return {
    address: current.address,
    uiUrl: current.uiUrl,
    onGiveUp(stop: (reason: string) => void) {
      giveUp = stop;
    },
    async stop() {
      stopping = true;
      await current.stop();
    },
  };
}
