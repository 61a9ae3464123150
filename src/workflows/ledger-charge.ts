import { proxyActivities } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type { DeferredCharge } from '../jobs/contracts.js';
import { databaseRetry } from './database-retry.js';

const { writeDeferredCharge } = proxyActivities<SharedActivities>({
  startToCloseTimeout: '15s',
  // However long the database stays away: the provider billed the call, the charge is owed.
  retry: databaseRetry,
});

/**
 * Writes a ledger charge that the database did not take while its provider call's activity ran
 * (src/activities/cost-ledger.ts), once the database is back. Started by that activity under
 * the charge's key, so Temporal keeps the charge whatever becomes of the worker that made it,
 * and the ledger's key makes every write of it one charge.
 */
export async function recordDeferredCharge(input: DeferredCharge): Promise<void> {
  await writeDeferredCharge(input);
}
