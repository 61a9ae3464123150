import type { Db } from '../db/database.js';
import { jobKindRegistry } from '../kinds/index.js';
import type { ActivityFunction } from '../kinds/registration.js';
import type { MediaTools } from '../media/tools.js';
import type { Providers } from '../providers/index.js';
import type { MediaStorage } from '../storage/object-storage.js';
import type { Client } from '@temporalio/client';
import { createLedgerActivities, type ChargeHandoff } from './cost-ledger.js';
import { createJobProjectionActivities } from './job-projection.js';
import { createJobReconcilerActivities } from './job-reconciler.js';
import { createJobTurnActivities } from './job-turns.js';
import { createMediaInspectionActivities } from './media-inspection.js';
import { createMediaRetentionActivities } from './media-retention.js';

export interface ActivityDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
  mediaTools: MediaTools | null;
  /** How long ffprobe gets for each file of an upload's inspection (15 s; tests shorten it). */
  inspectionProbeTimeoutMs?: number | undefined;
  /** Cloud Storage endpoint override (an emulator), for reading generated videos. */
  gcsApiEndpoint?: string | undefined;
  /** A client of the worker's namespace, for the reconciler; the worker adds its own. */
  temporalClient?: Client | undefined;
  /**
   * Where a charge the database does not take in time is handed over (a workflow that writes
   * it later); the worker adds it. Absent: such a charge waits in the process.
   */
  chargeHandoff?: ChargeHandoff | undefined;
}

/**
 * The activities every kind shares (the projection, the concurrency-key line, the ledger's
 * deferred charges), the media sweep's, the upload inspection's and the reconciler's.
 */
function createSharedActivities(deps: ActivityDependencies) {
  return {
    ...createJobProjectionActivities(deps),
    ...createLedgerActivities(deps),
    ...createJobReconcilerActivities(deps),
    ...createJobTurnActivities(deps),
    ...createMediaRetentionActivities(deps),
    ...createMediaInspectionActivities(deps),
  };
}

/** What workflow code outside a kind calls: `proxyActivities<SharedActivities>`. */
export type SharedActivities = ReturnType<typeof createSharedActivities>;

/**
 * Every activity the worker registers: the shared ones and each registered kind's, built from
 * the dependencies the worker wires. An activity's name is its key, so two with one name would
 * silently replace each other: that is refused.
 */
export function createActivities(deps: ActivityDependencies): Record<string, ActivityFunction> {
  const activities: Record<string, ActivityFunction> = createSharedActivities(deps);
  for (const { declaration, activities: createKindActivities } of jobKindRegistry) {
    if (!createKindActivities) continue;
    for (const [name, activity] of Object.entries(createKindActivities(deps))) {
      if (name in activities) {
        throw new Error(`Activity ${name} of the ${declaration.kind} kind is registered twice`);
      }
      activities[name] = activity;
    }
  }
  return activities;
}
