import type { Db } from '../db/database.js';
import { createJobProjectionActivities } from './job-projection.js';

export interface ActivityDependencies {
  db: Db;
}

/** Every activity the worker registers, built from the dependencies the worker wires. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createJobProjectionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
