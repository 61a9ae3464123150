/**
 * Every job kind, one line each. The API (routes), the worker (activities, task queues) and the
 * tests read this registry instead of naming kinds; a kind's workflow is also exported from
 * `src/workflows/index.ts`, which Temporal bundles (a test checks that the two lists agree).
 */
import type { JobKind } from '../jobs/model.js';
import { aiRegistration } from './ai/index.js';
import type { KindTaskQueue } from './declaration.js';
import { probeRegistration } from './probe/index.js';
import type { JobKindRegistration } from './registration.js';
import { vlogRegistration } from './vlog/index.js';

export const jobKindRegistry = [
  probeRegistration,
  vlogRegistration,
  aiRegistration,
] as const satisfies readonly JobKindRegistration[];

/** The kinds whose work runs on `queue`: a worker polls a queue only if some kind uses it. */
export function kindsUsingTaskQueue(queue: KindTaskQueue): JobKind[] {
  return jobKindRegistry
    .filter(({ declaration }) =>
      (declaration.taskQueues as readonly KindTaskQueue[]).includes(queue),
    )
    .map(({ declaration }) => declaration.kind);
}
