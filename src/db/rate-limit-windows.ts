import { sql } from 'kysely';
import { asyncCommit, statementOnce, type Db } from './database.js';

/**
 * Counts one request of `ownerId` in the fixed window starting at `windowStart`, in the
 * database so every API process shares the count, and returns the window's count. The count
 * commits without waiting for the disk (asyncCommit): a database crash may forget the last
 * moment's requests, and a rate limit loses nothing by it.
 */
export async function countRequestInWindow(
  db: Db,
  ownerId: string,
  windowStart: Date,
): Promise<number> {
  const { rows } = await windowCount(db, { ownerId, windowStart });
  return rows[0]!.requests;
}

/**
 * Drops the counts of every user's windows that started before `windowStart`, which count
 * nothing any more. Without it the table kept a row for every user who ever submitted.
 */
export async function dropWindowsBefore(db: Db, windowStart: Date): Promise<void> {
  await db.deleteFrom('rate_limit_windows').where('window_start', '<', windowStart).execute();
}

/** countRequestInWindow's count, compiled once (statementOnce): every API request sends it. */
const windowCount = statementOnce<{ ownerId: string; windowStart: Date }, { requests: number }>(
  (db, p) =>
    db
      .insertInto('rate_limit_windows')
      .columns(['owner_id', 'window_start', 'requests'])
      .expression((eb) =>
        eb
          .selectFrom(asyncCommit.as('async_commit'))
          .select([
            sql<string>`${p('ownerId')}::text`.as('owner_id'),
            sql<Date>`${p('windowStart')}::timestamptz`.as('window_start'),
            sql.lit(1).as('requests'),
          ]),
      )
      .onConflict((oc) =>
        oc
          .columns(['owner_id', 'window_start'])
          .doUpdateSet({ requests: sql<number>`rate_limit_windows.requests + 1` }),
      )
      .returning('requests')
      .compile(),
);
