/**
 * Every job kind, one line each. The API (routes), the worker (activities, task queues) and the
 * tests read this registry instead of naming kinds; a kind's workflow is also exported from
 * `src/workflows/index.ts`, which Temporal bundles (a test checks that the two lists agree).
 */
import { taskQueueDomains, type TaskQueueDomain } from '../capacity/task-queues.js';
import { aiRegistration } from './ai/index.js';
import { probeRegistration } from './probe/index.js';
import type { JobKindRegistration } from './registration.js';
import { vlogRegistration } from './vlog/index.js';

export const jobKindRegistry = [
  probeRegistration,
  vlogRegistration,
  aiRegistration,
] as const satisfies readonly JobKindRegistration[];

/**
 * The domains some work runs on, in map order: the workflows, storage (the media sweep) and
 * upload inspection always, and whatever a registered kind declares. A worker polls no other.
 */
export function taskQueueDomainsInUse(): TaskQueueDomain[] {
  const used = new Set<TaskQueueDomain>(['workflows', 'storage', 'inspection']);
  for (const { declaration } of jobKindRegistry)
    for (const domain of declaration.taskQueues) used.add(domain);
  return taskQueueDomains.filter((domain) => used.has(domain));
}
