import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Db } from '../../db/database.js';
import { findOwnedJob } from '../../db/jobs.js';
import type { JobRow } from '../../db/schema.js';
import { jobNotFound } from '../errors.js';
import { getJobSchema, listJobsSchema, type JobView, type ListedKind } from '../schemas/jobs.js';
import { listJobsPage } from '../services/job-list.js';
import { toJobView } from '../services/job-views.js';

/** Reading jobs of every kind, always scoped to the caller. */
export function jobRoutes(
  db: Db,
  /** The registered kinds, whose names, job types and statuses the list filters by. */
  kinds: readonly ListedKind[],
): FastifyPluginAsyncZod {
  const listJobs = listJobsSchema(kinds);
  const publicFields = new Map(kinds.map(({ kind, publicFields }) => [kind, publicFields]));
  const view = (row: JobRow): JobView => {
    const shown = publicFields.get(row.kind);
    return { ...toJobView(row), ...shown?.({ input: row.input, result: row.result }) };
  };
  return async (app) => {
    app.get('/jobs/:id', { schema: getJobSchema, config: { jobView: true } }, async (request) => {
      const row = await findOwnedJob(db, request.userId, request.params.id);
      if (!row) throw jobNotFound('job', request.params.id);
      return view(row);
    });

    app.get('/jobs', { schema: listJobs, config: { jobList: 'jobs' } }, async (request) => {
      const page = await listJobsPage(db, request.userId, request.query);
      return { jobs: page.rows.map(view), nextCursor: page.nextCursor };
    });
  };
}
