/**
 * Where histories to replay come from: JSON files (one run each), a workflow id on a live
 * server (every run of its continue-as-new chain), or a visibility query.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  isGrpcServiceError,
  NamespaceNotFoundError,
  ServiceError,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import { CommandFailure } from '../entry-point.js';
import { historyFromCliJson, historyToCliJson, type History } from './history-json.js';
import { makeDirectory } from '../directories.js';

/** One run's history and where it came from. */
export interface RunHistory {
  /** A file path, or `<workflow id> run <n>` for a history fetched from a server. */
  source: string;
  workflowId: string;
  runId: string;
  history: History;
}

/**
 * A target whose histories cannot be had: a missing or malformed file, a workflow or namespace
 * the server does not know, a query it refuses. The message says which, for the command to print
 * as it is.
 */
export class HistorySourceError extends CommandFailure {}

/** What a replay or record command was pointed at. */
export type HistoryTarget =
  | { kind: 'file'; path: string }
  | { kind: 'directory'; path: string }
  | { kind: 'workflowId'; workflowId: string }
  | { kind: 'query'; query: string };

/**
 * An existing path is a file or a directory; text with spaces or a comparison is a visibility
 * query (`JobKind = "vlog" AND ExecutionStatus = "Completed"`); anything else a workflow id.
 */
export async function parseTarget(argument: string): Promise<HistoryTarget> {
  const info = await stat(argument).catch(() => null);
  if (info?.isDirectory()) return { kind: 'directory', path: argument };
  if (info?.isFile()) return { kind: 'file', path: argument };
  if (argument.endsWith('.json')) throw new HistorySourceError(`No such history file: ${argument}`);
  if (/\s|[=<>()]/.test(argument)) return { kind: 'query', query: argument };
  return { kind: 'workflowId', workflowId: argument };
}

/** Every `*.json` under a directory, sorted, so runs of a chain come in order. */
export async function historyFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true });
  return entries
    .filter((entry) => entry.endsWith('.json'))
    .map((entry) => path.join(directory, entry))
    .sort();
}

export async function readHistoryFile(file: string): Promise<RunHistory> {
  let history: History;
  try {
    history = historyFromCliJson(await readFile(file, 'utf8'));
  } catch (error) {
    throw new HistorySourceError(`${file} is not a history: ${(error as Error).message}`);
  }
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!started) {
    throw new HistorySourceError(
      `${file} is not a history: its first event is not a workflow's start (WorkflowExecutionStarted)`,
    );
  }
  return {
    source: file,
    // Files saved by the CLI do not name the workflow; the run it started from does not change.
    workflowId: started?.workflowId ?? path.basename(file, '.json'),
    runId: started?.originalExecutionRunId ?? '',
    history,
  };
}

/**
 * Every run of a workflow, first to last: starts from the latest run and walks back through
 * each run's `continuedExecutionRunId`, so no visibility query (which may lag) is involved.
 * Runs already deleted by retention end the walk.
 */
export async function workflowRuns(client: Client, workflowId: string): Promise<RunHistory[]> {
  const runs: { runId: string; history: History }[] = [];
  let runId: string | undefined;
  for (;;) {
    let history: History;
    try {
      // A history does not name its own run: a reset's start event is the first run's copy.
      runId ??= (await client.workflow.getHandle(workflowId).describe()).runId;
      history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    } catch (error) {
      // describe() names a missing workflow by its class, fetchHistory() by gRPC's NOT_FOUND.
      if (error instanceof NamespaceNotFoundError) throw new HistorySourceError(error.message);
      const notFound =
        error instanceof WorkflowNotFoundError || (error as { code?: number }).code === 5;
      if (!notFound) throw error;
      if (runs.length > 0) break;
      throw new HistorySourceError(
        `No workflow with id ${workflowId} in namespace ${client.options.namespace}`,
      );
    }
    runs.unshift({ runId, history });
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    runId = started?.continuedExecutionRunId || undefined;
    if (!runId) break;
  }
  return runs.map((run, index) => ({
    source: runs.length > 1 ? `${workflowId} run ${index + 1}` : workflowId,
    workflowId,
    runId: run.runId,
    history: run.history,
  }));
}

/**
 * More runs matched a query than its limit: Temporal lists the newest first, so those left out
 * are the oldest, the likeliest to have started on older code. Thrown once the limit's runs have
 * been yielded, so that a replay gate cannot pass on part of what it was asked to check.
 */
export class RunsLeftOut extends HistorySourceError {}

/** Histories of the executions a visibility query matches, at most `limit` of them. */
export async function* queryRuns(
  client: Client,
  query: string,
  limit: number,
): AsyncGenerator<RunHistory> {
  let count = 0;
  try {
    for await (const { workflowId, runId } of client.workflow.list({
      query,
      pageSize: Math.min(limit + 1, 100),
    })) {
      if (count >= limit) {
        throw new RunsLeftOut(
          `More than ${limit} runs match '${query}': only the ${limit} newest were read, the older ones not; raise --limit to take them all`,
        );
      }
      count += 1;
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      yield { source: `${workflowId} (${runId})`, workflowId, runId, history };
    }
  } catch (error) {
    if (error instanceof RunsLeftOut) throw error;
    if (error instanceof NamespaceNotFoundError) throw new HistorySourceError(error.message);
    const cause = error instanceof ServiceError ? error.cause : error;
    if (isGrpcServiceError(cause) && Number(cause.code) === 3 /* gRPC INVALID_ARGUMENT */) {
      throw new HistorySourceError(
        `Temporal refused the visibility query '${query}': ${cause.details}`,
      );
    }
    throw error;
  }
}

/** The histories a target names; ids and queries need a client. */
export async function* targetRuns(
  target: HistoryTarget,
  client: () => Promise<Client>,
  limit: number,
): AsyncGenerator<RunHistory> {
  switch (target.kind) {
    case 'file':
      yield await readHistoryFile(target.path);
      return;
    case 'directory':
      for (const file of await historyFiles(target.path)) yield await readHistoryFile(file);
      return;
    case 'workflowId':
      yield* await workflowRuns(await client(), target.workflowId);
      return;
    case 'query':
      yield* queryRuns(await client(), target.query, limit);
  }
}

/**
 * Saves the runs of one workflow as `<base>.json`, or `<base>.run1.json`, `<base>.run2.json`…
 * for a continue-as-new chain, replacing whatever an earlier recording left under that base.
 * Returns the files written.
 */
export async function saveRuns(runs: RunHistory[], base: string): Promise<string[]> {
  const directory = path.dirname(base);
  const name = path.basename(base, '.json');
  await makeDirectory(directory);
  const stale = (await readdir(directory)).filter(
    (file) =>
      file === `${name}.json` ||
      (file.startsWith(`${name}.run`) && /^\d+\.json$/.test(file.slice(`${name}.run`.length))),
  );
  await Promise.all(stale.map((file) => rm(path.join(directory, file))));
  const files = runs.map((_, index) =>
    path.join(directory, runs.length > 1 ? `${name}.run${index + 1}.json` : `${name}.json`),
  );
  await Promise.all(
    runs.map((run, index) => writeFile(files[index]!, historyToCliJson(run.history))),
  );
  return files;
}
