import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import {
  taskQueueNames,
  type TaskQueueDomain,
  type TaskQueueNames,
} from './capacity/task-queues.js';
import { taskQueueDomainsInUse } from './kinds/index.js';

const { TaskQueueType } = proto.temporal.api.enums.v1;

type PollerInfo = proto.temporal.api.taskqueue.v1.IPollerInfo;

/**
 * A poller's last access is when its current long poll began, and a poll waits up to a minute
 * for a task: a worker that polled within this window is taken to be polling still. A worker
 * that stopped stays listed this long; a task sent to it waits out its schedule-to-start limit.
 */
export const recentPollMs = 90_000;

/** What Temporal says of one task queue: who polls it now, and, when asked, what waits in it. */
export interface TaskQueueStatus {
  /** The task queue's name in Temporal. */
  name: string;
  /** The workers that polled it recently (`recentPollMs`). */
  pollers: PollerInfo[];
  /** Tasks waiting for a worker (approximate), when `stats` was asked for. */
  backlog: number;
  /** How long the oldest of them has waited, in seconds, when `stats` was asked for. */
  backlogAgeSeconds: number;
}

/** DescribeTaskQueue of the workflow or activity side of `name`, in the client's namespace. */
export async function describeTaskQueue(
  client: Client,
  name: string,
  type: 'workflow' | 'activity',
  options: { signal?: AbortSignal; deadlineMs?: number; stats?: boolean } = {},
): Promise<TaskQueueStatus> {
  const call = () =>
    client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name },
      taskQueueType:
        type === 'workflow'
          ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
          : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      reportStats: options.stats ?? false,
    });
  const { signal, deadlineMs } = options;
  const aborting = signal ? () => client.withAbortSignal(signal, call) : call;
  const answer = await (deadlineMs === undefined
    ? aborting()
    : client.withDeadline(Date.now() + deadlineMs, aborting));
  const now = Date.now();
  const age = answer.stats?.approximateBacklogAge;
  return {
    name,
    pollers: answer.pollers.filter(
      (poller) => now - Number(poller.lastAccessTime?.seconds ?? 0) * 1_000 < recentPollMs,
    ),
    backlog: Number(answer.stats?.approximateBacklogCount ?? 0),
    backlogAgeSeconds: Number(age?.seconds ?? 0) + (age?.nanos ?? 0) / 1e9,
  };
}

/**
 * Every in-use domain's queue as Temporal describes it, pollers and backlog, read once for all
 * who ask within `freshForMs`: the queue metrics, the workers' ffmpeg for readiness and uploads,
 * and what a job waits for each read the same queues, and each asked Temporal on its own before.
 */
export interface TaskQueueWatch {
  /** Every domain's queue name. */
  names: TaskQueueNames;
  /** Rejects when Temporal does not answer within the watch's time limit (a failure is shared too). */
  statuses(): Promise<ReadonlyMap<TaskQueueDomain, TaskQueueStatus>>;
  /** Ends the read under way, before the connection it goes through closes. */
  close(): void;
}

export function watchTaskQueues(
  client: Client,
  /** TEMPORAL_TASK_QUEUE, which every domain's queue is named after. */
  taskQueue: string,
  { freshForMs = 2_000, timeoutMs = 2_000 }: { freshForMs?: number; timeoutMs?: number } = {},
): TaskQueueWatch {
  const names = taskQueueNames(taskQueue);
  const closing = new AbortController();
  let latest: { at: number; read: Promise<ReadonlyMap<TaskQueueDomain, TaskQueueStatus>> } | null =
    null;
  const read = async () => {
    const domains = taskQueueDomainsInUse();
    const statuses = await Promise.all(
      domains.map((domain) =>
        describeTaskQueue(client, names[domain], domain === 'workflows' ? 'workflow' : 'activity', {
          signal: closing.signal,
          deadlineMs: timeoutMs,
          stats: true,
        }),
      ),
    );
    return new Map(domains.map((domain, index) => [domain, statuses[index]!]));
  };
  return {
    names,
    statuses() {
      const now = performance.now();
      if (!latest || now - latest.at >= freshForMs) {
        latest = { at: now, read: read() };
        // A failure is for whoever asks; unasked, it is no unhandled rejection.
        latest.read.catch(() => undefined);
      }
      return latest.read;
    },
    close() {
      closing.abort();
    },
  };
}
