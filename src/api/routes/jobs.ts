import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/database.js';
import { findOwnedJob, listOwnedJobs, type JobCursor } from '../../jobs/repository.js';
import { ApiError, errorBodySchema } from '../errors.js';
import { jobViewSchema, toJobView } from '../services/job-views.js';
import { isStorableText } from '../plugins/storable-text.js';

const cursorSchema = z.object({
  createdAt: z.iso.datetime(),
  id: z.string().min(1).refine(isStorableText),
});

function encodeCursor(cursor: JobCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(value: string): JobCursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
  } catch {
    throw new ApiError('VALIDATION_FAILED', 'querystring.cursor: not a cursor this API returned', {
      issues: [{ field: 'querystring.cursor', message: 'not a cursor this API returned' }],
    });
  }
}

export const listQuerySchema = z.strictObject({
  kind: z.string().max(64).optional(),
  type: z.string().max(64).optional(),
  status: z.string().max(64).optional(),
  createdFrom: z.iso
    .datetime({ offset: true })
    .optional()
    .describe('Inclusive lower bound on createdAt'),
  createdTo: z.iso
    .datetime({ offset: true })
    .optional()
    .describe('Exclusive upper bound on createdAt'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(512).optional().describe('nextCursor of the previous page'),
});

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema };

export type ListQuery = z.infer<typeof listQuerySchema>;

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

/** Reading jobs of every kind, always scoped to the caller. */
export function jobRoutes(db: Db): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/jobs/:id',
      {
        schema: {
          tags: ['jobs'],
          summary: "A job's status, progress and result",
          params: z.object({ id: z.string().min(1).max(128) }),
          response: { 200: jobViewSchema, ...errors },
        },
      },
      async (request) => {
        request.log = request.log.child({ jobId: request.params.id });
        const row = await findOwnedJob(db, request.userId, request.params.id);
        if (!row) throw new ApiError('NOT_FOUND', `No job with id ${request.params.id}`);
        return toJobView(row);
      },
    );

    app.get(
      '/jobs',
      {
        schema: {
          tags: ['jobs'],
          summary: "The caller's jobs, newest first",
          querystring: listQuerySchema,
          response: {
            200: z.object({ jobs: z.array(jobViewSchema), nextCursor: z.string().nullable() }),
            ...errors,
          },
        },
      },
      async (request) => {
        const page = await listJobsPage(db, request.userId, request.query);
        return { jobs: page.rows.map(toJobView), nextCursor: page.nextCursor };
      },
    );
  };
}
