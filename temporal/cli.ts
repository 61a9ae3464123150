// `npm run temporal:dev`: a dev server in the foreground, for running the API and the worker as
// separate processes. `npm run temporal:setup`: prepare the namespace on TEMPORAL_ADDRESS.
import { ConfigError, loadConfig } from '../src/config.js';
import { runEntryPoint } from '../src/entry-point.js';
import { createLogger } from '../src/logger.js';
import { temporalEndpoint } from '../src/temporal-client.js';
import { startLocalDevServer } from './dev-server.js';
import { prepareNamespaceAt } from './namespace.js';

const command = process.argv[2];

runEntryPoint(async () => {
  const config = loadConfig();
  if (command === 'dev') {
    const logger = createLogger(config, 'temporal-dev');
    const server = await startLocalDevServer(config, logger);
    await prepareNamespaceAt({ address: server.address }, config.TEMPORAL_NAMESPACE);
    logger.info({ address: server.address, pid: server.pid }, 'Temporal dev server started');
    console.log(`Temporal dev server: TEMPORAL_ADDRESS=${server.address}, Web UI ${server.uiUrl}`);
    let stopping = false;
    const stop = () => {
      stopping = true;
      void server.stop().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A server that dies by itself ends this command with it, failed, so that whatever runs it
    // (a terminal, a supervisor restarting on failure) learns of it.
    void server.exited.then((code) => {
      if (stopping) return;
      logger.error({ code, pid: server.pid }, 'Temporal dev server exited');
      process.exit(1);
    });
  } else if (command === 'setup') {
    if (!config.TEMPORAL_ADDRESS) {
      throw new ConfigError(
        'Invalid configuration:\n  TEMPORAL_ADDRESS: required for npm run temporal:setup, the cluster whose namespace it prepares',
      );
    }
    const outcome = await prepareNamespaceAt(temporalEndpoint(config), config.TEMPORAL_NAMESPACE);
    console.log(JSON.stringify({ namespace: config.TEMPORAL_NAMESPACE, ...outcome }));
  } else {
    console.error('usage: npm run temporal:dev|temporal:setup');
    process.exit(2);
  }
});
