import type { Db } from './database.js';

/** The operation a provider accepted for an idempotency key, if one was recorded. */
export async function findProviderOperation(
  db: Db,
  idempotencyKey: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('provider_operations')
    .select('operation_name')
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
  return row?.operation_name;
}

/** Records the operation a provider accepted; the first record of a key wins. */
export async function recordProviderOperation(
  db: Db,
  operation: { idempotencyKey: string; jobId: string; operationName: string },
): Promise<void> {
  await db
    .insertInto('provider_operations')
    .values({
      idempotency_key: operation.idempotencyKey,
      job_id: operation.jobId,
      operation_name: operation.operationName,
    })
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();
}
