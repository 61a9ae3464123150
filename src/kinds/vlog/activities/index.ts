// The vlog's activities, one module per stage; the names registered with the worker are the
// method names below, part of the durable contract with recorded histories.
import { createAnalyzeActivities } from './analyze.js';
import { createCleanupActivities } from './cleanup.js';
import type { VlogActivityDependencies } from './dependencies.js';
import { createDescribeActivities } from './describe.js';
import { createGenerateActivities } from './generate.js';
import { createTransferActivities } from './transfer.js';

export function createVlogActivities(deps: VlogActivityDependencies) {
  return {
    ...createAnalyzeActivities(deps),
    ...createGenerateActivities(deps),
    ...createTransferActivities(deps),
    ...createDescribeActivities(deps),
    ...createCleanupActivities(deps),
  };
}

export type VlogActivities = ReturnType<typeof createVlogActivities>;
