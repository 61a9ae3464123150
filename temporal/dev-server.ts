/**
 * Runs the Temporal CLI's dev server (frontend, persistence in SQLite, Web UI) as a child
 * process, for `npm start` and the test suite. Production points TEMPORAL_ADDRESS at a cluster
 * instead and runs `npm run temporal:setup` against it once.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import type { Config } from '../src/config.js';

/** The folder with package.json, whether this file runs from source or from dist/. */
function findProjectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'temporal'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root above temporal/dev-server');
    dir = parent;
  }
  return dir;
}

/**
 * Dynamic config for the dev server: workflow Updates on (retries use them), and search
 * attributes visible the moment they are registered instead of after a cache refresh.
 */
const devDynamicConfig: Record<string, unknown> = {
  'frontend.enableUpdateWorkflowExecution': true,
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
  'system.forceSearchAttributesCacheRefreshOnRead': true,
};

export interface TemporalBinaries {
  cli: string;
  testServer: string;
}

/**
 * Runs one of the project's install scripts (path relative to the project root) and returns
 * the `name=/absolute/path` lines it prints, checking that each expected name is there.
 */
export async function runInstallScript<Name extends string>(
  script: string,
  names: readonly Name[],
): Promise<Record<Name, string>> {
  const { stdout } = await promisify(execFile)('bash', [path.join(findProjectRoot(), script)]);
  const printed = new Map(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  const missing = names.filter((name) => !printed.get(name));
  if (missing.length > 0)
    throw new Error(`${script} printed no path for ${missing.join(', ')}:\n${stdout}`);
  return Object.fromEntries(names.map((name) => [name, printed.get(name)])) as Record<Name, string>;
}

/** Installs the pinned binaries if needed (see temporal/install.sh) and returns their absolute paths. */
export async function installTemporalBinaries(): Promise<TemporalBinaries> {
  const paths = await runInstallScript('temporal/install.sh', ['temporal', 'temporal-test-server']);
  return { cli: paths['temporal'], testServer: paths['temporal-test-server'] };
}

export interface DevServerOptions {
  cliPath: string;
  namespace: string;
  port: number;
  /** Web UI port; `null` runs headless. */
  uiPort: number | null;
  /** SQLite file that keeps workflows across restarts; `null` keeps them in memory. */
  dbFilename: string | null;
  /** File that receives the server's own output. */
  logFile: string;
  /** How long to wait for the frontend to answer. */
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  child: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * The persistent dev server with the Web UI that `npm start` and `npm run temporal:dev` run,
 * keeping its state and log in DATA_DIR.
 */
export async function startLocalDevServer(
  config: Pick<
    Config,
    'TEMPORAL_NAMESPACE' | 'TEMPORAL_DEV_PORT' | 'TEMPORAL_DEV_UI_PORT' | 'dataDir'
  >,
): Promise<DevServer> {
  const { cli } = await installTemporalBinaries();
  return startDevServer({
    cliPath: cli,
    namespace: config.TEMPORAL_NAMESPACE,
    port: config.TEMPORAL_DEV_PORT,
    uiPort: config.TEMPORAL_DEV_UI_PORT,
    dbFilename: path.join(config.dataDir, 'temporal.sqlite'),
    logFile: path.join(config.dataDir, 'temporal-dev-server.log'),
  });
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const address = `127.0.0.1:${options.port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--namespace',
    options.namespace,
    '--log-level',
    'warn',
    ...(options.uiPort === null ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...(options.dbFilename === null ? [] : ['--db-filename', options.dbFilename]),
    ...Object.entries(devDynamicConfig).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
  ];
  if (options.dbFilename) await mkdir(path.dirname(options.dbFilename), { recursive: true });
  await mkdir(path.dirname(options.logFile), { recursive: true });
  const log = await open(options.logFile, 'a');
  // Its own process group: a Ctrl-C in the terminal reaches only our process, which stops the
  // worker first and the server last, so running activities can still report back.
  const child = spawn(options.cliPath, args, { stdio: ['ignore', log.fd, log.fd], detached: true });
  await log.close();
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitForFrontend(
      address,
      options.namespace,
      options.startTimeoutMs ?? 30_000,
      exited,
      options.logFile,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    address,
    uiUrl: options.uiPort === null ? null : `http://127.0.0.1:${options.uiPort}`,
    child,
    stop,
  };
}

async function waitForFrontend(
  address: string,
  namespace: string,
  timeoutMs: number,
  exited: Promise<number | null>,
  logFile: string,
): Promise<void> {
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(
        `Temporal dev server exited with code ${exitCode} before it was ready; see ${logFile}`,
      );
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await delay(200);
    }
  }
  throw new Error(
    `Temporal dev server at ${address} was not ready after ${timeoutMs} ms; see ${logFile}`,
    {
      cause: lastError,
    },
  );
}
