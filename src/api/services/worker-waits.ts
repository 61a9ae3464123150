import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { TaskQueueDomain } from '../../capacity/task-queues.js';
import { isJobStatus, isStageStatus, isTerminalStatus } from '../../jobs/model.js';
import type { Logger } from '../../logger.js';
import type { TaskQueueWatch } from '../../task-queue-status.js';

const { PendingActivityState } = proto.temporal.api.enums.v1;

/** A job that cannot move because no worker serves the queue its next task waits in. */
export interface WaitingForWorker {
  /** The domain of the queue map (docs/operations.md) no worker serves. */
  queue: TaskQueueDomain;
  /** Its task queue's name in Temporal. */
  taskQueue: string;
  message: string;
}

export interface WorkerWaits {
  /**
   * What the job waits for, if its next task waits in a queue no worker polls; undefined when
   * nothing says so, or nothing is known yet. Never waits on Temporal: it answers from what
   * earlier reads learned and starts a read when that is old, so a status read costs no more.
   */
  of(job: { status: string; workflowId: string }): WaitingForWorker | undefined;
  /** Ends the lookups under way: before the Temporal connection closes, whose retries they are. */
  close(): void;
}

/** How long what Temporal said of the queues, and of one job's pending tasks, is taken as true. */
const defaultFreshForMs = 5_000;

/** Past this, what was learned is too old to tell a client anything (Temporal stopped answering). */
const staleAfterFreshPeriods = 3;

/** Jobs whose pending tasks are remembered at once; a read of another starts afresh. */
const maxJobsRemembered = 10_000;

const describeTimeoutMs = 2_000;

/**
 * Jobs' pending tasks looked up at once. Thousands of jobs polled while a queue has no worker
 * would otherwise ask Temporal for each of them every few seconds; a read past the bound
 * waits for a later one to learn what its job waits for.
 */
const maxJobLookupsAtOnce = 8;

interface QueuesSeen {
  at: number;
  /** No worker polls the workflows' queue: no job moves. */
  workflowsUnpolled: boolean;
  /** Activity queues that no worker polls while tasks wait in them, by task queue name. */
  stranded: Map<string, TaskQueueDomain>;
}

/**
 * Tells a job's reader when the job waits for a worker that is not there: an API started
 * without its worker, or a deployment whose workers leave a domain of the queue map out
 * (`--queues`). Without it the job's status and phase were those of the step it was in, true
 * but silent on why nothing moved. The queues' pollers are read at most once per `freshForMs`
 * for all readers; a job's own pending tasks are read (DescribeWorkflowExecution) only while
 * some activity queue has tasks and no worker, and only for a job in one of its stages.
 */
export function createWorkerWaits(deps: {
  /** For a job's pending tasks. */
  client: Client;
  /** The queues' pollers and backlogs, shared with the API's other readers of them. */
  queues: TaskQueueWatch;
  logger: Logger;
  freshForMs?: number;
}): WorkerWaits {
  const freshForMs = deps.freshForMs ?? defaultFreshForMs;
  const { names } = deps.queues;
  let seen: QueuesSeen | undefined;
  let reading = false;
  let queuesAskedAt = -Infinity;
  const jobs = new Map<string, { at: number; queue: TaskQueueDomain | null }>();
  const jobsReading = new Set<string>();
  const closing = new AbortController();

  const fresh = (at: number) => performance.now() - at < freshForMs;
  const stale = (at: number) => performance.now() - at > staleAfterFreshPeriods * freshForMs;

  async function readQueues(): Promise<void> {
    const statuses = await deps.queues.statuses();
    const stranded = new Map<string, TaskQueueDomain>();
    let workflowsUnpolled = false;
    for (const [domain, status] of statuses) {
      if (status.pollers.length > 0) continue;
      if (domain === 'workflows') workflowsUnpolled = true;
      else if (status.backlog > 0) stranded.set(status.name, domain);
    }
    seen = { at: performance.now(), workflowsUnpolled, stranded };
  }

  async function readJob(workflowId: string, stranded: Map<string, TaskQueueDomain>) {
    const answer = await deps.client.withDeadline(Date.now() + describeTimeoutMs, () =>
      deps.client.withAbortSignal(closing.signal, () =>
        deps.client.workflow.getHandle(workflowId).describe(),
      ),
    );
    const waiting = (answer.raw.pendingActivities ?? []).find(
      (activity) =>
        activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED &&
        stranded.has(activity.activityOptions?.taskQueue?.name ?? ''),
    );
    remember(workflowId, waiting ? stranded.get(waiting.activityOptions!.taskQueue!.name!)! : null);
  }

  function remember(workflowId: string, queue: TaskQueueDomain | null): void {
    if (jobs.size >= maxJobsRemembered) jobs.clear();
    jobs.set(workflowId, { at: performance.now(), queue });
  }

  // Temporal out or refusing: one line when reads begin to fail, not one per attempt.
  let failing = false;
  const warn = (what: string) => (error: unknown) => {
    if (!failing) deps.logger.warn({ err: error }, `worker waits: ${what} not read`);
    failing = true;
  };
  const succeeded = () => {
    failing = false;
  };

  const waiting = (queue: TaskQueueDomain): WaitingForWorker => ({
    queue,
    taskQueue: names[queue],
    message:
      queue === 'workflows'
        ? `No worker polls the workflows queue (${names[queue]}): this job does not move until one does`
        : `No worker polls the ${queue} queue (${names[queue]}), where this job's next task waits: it does not move until one does`,
  });

  return {
    close() {
      closing.abort();
    },
    of({ status, workflowId }) {
      if (closing.signal.aborted || !isJobStatus(status) || isTerminalStatus(status)) {
        return undefined;
      }
      // Asked at most once a period, whether the last lookup answered or failed.
      if (!reading && !fresh(queuesAskedAt)) {
        reading = true;
        queuesAskedAt = performance.now();
        void readQueues()
          .then(succeeded, warn('task queues'))
          .finally(() => {
            reading = false;
          });
      }
      if (!seen || stale(seen.at)) return undefined;
      if (seen.workflowsUnpolled) return waiting('workflows');
      if (seen.stranded.size === 0 || !isStageStatus(status)) return undefined;
      const known = jobs.get(workflowId);
      if (
        (!known || !fresh(known.at)) &&
        !jobsReading.has(workflowId) &&
        jobsReading.size < maxJobLookupsAtOnce
      ) {
        jobsReading.add(workflowId);
        void readJob(workflowId, seen.stranded)
          .then(succeeded, (error: unknown) => {
            remember(workflowId, null);
            warn(`pending tasks of ${workflowId}`)(error);
          })
          .finally(() => jobsReading.delete(workflowId));
      }
      // What the job's last read found, if recent and its queue still has no worker.
      const queue = known && !stale(known.at) ? known.queue : null;
      return queue && [...seen.stranded.values()].includes(queue) ? waiting(queue) : undefined;
    },
  };
}
