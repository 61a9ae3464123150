/**
 * Every job kind, one line each. The API, the worker and the tests read this registry instead
 * of naming kinds; a kind's workflow is also exported from `src/workflows/index.ts`, which
 * Temporal bundles (a test checks that the two lists agree).
 */
import { aiKind } from './ai/declaration.js';
import { probeRegistration } from './probe/index.js';
import type { JobKind } from '../jobs/model.js';
import type { KindTaskQueue } from './declaration.js';
import type { JobKindRegistration } from './registration.js';
import { vlogKind } from './vlog/declaration.js';

export const jobKindRegistry = [
  probeRegistration,
  { declaration: vlogKind },
  { declaration: aiKind },
] as const satisfies readonly JobKindRegistration[];

/** The kinds whose work runs on `queue`: a worker polls a queue only if some kind uses it. */
export function kindsUsingTaskQueue(queue: KindTaskQueue): JobKind[] {
  return jobKindRegistry
    .filter(({ declaration }) =>
      (declaration.taskQueues as readonly KindTaskQueue[]).includes(queue),
    )
    .map(({ declaration }) => declaration.kind);
}
