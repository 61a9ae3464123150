// `npm run replay -- <workflow id | visibility query | file.json | directory> …`: replays the
// histories of running or finished workflows against the workflow code in this checkout (or a
// prebuilt bundle), so a change that would break running workflows is caught before it ships.
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config.js';
import { numberFromDecimalText } from '../decimal-text.js';
import { parseCommandLine, runCommand, UsageError } from '../command-line.js';
import { CommandFailure } from '../entry-point.js';
import { createLogger } from '../logger.js';
import { temporalEndpoint } from '../temporal-client.js';
import { installWorkerRuntime } from '../worker/runtime.js';
import { parseTarget, RunsLeftOut, targetRuns } from './histories.js';
import { describeOutcome, replayRuns, type WorkflowCode } from './replayer.js';
import { sourceWorkflowBundle } from '../worker/workflow-bundles.js';

const usage = `usage: npm run replay -- [--limit N] [--bundle dist/workflow-bundle.js] <target>…
  target: a workflow id (every run of its continue-as-new chain), a visibility query
  (e.g. 'JobKind = "vlog" AND ExecutionStatus = "Running"'), a history JSON file, or a directory
  of them. Ids and queries are read from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (TLS and API key
  from TEMPORAL_TLS_* / TEMPORAL_API_KEY).`;

runCommand(usage, async () => {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: {
      limit: { type: 'string', default: '100' },
      bundle: { type: 'string' },
    },
  });
  const limit = numberFromDecimalText(values.limit);
  if (typeof limit !== 'number' || limit < 1) {
    throw new UsageError(`--limit: expected a whole number of at least 1, not "${values.limit}"`);
  }
  if (positionals.length === 0) throw new UsageError('no target given');
  const config = loadConfig();
  const endpoint = temporalEndpoint(config);
  await installWorkerRuntime(createLogger({ LOG_LEVEL: 'error' }, 'replay'));

  let connection: Connection | null = null;
  const client = async () => {
    connection ??= await Connection.connect(endpoint).catch((error: Error) => {
      throw new CommandFailure(`Cannot reach Temporal at ${endpoint.address}: ${error.message}`);
    });
    return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  };
  const code: WorkflowCode = values.bundle
    ? { workflowBundle: { codePath: await workflowBundleFile(values.bundle) } }
    : { workflowBundle: await sourceWorkflowBundle(false) };

  let replayed = 0;
  let failed = 0;
  const leftOut: string[] = [];
  try {
    for (const argument of positionals) {
      const target = await parseTarget(argument);
      try {
        for await (const outcome of replayRuns(targetRuns(target, client, limit), code)) {
          replayed += 1;
          if (outcome.divergence || outcome.error) failed += 1;
          console.log(describeOutcome(outcome));
        }
      } catch (error) {
        if (!(error instanceof RunsLeftOut)) throw error;
        leftOut.push(error.message);
      }
    }
  } finally {
    await (connection as Connection | null)?.close();
  }
  console.log(`${replayed} histories replayed, ${failed} failed`);
  if (replayed === 0) console.error(`Nothing to replay: no run matched ${positionals.join(', ')}`);
  for (const message of leftOut) console.error(message);
  if (failed > 0 || replayed === 0 || leftOut.length > 0) process.exitCode = 1;
});

async function workflowBundleFile(file: string): Promise<string> {
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) throw new CommandFailure(`No such workflow bundle: ${file}`);
  // The SDK's bundler declares its library first; any other file failed every history with
  // the SDK's words for a missing global.
  const head = await readHead(file, 1_024);
  if (!/^var __TEMPORAL__;/.test(head)) {
    throw new CommandFailure(
      `${file} is not a workflow bundle: build one with npm run build (dist/workflow-bundle.js)`,
    );
  }
  return path.resolve(file);
}

async function readHead(file: string, bytes: number): Promise<string> {
  const handle = await open(file);
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(bytes), 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
