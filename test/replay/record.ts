// `npm run histories:record [-- <workflow type>/<name>…]`: re-records test/histories/ by running
// every scenario of scenarios.ts for real (the production worker and API, a dev server of its
// own, the e2e fakes of Gemini, Vertex, Cloud Storage and R2), then saving each run's history
// as `temporal workflow show --output json` prints it. Re-run it after changing a workflow on
// purpose; `npm test` replays the files.
//
// `npm run histories:record -- --from-server <workflow id | query> --out <file.json | dir>`
// saves histories from the server at TEMPORAL_ADDRESS instead (a production incident, say).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { parseCommandLine, runCommand, UsageError } from '../../src/command-line.js';
import { numberFromDecimalText } from '../../src/decimal-text.js';
import { CommandFailure } from '../../src/entry-point.js';
import { createLogger } from '../../src/logger.js';
import {
  parseTarget,
  queryRuns,
  saveRuns,
  workflowRuns,
  type RunHistory,
} from '../../src/replay/histories.js';
import { createTemporalAccess, temporalEndpoint } from '../../src/temporal-client.js';
import { startWorker } from '../../src/worker/worker.js';
import { installTemporalBinaries, runInstallScript } from '../../temporal/dev-server.js';
import { prepareNamespace } from '../../temporal/namespace.js';
import { eventually } from '../support/eventually.js';
import { startHarness } from '../support/harness.js';
import { startHeadlessDevServer } from '../support/dev-server.js';
import { projectRoot } from '../support/processes.js';
import { CloudFakes } from '../support/cloud-fakes.js';
import { scenarios, type Scenario } from './scenarios.js';

const historiesDir = path.join(projectRoot, 'test/histories');
const namespace = 'vlogflow-record';
const taskQueue = 'vlogflow-record';

const usage = `usage: npm run histories:record -- [<workflow type>/<name>…]
       npm run histories:record -- --from-server <workflow id | query> --out <file.json | dir> [--limit N]
  Without --from-server: re-records the scenarios named (default: all) under test/histories.
  --from-server  saves the histories of a workflow id (every run of its chain) or of a
                 visibility query (at most --limit runs, default 100; --out a directory) from
                 TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE.`;

async function recordFromServer(target: string, out: string, limit: number): Promise<void> {
  const config = loadConfig();
  const endpoint = temporalEndpoint(config);
  const connection = await Connection.connect(endpoint).catch((error: Error) => {
    throw new CommandFailure(`Cannot reach Temporal at ${endpoint.address}: ${error.message}`);
  });
  try {
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
    const parsed = await parseTarget(target);
    if (parsed.kind === 'workflowId') {
      const runs = await workflowRuns(client, parsed.workflowId);
      const base = out.endsWith('.json') ? out : path.join(out, `${parsed.workflowId}.json`);
      for (const file of await saveRuns(runs, base)) console.log(`saved ${file}`);
    } else if (parsed.kind === 'query') {
      if (out.endsWith('.json')) throw new UsageError('--out: must be a directory for a query');
      // A query lists each run on its own; the run id keeps runs of one chain apart.
      for await (const run of queryRuns(client, parsed.query, limit)) {
        const base = path.join(out, `${run.workflowId}.${run.runId}.json`);
        for (const file of await saveRuns([run], base)) console.log(`saved ${file}`);
      }
    } else {
      throw new UsageError(
        `--from-server: takes a workflow id or a visibility query, not ${target}`,
      );
    }
  } finally {
    await connection.close();
  }
}

async function recordScenarios(selected: Scenario[]): Promise<void> {
  const logger = createLogger({ LOG_LEVEL: 'error' }, 'record');
  const binaries = await installTemporalBinaries();
  const emulators = await runInstallScript('test/emulators/install.sh', [
    'fake-gcs-server',
    'moto-server',
  ]);
  // CloudFakes starts the emulators from these, as it does under `npm test`.
  process.env['TEST_FAKE_GCS_PATH'] = emulators['fake-gcs-server'];
  process.env['TEST_MOTO_PATH'] = emulators['moto-server'];
  delete process.env['STORAGE_EMULATOR_HOST'];

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-record-'));
  const server = await startHeadlessDevServer({
    cliPath: binaries.cli,
    namespace,
    logFile: path.join(projectRoot, '.local/test-logs/record-dev-server.log'),
  });
  // Undone last to first.
  const cleanups: (() => Promise<unknown>)[] = [
    () => rm(scratch, { recursive: true, force: true }),
    () => server.stop(),
  ];
  try {
    const connection = await Connection.connect({ address: server.address });
    await prepareNamespace(connection, namespace);
    await connection.close();
    const temporal = createTemporalAccess({ address: server.address }, namespace);
    cleanups.push(() => temporal.close());
    const fakes = await CloudFakes.start();
    cleanups.push(() => fakes.stop());
    const db = await openDatabase({ dataDir: scratch });
    cleanups.push(() => db.destroy());
    const worker = await startWorker(
      { endpoint: { address: server.address }, namespace, taskQueue, shutdownGraceMs: 2_000 },
      await fakes.activityDependencies(db),
      logger,
    );
    cleanups.push(() => worker.stop());

    for (const scenario of selected) {
      fakes.google.resetScenario();
      fakes.google.scenario.videoBytes = 1_024;
      fakes.partDelayMs = 0;
      const harness = await startHarness({
        db,
        temporal,
        taskQueue,
        logger,
        env: { ...fakes.env, ...scenario.env },
      });
      const context = { fakes, api: harness.api, client: temporal.client, taskQueue, db };
      const started = Date.now();
      try {
        const workflowId = await scenario.run(context);
        const runs = await closedRuns(temporal.client, workflowId);
        await scenario.check?.(context, workflowId);
        const files = await saveRuns(
          runs,
          path.join(historiesDir, scenario.workflowType, `${scenario.name}.json`),
        );
        for (const [index, file] of files.entries()) {
          await compareWithCli(binaries.cli, server.address, runs[index]!, file);
          const { size } = await stat(file);
          console.log(
            `${path.relative(projectRoot, file)}  ${(size / 1024).toFixed(1)} KiB  (${Date.now() - started} ms)`,
          );
        }
      } finally {
        await harness.stop();
      }
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/**
 * The saved file must be exactly what `temporal workflow show --output json` prints for the
 * run, so recordings and histories saved by hand with the CLI stay interchangeable.
 */
async function compareWithCli(
  cli: string,
  address: string,
  run: RunHistory,
  file: string,
): Promise<void> {
  const args = ['workflow', 'show', '--output', 'json', '--address', address];
  args.push('--namespace', namespace, '-w', run.workflowId, '-r', run.runId);
  const { stdout } = await promisify(execFile)(cli, args, { maxBuffer: 64 * 1024 * 1024 });
  const saved = await readFile(file, 'utf8');
  if (saved === stdout) return;
  const ours = saved.split('\n');
  const theirs = stdout.split('\n');
  const line = ours.findIndex((text, index) => text !== theirs[index]);
  throw new Error(
    `${file} differs from \`temporal workflow show --output json\` at line ${line + 1}:\n` +
      `  saved: ${ours[line]}\n  CLI:   ${theirs[line]}`,
  );
}

/** Every run of the workflow once the last one has closed (a failed vlog may wait for a retry). */
async function closedRuns(client: Client, workflowId: string): Promise<RunHistory[]> {
  await eventually(
    async () => (await client.workflow.getHandle(workflowId).describe()).status.name,
    (status) => status !== 'RUNNING',
    { what: `${workflowId} closed`, timeoutMs: 60_000 },
  );
  return workflowRuns(client, workflowId);
}

runCommand(usage, async () => {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: {
      'from-server': { type: 'string' },
      out: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (values['from-server'] !== undefined) {
    if (!values['from-server']) {
      throw new UsageError('--from-server: expected a workflow id or a visibility query');
    }
    if (!values.out) throw new UsageError('--from-server needs --out <file.json | directory>');
    const limit = numberFromDecimalText(values.limit ?? '100');
    if (typeof limit !== 'number' || limit < 1) {
      throw new UsageError(`--limit: expected a whole number of at least 1, not "${values.limit}"`);
    }
    await recordFromServer(values['from-server'], values.out, limit);
    return;
  }
  // Without --from-server it re-records the committed histories: an --out meant for the server
  // would be ignored, and every file under test/histories/ rewritten.
  if (values.out !== undefined || values.limit !== undefined) {
    throw new UsageError('--out and --limit go with --from-server');
  }
  const selected = scenarios.filter(
    (scenario) =>
      positionals.length === 0 || positionals.includes(`${scenario.workflowType}/${scenario.name}`),
  );
  if (selected.length === 0) {
    throw new UsageError(
      `No scenario named ${positionals.join(', ')}; known: ${scenarios.map((s) => `${s.workflowType}/${s.name}`).join(', ')}`,
    );
  }
  await recordScenarios(selected);
});
