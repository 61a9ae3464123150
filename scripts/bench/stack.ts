// The stack every service scenario measures, started on private free ports and torn down after:
// a Temporal dev server of its own, a scratch PostgreSQL database, fake Google (instant unless a
// scenario slows it), the API and worker as separate processes (or, in the `all-in-one`
// topology, as one process), and a worker for the bare baseline workflows (bare-worker.ts),
// also its own process. With `veo`, a Cloud Storage fake (fake-gcs-server) too, where fake Veo
// writes the videos the worker then copies.
//
// The API and worker run from the TypeScript sources (`node --import ./src/typescript-hooks.ts`), found through the
// `api`, `worker` and `start` scripts of package.json: no `npm run build` first, so the bench measures
// the tree as it is and follows entry points when they move. From source the worker bundles its
// workflows once as it starts; after that it runs the same code a built worker runs. A scenario
// that measures the worker's memory asks for `builtWorker`: `npm run build` of the tree as it
// is, then the compiled worker, without what the TypeScript hooks and webpack leave in a worker from source.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import pg from 'pg';
import { mintToken } from '../../src/auth.js';
import { parseGcsUri } from '../../src/storage/gcs-storage.js';
import { createTemporalAccess, type TemporalAccess } from '../../src/temporal-client.js';
import {
  installTemporalBinaries,
  runInstallScript,
  startDevServer,
  type DevServer,
} from '../../temporal/dev-server.js';
import { prepareNamespaceAt } from '../../temporal/namespace.js';
import { FakeGoogle } from '../../test/fakes/fake-google.js';
import { startFakeGcs, type Emulator } from '../../test/support/emulators.js';
import { eventually } from '../../test/support/eventually.js';
import { freePort } from '../../test/support/ports.js';
import {
  projectRoot,
  runNpmScript,
  startService,
  type ServiceProcess,
} from '../../test/support/processes.js';
import type { BareWorkflowInput } from './bare-workflows.js';
import { readCpuUse, type CpuUse } from './cpu.js';

export const postgresUrl =
  process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const namespace = 'vlogflow-bench';
const jwtSecret = 'bench-secret-that-is-long-enough-for-hs256';
const terminal = ['completed', 'failed', 'cancelled', 'timeout'];
const veoBucket = 'bench-veo';

/**
 * The TypeScript source behind a package.json script: the `.ts` file it runs, or for one that
 * runs `node dist/<path>.js`, `<path>.ts`.
 */
export function sourceEntryOf(script: 'start' | 'api' | 'worker'): string {
  const scripts = (
    JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  const command = scripts[script] ?? '';
  // The entry is the last .ts file of the command: the first is the TypeScript hooks it imports.
  const source = [...command.matchAll(/(\S+\.ts)\b/g)].at(-1)?.[1];
  const built = /\bdist\/(\S+)\.js\b/.exec(command)?.[1];
  if (source) return source;
  if (built) return `${built}.ts`;
  throw new Error(`package.json script "${script}" runs neither a .ts nor a dist/*.js entry`);
}

/**
 * What `npm run worker` runs: the variables it sets (`NAME=value … node …`), the compiled file
 * (`dist/<path>.js`) and the node flags before it (`node --flag… dist/<path>.js`).
 */
export function builtWorkerCommand(): {
  entry: string;
  nodeArgs: string[];
  env: Record<string, string>;
} {
  const command = (
    JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts['worker'];
  // What the script runs last (`…; exec node …`): before it, its check that the build is there.
  const last = command?.split(';').at(-1)?.trim() ?? '';
  const match =
    /^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(?:exec\s+)?node((?:\s+--\S+)*)\s+(dist\/\S+\.js)\b/.exec(last);
  if (!match?.[3])
    throw new Error('package.json script "worker" runs no `[NAME=value…] node … dist/*.js` entry');
  const words = (text: string) => text.trim().split(/\s+/).filter(Boolean);
  return {
    entry: match[3],
    nodeArgs: words(match[2]!),
    env: Object.fromEntries(
      words(match[1]!).map((assignment) => assignment.split('=', 2) as [string, string]),
    ),
  };
}

/** A headless Temporal dev server on a free port, its log in `dataDir`, `namespace` ready. */
export async function startBenchTemporal(dataDir: string, namespace: string): Promise<DevServer> {
  const server = await startDevServer({
    cliPath: (await installTemporalBinaries()).cli,
    namespace,
    port: await freePort(),
    uiPort: null,
    dbFilename: null,
    logFile: path.join(dataDir, 'temporal.log'),
  });
  await prepareNamespaceAt({ address: server.address }, namespace);
  return server;
}

/** Runs `fn` on a connection to the bench's PostgreSQL server (to make and drop databases). */
export async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * How the service runs: `separate` API and worker processes (production's shape), or
 * `all-in-one`, the API and worker in one process (`npm start`'s entry), which starts
 * workflows eagerly.
 */
export type Topology = 'separate' | 'all-in-one';

export interface BenchStackOptions {
  /** Settings for the vlogflow processes, on top of the bench's. */
  env?: Record<string, string>;
  /** Default `separate`. */
  topology?: Topology;
  /**
   * Veo generations end with a video written to a Cloud Storage fake (fake-gcs-server, from
   * test/emulators/install.sh) that the worker copies into media storage, so vlogs complete.
   * Without it the stack runs no Veo generation.
   */
  veo?: boolean;
  /**
   * Workers run what `npm run worker` runs: `npm run build` first, then the compiled worker with
   * its prebuilt workflow bundle. From source a worker also holds what the TypeScript hooks and webpack left
   * behind; a scenario that measures the worker's memory wants the production shape.
   */
  builtWorker?: boolean;
}

/** A job's view as `GET /api/jobs/:id` serves it (the fields the bench reads). */
export interface JobView {
  id: string;
  status: string;
  progress: number;
  phase: string | null;
}

export class BenchStack {
  readonly google = new FakeGoogle((gcsUri, bytes) => this.writeGeneratedVideo(gcsUri, bytes));
  temporal!: TemporalAccess;
  baseUrl = '';
  env: Record<string, string> = {};
  readonly workers: ServiceProcess[] = [];
  private api: ServiceProcess | undefined;
  private bareWorker: ServiceProcess | undefined;
  /** Task queue of the bare baseline worker. */
  readonly bareTaskQueue = `bench-bare-${randomUUID().slice(0, 8)}`;
  private readonly services: ServiceProcess[] = [];
  private readonly tokens = new Map<string, Promise<string>>();
  private devServer: DevServer | undefined;
  private gcs: { emulator: Emulator; client: Storage } | undefined;
  private database: string | undefined;
  private dataDir = '';
  /** The worker's entry point, and the node flags it runs with (default: from source). */
  private workerCommand: { entry: string; nodeArgs?: string[]; env?: Record<string, string> } = {
    entry: sourceEntryOf('worker'),
  };

  private constructor(readonly topology: Topology) {}

  /** Starts everything. */
  static async start(options: BenchStackOptions = {}): Promise<BenchStack> {
    const stack = new BenchStack(options.topology ?? 'separate');
    try {
      await stack.setUp(options);
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  private async writeGeneratedVideo(gcsUri: string, bytes: Buffer): Promise<void> {
    if (!this.gcs) throw new Error('the bench stack runs no Veo generations (start it with veo)');
    const { bucket, key } = parseGcsUri(gcsUri);
    await this.gcs.client
      .bucket(bucket)
      .file(key)
      .save(bytes, { contentType: 'video/mp4', resumable: false });
  }

  private async setUp({
    env: extraEnv = {},
    veo = false,
    builtWorker = false,
  }: BenchStackOptions): Promise<void> {
    this.dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bench-'));
    if (builtWorker) {
      const build = await runNpmScript('build');
      if (build.code !== 0) throw new Error(`npm run build failed:\n${build.output}`);
      this.workerCommand = builtWorkerCommand();
    }
    if (veo) {
      const installed = await runInstallScript('test/emulators/install.sh', ['fake-gcs-server']);
      const emulator = await startFakeGcs([veoBucket], installed['fake-gcs-server']);
      this.gcs = {
        emulator,
        client: new Storage({ apiEndpoint: emulator.endpoint, projectId: 'test-project' }),
      };
    }
    this.devServer = await startBenchTemporal(this.dataDir, namespace);
    this.temporal = createTemporalAccess({ address: this.devServer.address }, namespace);
    const database = `vlogflow_bench_${randomUUID().slice(0, 8)}`;
    await admin((client) => client.query(`create database "${database}"`));
    this.database = database;
    const databaseUrl = new URL(postgresUrl);
    databaseUrl.pathname = `/${database}`;
    await this.google.start();
    const apiPort = await freePort();
    this.baseUrl = `http://127.0.0.1:${apiPort}`;
    this.env = {
      DATA_DIR: this.dataDir,
      DATABASE_URL: databaseUrl.href,
      TEMPORAL_ADDRESS: this.devServer.address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: `bench-${randomUUID().slice(0, 8)}`,
      API_PORT: String(apiPort),
      AUTH_JWT_SECRET: jwtSecret,
      // Request logs of a busy API are what an operator turns off first; the bench measures
      // the service, not its log pipe.
      LOG_LEVEL: 'warn',
      // The bench spreads load over several users but measures the service, not its quotas.
      USER_RATE_LIMIT_REQUESTS: '1000000000',
      USER_READ_RATE_LIMIT_REQUESTS: '1000000000',
      USER_MAX_JOBS_IN_FLIGHT: '100000',
      VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: '100000',
      // The credentials fake Google (test/fakes/fake-google.ts) accepts.
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: this.google.url,
      VERTEX_PROJECT: 'test-project',
      VERTEX_BASE_URL: this.google.url,
      VERTEX_ACCESS_TOKEN: 'test-token',
      VEO_OUTPUT_GCS_URI: `gs://${veoBucket}/generated/`,
      ...(this.gcs && { GCS_API_ENDPOINT: this.gcs.emulator.endpoint }),
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      ...extraEnv,
    };
    // The API first: it migrates the database the workers then read.
    const api = this.spawn(
      sourceEntryOf(this.topology === 'all-in-one' ? 'start' : 'api'),
      this.env,
    );
    this.api = api;
    await eventually(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`api exited:\n${api.output.join('\n')}`);
        return (await fetch(`${this.baseUrl}/healthz`)).status;
      },
      (status) => status === 200,
      { timeoutMs: 180_000, intervalMs: 200, what: 'the API answering /healthz' },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${api.output.join('\n')}`);
    });
    const bare = this.spawn('scripts/bench/bare-worker.ts', {}, [
      this.devServer.address,
      namespace,
      this.bareTaskQueue,
    ]);
    this.bareWorker = bare;
    await Promise.all([
      this.topology === 'all-in-one' ? this.warmUp() : this.startWorker(),
      bare.waitForLine(/bare worker started/, 180_000),
    ]);
  }

  /** Runs one probe job to its end: from source a worker bundles first, then it polls. */
  private async warmUp(): Promise<void> {
    await this.result(await this.submitProbe('bench-warmup', { steps: 1, stepDelayMs: 0 }));
  }

  /**
   * Runs an entry point as its own process, stopped with the stack: a TypeScript one from
   * source unless `nodeArgs` say otherwise (startService).
   */
  spawn(
    entry: string,
    env: Record<string, string>,
    args: string[] = [],
    nodeArgs?: string[],
  ): ServiceProcess {
    const service = startService(entry, env, args, nodeArgs);
    this.services.push(service);
    return service;
  }

  /**
   * Starts one more vlogflow worker process and waits until it has run a probe job: from
   * source a worker bundles its workflows first, and only a finished job says it polls.
   */
  async startWorker(env: Record<string, string> = {}): Promise<ServiceProcess> {
    const { entry, nodeArgs, env: commandEnv } = this.workerCommand;
    const worker = this.spawn(entry, { ...commandEnv, ...this.env, ...env }, [], nodeArgs);
    this.workers.push(worker);
    const exited = worker.exited.then((code) => {
      throw new Error(`worker exited with ${code}:\n${worker.output.join('\n')}`);
    });
    await Promise.race([exited, this.warmUp()]);
    exited.catch(() => undefined);
    return worker;
  }

  /** SIGKILLs a worker process (no shutdown) and waits until it is gone. */
  async killWorker(worker: ServiceProcess): Promise<void> {
    worker.child.kill('SIGKILL');
    await worker.exited;
    this.workers.splice(this.workers.indexOf(worker), 1);
  }

  async authorization(userId: string): Promise<string> {
    let token = this.tokens.get(userId);
    if (!token) {
      token = mintToken(jwtSecret, userId);
      this.tokens.set(userId, token);
    }
    return `Bearer ${await token}`;
  }

  private async post(userId: string, url: string, body: unknown): Promise<string> {
    const response = await fetch(`${this.baseUrl}${url}`, {
      method: 'POST',
      headers: {
        authorization: await this.authorization(userId),
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== 202)
      throw new Error(`POST ${url} answered ${response.status}: ${text}`);
    return (JSON.parse(text) as { id: string }).id;
  }

  /** Submits a probe job through the API; returns its id (its workflow's id too). */
  submitProbe(userId: string, input: { steps: number; stepDelayMs: number }): Promise<string> {
    return this.post(userId, '/api/probes', input);
  }

  /** Submits an AI generation job through the API (fake Gemini answers it). */
  submitAi(userId: string, goal = 'Run a marathon'): Promise<string> {
    return this.post(userId, '/api/ai/jobs', {
      type: 'SUBGOAL_GENERATION',
      input: { goal, maxItems: 3 },
    });
  }

  /** `GET /api/jobs/:id` as the job's owner. */
  async view(userId: string, id: string): Promise<JobView> {
    const response = await fetch(`${this.baseUrl}/api/jobs/${id}`, {
      headers: { authorization: await this.authorization(userId) },
    });
    if (response.status !== 200) throw new Error(`GET /api/jobs/${id}: ${response.status}`);
    return (await response.json()) as JobView;
  }

  /**
   * Waits for a workflow to close (a long poll on Temporal, no API reads in between); past
   * `timeoutMs` fails with what Temporal and the processes said.
   */
  async result(workflowId: string, timeoutMs = 120_000): Promise<void> {
    const handle = this.temporal.client.workflow.getHandle(workflowId);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void handle.describe().then(
          (description) =>
            reject(
              new Error(
                `${workflowId} still ${description.status.name} after ${timeoutMs} ms; pending ` +
                  `${JSON.stringify(description.raw.pendingActivities ?? [])}\n${this.outputTail()}`,
              ),
            ),
          (error: unknown) => reject(new Error(`${workflowId} not closed: ${String(error)}`)),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([handle.result(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last lines every process of the stack printed, for a failure's message. */
  outputTail(lines = 20): string {
    return this.services
      .map(
        (service) =>
          `--- ${service.child.spawnargs.slice(2).join(' ')}\n${service.output.slice(-lines).join('\n')}`,
      )
      .join('\n');
  }

  /** Starts a bare baseline workflow; returns its id. */
  async startBare(input: BareWorkflowInput): Promise<string> {
    const handle = await this.temporal.client.workflow.start('bareWorkflow', {
      taskQueue: this.bareTaskQueue,
      workflowId: `bare-${randomUUID()}`,
      args: [input],
    });
    return handle.workflowId;
  }

  /** Starts a bare baseline workflow and waits for it to complete. */
  async runBare(input: BareWorkflowInput): Promise<void> {
    await this.result(await this.startBare(input));
  }

  /**
   * How many activities and local activities a job's workflow ran: the bare baseline of the
   * same shape. Read from its history, so it follows what the job kinds do today.
   */
  async activityShape(workflowId: string): Promise<BareWorkflowInput> {
    const history = await this.temporal.client.workflow.getHandle(workflowId).fetchHistory();
    let activities = 0;
    let localActivities = 0;
    for (const event of history.events ?? []) {
      if (event.activityTaskScheduledEventAttributes) activities += 1;
      if (event.markerRecordedEventAttributes?.markerName === 'core_local_activity')
        localActivities += 1;
    }
    return { activities, localActivities };
  }

  /**
   * How many of a user's jobs are in each of `statuses`, as Temporal's visibility counts them
   * (the JobStatus search attribute each job keeps; a query an operator runs too).
   */
  async jobStatusCounts(
    ownerId: string,
    statuses: readonly string[],
  ): Promise<Map<string, number>> {
    const counts = await Promise.all(
      statuses.map(
        async (status) =>
          [
            status,
            (
              await this.temporal.client.workflow.count(
                `UserId = "${ownerId}" AND JobStatus = "${status}"`,
              )
            ).count,
          ] as const,
      ),
    );
    return new Map(counts.filter(([, count]) => count > 0));
  }

  isTerminal(view: JobView): boolean {
    return terminal.includes(view.status);
  }

  /**
   * The CPU each part of the stack has used so far (cpu.ts): the service's processes, the bare
   * worker, the Temporal server, the PostgreSQL connections to the bench's database (not the
   * server's shared background processes), and this process, which drives the load and runs
   * fake Google.
   */
  async cpuUse(): Promise<CpuUse> {
    const backends = await admin(async (client) =>
      (
        await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [
          this.database,
        ])
      ).rows.map((row) => row.pid),
    );
    const pidsOf = (...services: (ServiceProcess | undefined)[]) =>
      services.flatMap((service) => (service?.child.pid === undefined ? [] : [service.child.pid]));
    return readCpuUse({
      [this.topology === 'all-in-one' ? 'API and worker' : 'API']: pidsOf(this.api),
      worker: pidsOf(...this.workers),
      'bare worker': pidsOf(this.bareWorker),
      Temporal: this.devServer ? [this.devServer.pid] : [],
      PostgreSQL: backends,
      'driver and fakes': [process.pid],
    });
  }

  /** SIGKILLs every process the stack started, at once; safe to call from an exit handler. */
  killProcesses(): void {
    for (const service of this.services) {
      if (service.child.exitCode !== null || service.child.signalCode !== null) continue;
      try {
        process.kill(-service.child.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    // Not in a process group of its own: signalled here (synchronously), or an interrupted
    // run leaves it running.
    void this.gcs?.emulator.stop().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.killProcesses();
    await Promise.all(this.services.map((service) => service.exited));
    await this.temporal?.close();
    await this.google.stop().catch(() => undefined);
    await this.devServer?.stop();
    await this.gcs?.emulator.stop();
    if (this.database)
      await admin((client) =>
        client.query(`drop database if exists "${this.database}" with (force)`),
      );
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
