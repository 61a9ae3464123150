/**
 * Replays recorded histories against workflow code and says where each one that no longer
 * fits diverged: the workflow id, the history event (id and type) and the SDK's reason.
 */
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type ReplayWorkerOptions,
} from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import proto from '@temporalio/proto';
import type { History } from './history-json.js';
import type { RunHistory } from './histories.js';

const EventType = proto.temporal.api.enums.v1.EventType;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** Workflow code bundled once, as the worker bundles it, and shared by every replay. */
export type WorkflowCode = Pick<ReplayWorkerOptions, 'workflowBundle'>;

/** Bundles a workflows module (e.g. `src/workflows/index.ts`) for replaying. */
export async function bundleWorkflows(workflowsPath: string): Promise<WorkflowCode> {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('ERROR') });
  return { workflowBundle: { code } };
}

/** Where a history stopped fitting the code. */
export interface Divergence {
  eventId: number;
  /** e.g. `ActivityTaskScheduled`. */
  eventType: string;
  /** What the event names: an activity type, a timer id, a marker. */
  eventDetail: string | null;
  /** The SDK's reason, e.g. "Activity type of scheduled event 'a' does not match … 'b'". */
  reason: string;
}

export interface ReplayOutcome {
  run: RunHistory;
  /** Set when the code makes different commands than the history recorded. */
  divergence: Divergence | null;
  /** Set when replay failed for another reason (the workflow code threw, a broken file). */
  error: string | null;
}

/**
 * The traced bundle's workflows hand their spans to an `exporter` sink; a replay worker never
 * calls it, but the SDK logs an error for each call to a sink it was not given, which would
 * read as a failed replay.
 */
const replaySinks: ReplayWorkerOptions['sinks'] = {
  exporter: { export: { fn: () => undefined, callDuringReplay: false } },
};

/** Replays each run in turn against `code`; one outcome per run, in order. */
export async function* replayRuns(
  runs: AsyncIterable<RunHistory> | Iterable<RunHistory>,
  code: WorkflowCode,
): AsyncGenerator<ReplayOutcome> {
  // Results come back one per history, in the order they were fed.
  const fed: RunHistory[] = [];
  async function* feed() {
    for await (const run of runs) {
      fed.push(run);
      yield { workflowId: run.workflowId, history: run.history };
    }
  }
  for await (const result of Worker.runReplayHistories({ ...code, sinks: replaySinks }, feed())) {
    const run = fed.shift()!;
    if (!result.error) {
      yield { run, divergence: null, error: null };
    } else if (result.error instanceof DeterminismViolationError) {
      yield { run, divergence: await locateDivergence(run, result.error, code), error: null };
    } else {
      yield { run, divergence: null, error: result.error.message };
    }
  }
}

/** One line per outcome: `ok`, or `DIVERGED` with the workflow id, the event and the reason. */
export function describeOutcome({ run, divergence, error }: ReplayOutcome): string {
  // Sources fetched from a server start with the workflow id already.
  const subject = run.source.startsWith(run.workflowId)
    ? run.source
    : `${run.source} (${run.workflowId})`;
  if (divergence) {
    const { eventId, eventType, eventDetail, reason } = divergence;
    const event = `event ${eventId} ${eventType}${eventDetail ? ` (${eventDetail})` : ''}`;
    return `DIVERGED ${subject}: workflow ${run.workflowId} at ${event}: ${reason}`;
  }
  if (error) return `FAILED   ${subject}: ${error}`;
  return `ok       ${subject}`;
}

/** The part of the SDK's message that says what went wrong, without the Rust debug wrapping. */
function nondeterminismReason(message: string): string {
  const inner = /Nondeterminism error: (.*?)", source:/.exec(message)?.[1] ?? message;
  return inner.replace(/\\"/g, '"');
}

/**
 * Finds the event where replay diverged. The SDK names it in some messages
 * (`HistoryEvent(id: 5, ActivityTaskScheduled)`); when it only names the commands, replaying
 * prefixes of the history finds the first workflow task whose commands no longer match, and
 * the event is that task's first command the message names (or its first command).
 */
async function locateDivergence(
  run: RunHistory,
  error: DeterminismViolationError,
  code: WorkflowCode,
): Promise<Divergence> {
  const reason = nondeterminismReason(error.message);
  const events = run.history.events ?? [];
  const named = /HistoryEvent\(id: (\d+), (\w+)\)/.exec(reason);
  if (named) {
    const event = events.find((candidate) => asNumber(candidate.eventId) === Number(named[1]));
    return {
      eventId: Number(named[1]),
      eventType: named[2]!,
      eventDetail: event ? eventDetail(event) : null,
      reason,
    };
  }
  const task = await firstDivergingTask(run, code);
  const commands = events.filter((event) => commandTaskId(event) === task);
  const quoted = [...reason.matchAll(/'([^']+)'/g)].map((match) => match[1]!);
  const event =
    commands.find((candidate) => quoted.includes(eventDetail(candidate) ?? '')) ??
    commands[0] ??
    events.find((candidate) => asNumber(candidate.eventId) === task);
  if (!event)
    return { eventId: task, eventType: 'WorkflowTaskCompleted', eventDetail: null, reason };
  return {
    eventId: asNumber(event.eventId),
    eventType: eventTypeName(event),
    eventDetail: eventDetail(event),
    reason,
  };
}

/**
 * The WorkflowTaskCompleted event id of the first workflow task whose commands do not match.
 * A history cut right after a WorkflowTaskStarted replays every earlier task's commands and
 * runs the last task fresh, so it fails exactly when an earlier task diverged.
 */
async function firstDivergingTask(run: RunHistory, code: WorkflowCode): Promise<number> {
  const events = run.history.events ?? [];
  const started = events.flatMap((event, index) =>
    event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED ? [index] : [],
  );
  const fits = async (taskIndex: number) => {
    const prefix: History = { events: events.slice(0, started[taskIndex]! + 1) };
    try {
      await Worker.runReplayHistory({ ...code, sinks: replaySinks }, prefix, run.workflowId);
      return true;
    } catch {
      return false;
    }
  };
  // Invariant: the prefix through task `low` fits; the one through `high` does not (the whole
  // history stands for the task after the last).
  let low = 0;
  let high = started.length;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await fits(middle)) low = middle;
    else high = middle;
  }
  // Task `low` is the last one replayed before the failure: its commands diverged.
  const completed = events
    .slice(started[low]! + 1)
    .find((event) => event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  return asNumber(completed?.eventId ?? events.at(-1)?.eventId ?? 0);
}

/** The WorkflowTaskCompleted event whose commands made this event, if it is a command's. */
function commandTaskId(event: HistoryEvent): number | null {
  const attributes = Object.entries(event).find(([key]) => key.endsWith('EventAttributes'))?.[1] as
    { workflowTaskCompletedEventId?: unknown } | undefined;
  const id = attributes?.workflowTaskCompletedEventId;
  return id === undefined || id === null ? null : asNumber(id);
}

/** Event ids are int64: protobuf Longs, which print as their decimal value. */
function asNumber(value: unknown): number {
  return Number(String(value));
}

/** `EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` → `ActivityTaskScheduled`. */
function eventTypeName(event: HistoryEvent): string {
  const name = EventType[event.eventType ?? 0] ?? 'EVENT_TYPE_UNSPECIFIED';
  return name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_match, _separator, letter: string) => letter.toUpperCase());
}

function eventDetail(event: HistoryEvent): string | null {
  return (
    event.activityTaskScheduledEventAttributes?.activityType?.name ??
    event.timerStartedEventAttributes?.timerId ??
    event.markerRecordedEventAttributes?.markerName ??
    event.workflowExecutionSignaledEventAttributes?.signalName ??
    event.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name ??
    null
  );
}
