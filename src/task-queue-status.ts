import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

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
    pollers: answer.pollers.filter(
      (poller) => now - Number(poller.lastAccessTime?.seconds ?? 0) * 1_000 < recentPollMs,
    ),
    backlog: Number(answer.stats?.approximateBacklogCount ?? 0),
    backlogAgeSeconds: Number(age?.seconds ?? 0) + (age?.nanos ?? 0) / 1e9,
  };
}
