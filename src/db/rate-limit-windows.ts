import { sql } from 'kysely';
import type { Db } from './database.js';

/**
 * Counts one request of `ownerId` in the fixed window starting at `windowStart`, in the
 * database so every API process shares the count, and returns the window's count. The first
 * request of a window drops the user's older windows.
 */
export async function countRequestInWindow(
  db: Db,
  ownerId: string,
  windowStart: Date,
): Promise<number> {
  const { requests } = await db
    .insertInto('rate_limit_windows')
    .values({ owner_id: ownerId, window_start: windowStart, requests: 1 })
    .onConflict((oc) =>
      oc
        .columns(['owner_id', 'window_start'])
        .doUpdateSet({ requests: sql<number>`rate_limit_windows.requests + 1` }),
    )
    .returning('requests')
    .executeTakeFirstOrThrow();
  if (requests === 1) {
    await db
      .deleteFrom('rate_limit_windows')
      .where('owner_id', '=', ownerId)
      .where('window_start', '<', windowStart)
      .execute();
  }
  return requests;
}
