/**
 * Runs the Temporal CLI's dev server (frontend, persistence in SQLite, Web UI) as a child
 * process, for `npm start` and the test suite. Production points TEMPORAL_ADDRESS at a cluster
 * instead and runs `npm run temporal:setup` against it once.
 *
 * A stack talks only to the server it started: every port the server opens is checked before it
 * starts, and it counts as ready only once its own output says it serves on our port, never
 * because something answers there. It runs under a supervisor that kills it if this process
 * dies, and a record in the data folder lets a later start stop a server left behind anyway.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { ConfigError, temporalDevPortVariables, type Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { assertPortsFree, type PortClaim } from '../src/ports.js';
import { spawnSupervised } from '../src/supervisor.js';
import { makeDirectory } from '../src/directories.js';

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
 * Dynamic config for the dev server: workflow Updates on (retries use them), search attributes
 * visible the moment they are registered instead of after a cache refresh, task queue
 * fairness (the matcher that honours the fairness key every job is started with), and one
 * partition per queue: a single-process server gains nothing from four, and with one the fair
 * turns cover the whole backlog rather than each partition's share (which a lone poller visits
 * at random), so the order of tasks is exact.
 *
 * The history service reads each shard's queues of transfer tasks (a workflow task or activity
 * to hand to matching), timers and visibility updates at most 20 times a second by default, and
 * the dev server has one shard: every workflow task scheduled within 50 ms of the last read
 * waited for the next one, 34 ms on average, so a job's every step after an activity or a
 * timer was that much late. The reads follow new tasks, so a higher limit only reads sooner.
 */
const historyQueueReadsPerSecond = 1_000;
const devDynamicConfig: Record<string, unknown> = {
  'frontend.enableUpdateWorkflowExecution': true,
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
  'system.forceSearchAttributesCacheRefreshOnRead': true,
  'matching.useNewMatcher': true,
  'matching.enableFairness': true,
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
  'history.transferProcessorMaxPollRPS': historyQueueReadsPerSecond,
  'history.timerProcessorMaxPollRPS': historyQueueReadsPerSecond,
  'history.visibilityProcessorMaxPollRPS': historyQueueReadsPerSecond,
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
  /** gRPC frontend port. */
  port: number;
  /** Web UI port; `null` runs headless. */
  uiPort: number | null;
  /** HTTP API port. Default: a free port the CLI picks. */
  httpPort?: number;
  /** Port of the `/metrics` endpoint. Default: a free port the CLI picks. */
  metricsPort?: number;
  /** The setting that moves each port, named when it is taken. Default: the option's name. */
  portSettings?: Partial<Record<DevServerPortOption, string>>;
  /** SQLite file that keeps workflows across restarts; `null` keeps them in memory. */
  dbFilename: string | null;
  /** File that receives the server's own output. */
  logFile: string;
  /**
   * File naming this process as the server's owner while it runs, so that a later start finds
   * a server its owner left behind (see stopLeftoverDevServer). Default: none.
   */
  ownerRecord?: string;
  /** How long to wait for the server to serve. */
  startTimeoutMs?: number;
}

type DevServerPortOption = 'port' | 'uiPort' | 'httpPort' | 'metricsPort';

const portDescriptions: Record<DevServerPortOption, string> = {
  port: "the Temporal dev server's gRPC frontend",
  uiPort: "the Temporal dev server's Web UI",
  httpPort: "the Temporal dev server's HTTP API",
  metricsPort: "the Temporal dev server's metrics endpoint",
};

export interface DevServer {
  address: string;
  uiUrl: string | null;
  /** The server's own pid (not its supervisor's). */
  pid: number;
  /** Settles once the server (and its supervisor) have exited, with the exit code. */
  exited: Promise<number | null>;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  stop(): Promise<void>;
}

/** What a running server's owner record holds. */
interface DevServerRecord {
  ownerPid: number;
  serverPid: number;
  /** The server's command line, to tell it from an unrelated process that reuses its pid. */
  commandLine: string;
  address: string;
  startedAt: string;
}

/**
 * The persistent dev server with the Web UI that `npm start` and `npm run temporal:dev` run,
 * keeping its state, log and owner record in DATA_DIR, on the ports the configuration pins.
 */
export async function startLocalDevServer(
  config: Pick<Config, 'TEMPORAL_NAMESPACE' | 'temporalDevPorts' | 'dataDir'>,
  logger: Logger,
): Promise<DevServer> {
  const ownerRecord = path.join(config.dataDir, 'temporal-dev-server.json');
  await stopLeftoverDevServer(ownerRecord, logger);
  const { cli } = await installTemporalBinaries();
  const ports = config.temporalDevPorts;
  return startDevServer({
    cliPath: cli,
    namespace: config.TEMPORAL_NAMESPACE,
    port: ports.grpc,
    uiPort: ports.ui,
    httpPort: ports.http,
    metricsPort: ports.metrics,
    portSettings: {
      port: temporalDevPortVariables.grpc,
      uiPort: temporalDevPortVariables.ui,
      httpPort: temporalDevPortVariables.http,
      metricsPort: temporalDevPortVariables.metrics,
    },
    dbFilename: path.join(config.dataDir, 'temporal.sqlite'),
    logFile: path.join(config.dataDir, 'temporal-dev-server.log'),
    ownerRecord,
  });
}

/** The server process ended before it served: the error names its exit code and last log line. */
class ExitedBeforeReady extends Error {}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = '127.0.0.1';
  const pinned: Record<DevServerPortOption, number | null | undefined> = {
    port: options.port,
    uiPort: options.uiPort,
    httpPort: options.httpPort,
    metricsPort: options.metricsPort,
  };
  const claims: PortClaim[] = Object.entries(pinned).flatMap(([option, port]) =>
    typeof port === 'number'
      ? [
          {
            host,
            port,
            what: portDescriptions[option as DevServerPortOption],
            setting: options.portSettings?.[option as DevServerPortOption] ?? option,
          },
        ]
      : [],
  );
  await assertPortsFree(claims);

  const address = `${host}:${options.port}`;
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--namespace',
    options.namespace,
    '--log-level',
    'warn',
    ...(options.uiPort === null ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...(options.httpPort === undefined ? [] : ['--http-port', String(options.httpPort)]),
    ...(options.metricsPort === undefined ? [] : ['--metrics-port', String(options.metricsPort)]),
    ...(options.dbFilename === null ? [] : ['--db-filename', options.dbFilename]),
    ...Object.entries(devDynamicConfig).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
  ];
  // The server picks free ports for its own services (history, matching, the HTTP API when
  // unset); another process can take one between its pick and its bind, and the server dies
  // as it starts (a panic in a service's listener). It picks them anew on a second try.
  try {
    return await launch();
  } catch (error) {
    if (!(error instanceof ExitedBeforeReady)) throw error;
    return await launch();
  }

  async function launch(): Promise<DevServer> {
    if (options.dbFilename) await makeDirectory(path.dirname(options.dbFilename));
    await makeDirectory(path.dirname(options.logFile));
    const log = await open(options.logFile, 'a');
    const logOffset = (await log.stat()).size;
    // Its own process group: a Ctrl-C in the terminal reaches only our process, which stops the
    // worker first and the server last, so running activities can still report back.
    const server = spawnSupervised(options.cliPath, args, { output: log.fd, detached: true });
    await log.close();
    const { supervisor } = server;
    const exited = new Promise<number | null>((resolve) =>
      supervisor.once('exit', (code) => resolve(code)),
    );
    let pid: number | undefined;

    const stop = async () => {
      if (supervisor.exitCode === null && supervisor.signalCode === null) {
        // The supervisor passes SIGTERM on; closing its lifeline is the SIGKILL.
        supervisor.kill('SIGTERM');
        const timer = setTimeout(server.kill, 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (options.ownerRecord && pid !== undefined)
        await forgetOwnerRecord(options.ownerRecord, pid);
    };

    try {
      pid = await server.pid;
      if (options.ownerRecord) {
        const record: DevServerRecord = {
          ownerPid: process.pid,
          serverPid: pid,
          commandLine: [options.cliPath, ...args].join(' '),
          address,
          startedAt: new Date().toISOString(),
        };
        await writeFile(options.ownerRecord, `${JSON.stringify(record, null, 2)}\n`);
      }
      await waitUntilServing({
        address,
        namespace: options.namespace,
        timeoutMs: options.startTimeoutMs ?? 30_000,
        exited,
        logFile: options.logFile,
        logOffset,
      });
    } catch (error) {
      await stop();
      throw error;
    }
    return {
      address,
      uiUrl: options.uiPort === null ? null : `http://${host}:${options.uiPort}`,
      pid,
      exited,
      stop,
    };
  }
}

/** What the server wrote to its log since `offset`. */
async function readLogSince(logFile: string, offset: number): Promise<string> {
  const handle = await open(logFile, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Waits for the CLI's own start banner (`Temporal Server: localhost:<port>`, printed once it
 * serves) and then for the namespace to answer. A frontend that answers without that banner is
 * someone else's server that took the port first.
 */
async function waitUntilServing(wait: {
  address: string;
  namespace: string;
  timeoutMs: number;
  exited: Promise<number | null>;
  logFile: string;
  logOffset: number;
}): Promise<void> {
  const port = wait.address.slice(wait.address.lastIndexOf(':') + 1);
  const banner = new RegExp(`^\\s*(?:Temporal )?Server:\\s+\\S+:${port}\\s*$`, 'm');
  let exitCode: number | null | undefined;
  void wait.exited.then((code) => (exitCode = code));
  const deadline = Date.now() + wait.timeoutMs;
  let serving = false;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      const lastWords = (await readLogSince(wait.logFile, wait.logOffset))
        .trim()
        .split('\n')
        .at(-1);
      throw new ExitedBeforeReady(
        `Temporal dev server exited with code ${exitCode} before it was ready: ${lastWords || 'no output'} (log: ${wait.logFile})`,
      );
    }
    serving ||= banner.test(await readLogSince(wait.logFile, wait.logOffset));
    if (serving) {
      try {
        const connection = await Connection.connect({
          address: wait.address,
          connectTimeout: 1_000,
        });
        try {
          await connection.workflowService.describeNamespace({ namespace: wait.namespace });
          return;
        } finally {
          await connection.close();
        }
      } catch (error) {
        lastError = error;
      }
    }
    await delay(100);
  }
  throw new Error(
    `Temporal dev server at ${wait.address} was not ready after ${wait.timeoutMs} ms; see ${wait.logFile}`,
    { cause: lastError },
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's command line, arguments joined by spaces; null once it is gone. */
async function commandLineOf(pid: number): Promise<string | null> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8'))
      .replace(/\0$/, '')
      .replaceAll('\0', ' ');
  } catch {
    if (existsSync('/proc/self')) return null;
  }
  // No /proc (macOS): ask ps, unabridged.
  try {
    const { stdout } = await promisify(execFile)('ps', ['-ww', '-o', 'args=', '-p', String(pid)]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await delay(100);
  }
  return !isAlive(pid);
}

/**
 * Reads the owner record a previous start left in `recordFile`. A server it names that still
 * runs while its owner is gone (its stack was killed and its supervisor with it) is stopped,
 * and the log says so; one whose owner still runs is another live stack on the same data
 * folder, and starting is refused rather than taking its server away.
 */
export async function stopLeftoverDevServer(recordFile: string, logger: Logger): Promise<void> {
  let record: DevServerRecord;
  try {
    record = JSON.parse(await readFile(recordFile, 'utf8')) as DevServerRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`cannot read the dev server record ${recordFile}; delete it and start again`, {
      cause: error,
    });
  }
  if ((await commandLineOf(record.serverPid)) !== record.commandLine) {
    await rm(recordFile, { force: true });
    return;
  }
  if (isAlive(record.ownerPid)) {
    throw new ConfigError(
      `Cannot start: process ${record.ownerPid} runs a stack on this DATA_DIR (${path.dirname(recordFile)}) with its Temporal dev server at ${record.address}; stop it, or give this stack its own DATA_DIR`,
    );
  }
  logger.warn(
    { pid: record.serverPid, address: record.address, ownerPid: record.ownerPid, recordFile },
    'Stopping a leftover Temporal dev server of this data directory: the stack that started it is gone',
  );
  process.kill(record.serverPid, 'SIGTERM');
  if (!(await waitForExit(record.serverPid, 10_000))) {
    process.kill(record.serverPid, 'SIGKILL');
    await waitForExit(record.serverPid, 5_000);
  }
  await rm(recordFile, { force: true });
  logger.warn({ pid: record.serverPid }, 'Leftover Temporal dev server stopped');
}

/** Removes the owner record if it still names this server (a later start may have replaced it). */
async function forgetOwnerRecord(recordFile: string, serverPid: number): Promise<void> {
  try {
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as DevServerRecord;
    if (record.serverPid === serverPid) await rm(recordFile, { force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
