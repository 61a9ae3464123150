import { z } from 'zod';
import type { Db } from '../../db/database.js';
import { listOwnedJobs, type JobCursor } from '../../db/jobs.js';
import { validationFailed } from '../errors.js';
import { isStorableText } from '../plugins/storable-text.js';
import { instantText } from '../schemas/common.js';
import type { ListQuery } from '../schemas/jobs.js';

const cursorSchema = z.object({
  createdAt: instantText(),
  id: z.string().min(1).refine(isStorableText),
});

function encodeCursor(cursor: JobCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(value: string): JobCursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
  } catch {
    throw validationFailed([
      { field: 'querystring.cursor', message: 'not a cursor this API returned' },
    ]);
  }
}

/** One page of the caller's jobs, for every listing route. */
export async function listJobsPage(
  db: Db,
  ownerId: string,
  query: Partial<ListQuery> & { limit: number },
) {
  const { cursor, createdFrom, createdTo, ...filters } = query;
  const page = await listOwnedJobs(db, {
    ...filters,
    ownerId,
    createdFrom: createdFrom ? new Date(createdFrom) : undefined,
    createdTo: createdTo ? new Date(createdTo) : undefined,
    after: cursor ? decodeCursor(cursor) : undefined,
  });
  return { rows: page.jobs, nextCursor: page.next ? encodeCursor(page.next) : null };
}
