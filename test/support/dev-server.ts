import { startDevServer, type DevServer } from '../../temporal/dev-server.js';
import { onFreePorts } from './ports.js';

/**
 * A headless Temporal dev server of the tests' own, keeping its state in memory, on a free port:
 * a fresh one if another process takes it before the server binds it.
 */
export function startHeadlessDevServer(options: {
  cliPath: string;
  namespace: string;
  logFile: string;
}): Promise<DevServer> {
  return onFreePorts(1, ([port]) =>
    startDevServer({ ...options, port: port!, uiPort: null, dbFilename: null }),
  );
}
