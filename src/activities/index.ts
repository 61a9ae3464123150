import type { Db } from '../db/database.js';
import type { MediaTools } from '../media/tools.js';
import type { Providers } from '../providers/index.js';
import type { MediaStorage } from '../storage/object-storage.js';
import { createAiGenerationActivities } from './ai-generation.js';
import { createJobProjectionActivities } from './job-projection.js';
import { createMediaInspectionActivities } from './media-inspection.js';
import { createMediaRetentionActivities } from './media-retention.js';
import { createVlogActivities } from './vlog/index.js';

export interface ActivityDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
  mediaTools: MediaTools | null;
  /** Cloud Storage endpoint override (an emulator), for reading generated videos. */
  gcsApiEndpoint?: string | undefined;
}

/** Every activity the worker registers, built from the dependencies the worker wires. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createJobProjectionActivities(deps),
    ...createVlogActivities(deps),
    ...createAiGenerationActivities(deps),
    ...createMediaRetentionActivities(deps),
    ...createMediaInspectionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
