import { z } from 'zod';
import type { JobRow } from '../../db/schema.js';
import type { JobProgress } from '../../jobs/messages.js';

export const jobViewSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    type: z.string(),
    status: z.string(),
    progress: z.number().int().min(0).max(100),
    phase: z.string().nullable(),
    attempt: z.number().int(),
    input: z.unknown(),
    result: z.unknown(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    workflowId: z.string().describe('Find the job in the Temporal Web UI by this id'),
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().nullable(),
    completedAt: z.iso.datetime().nullable(),
    updatedAt: z.iso.datetime(),
    links: z.object({ self: z.string() }),
  })
  .describe('Job');

export type JobView = z.infer<typeof jobViewSchema>;

export function jobUrl(id: string): string {
  return `/api/jobs/${encodeURIComponent(id)}`;
}

export function toJobView(row: JobRow): JobView {
  return {
    id: row.id,
    kind: row.kind,
    type: row.type,
    status: row.status,
    progress: row.progress,
    phase: row.phase,
    attempt: row.attempt,
    input: row.input,
    result: row.result,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    workflowId: row.workflow_id,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    completedAt: row.completed_at?.toISOString() ?? null,
    updatedAt: row.updated_at.toISOString(),
    links: { self: jobUrl(row.id) },
  };
}

export const liveViewSchema = z
  .object({
    status: z.string(),
    progress: z.number(),
    phase: z.string().nullable(),
    seq: z.number(),
  })
  .nullable()
  .optional()
  .describe("With ?live=true: the workflow's own answer, bypassing the database");

/** The `live` field of a view: absent unless asked for, null when the workflow did not answer. */
export function liveView(live: JobProgress | null | undefined): {
  live?: z.infer<typeof liveViewSchema>;
} {
  if (live === undefined) return {};
  return {
    live: live
      ? { status: live.status, progress: live.progress, phase: live.phase, seq: live.seq }
      : null,
  };
}
