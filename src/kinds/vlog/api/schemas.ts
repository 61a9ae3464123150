import { z } from 'zod';
import type { JobStatus } from '../../../jobs/model.js';
import { errorBodySchema } from '../../../api/errors.js';
import {
  commonErrors,
  concurrencyKeySchema,
  idempotencyKeySchema,
  idParams,
  liveQuerySchema,
  optionalWrittenText,
  writtenText,
} from '../../../api/schemas/common.js';
import { jobViewSchema, listQuerySchema, liveViewSchema } from '../../../api/schemas/jobs.js';
import { acceptedMediaTypes, mediaExtensionKinds } from '../upload-rules.js';

export const vlogStatuses = [
  'pending',
  'queued',
  'analyzing',
  'generating',
  'transferring',
  'completed',
  'failed',
  'cancelled',
  // A vlog never times out itself (its deadline fails it), but one whose workflow ran past a
  // timeout set in Temporal is ended so by the job reconciler (WORKFLOW_TIMED_OUT).
  'timeout',
] as const satisfies readonly JobStatus[];

export const vlogFieldsSchema = z.strictObject({
  title: writtenText(200),
  // Left empty in a form, or blank to a reader: none.
  prompt: optionalWrittenText(2_000),
  style: optionalWrittenText(200),
  aspectRatio: z.enum(['16:9', '9:16']).default('16:9'),
  durationSeconds: z
    .enum(['4', '6', '8'], { error: 'must be 4, 6 or 8' })
    .default('8')
    .transform(Number),
  concurrencyKey: concurrencyKeySchema,
});

export const vlogViewSchema = jobViewSchema
  .omit({ input: true, result: true })
  .extend({
    status: z.enum(vlogStatuses),
    title: z.string(),
    aspectRatio: z.string(),
    media: z.array(z.object({ name: z.string(), contentType: z.string(), size: z.number() })),
    videoUrl: z.string().nullable().describe('Where the finished video plays (expires)'),
    shareUrl: z.string().nullable().describe('A longer-lived link to share the video'),
    thumbnailUrl: z.string().nullable(),
    durationSeconds: z.number().nullable(),
    mediaDeletedAt: z.iso
      .datetime()
      .nullable()
      .describe(
        'When the uploads and the video were deleted, MEDIA_RETENTION_MS after the vlog ended; the links are null from then on',
      ),
    live: liveViewSchema,
  })
  .describe('Vlog');

export type VlogView = z.infer<typeof vlogViewSchema>;

export function createVlogSchema(maxFiles: number) {
  return {
    operationId: 'createVlog',
    tags: ['vlogs'],
    summary: 'Create a vlog from uploaded photos and clips',
    description:
      'multipart/form-data: one or more `media` files (images or videos, checked by content) and the fields ' +
      'title (required), prompt, style, aspectRatio (16:9 | 9:16), durationSeconds (4 | 6 | 8), concurrencyKey. ' +
      'Files stream to storage as they arrive; each field is checked as it arrives, so send the fields first and a bad one is refused before any file is read. ' +
      'One API process reads at most VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER (3) uploads of one user at once (429 TOO_MANY_UPLOADS above, before the body is read). ' +
      'Send an Idempotency-Key to make the request safe to repeat.',
    headers: z.object({ 'idempotency-key': idempotencyKeySchema }).passthrough(),
    multipartForm: vlogFieldsSchema.extend({
      media: z.array(z.file()).min(1).max(maxFiles).describe('Photos and clips'),
    }),
    response: {
      202: vlogViewSchema,
      ...commonErrors,
      /** BUDGET_EXCEEDED: the estimate is more than what is left of a budget. */
      402: errorBodySchema,
      /** IDEMPOTENCY_KEY_IN_USE: an earlier request with this key is still being accepted. */
      409: errorBodySchema,
      413: errorBodySchema,
      415: errorBodySchema,
      422: errorBodySchema,
      503: errorBodySchema,
    },
  };
}

export const getVlogSchema = {
  operationId: 'getVlog',
  tags: ['vlogs'],
  summary: "A vlog's status, progress and, when done, its video",
  params: idParams,
  querystring: liveQuerySchema(
    'Also ask the workflow for its live progress (slower; for operators and debugging)',
  ),
  response: { 200: vlogViewSchema, ...commonErrors },
};

export const listVlogsSchema = {
  operationId: 'listVlogs',
  tags: ['vlogs'],
  summary: "The caller's vlogs, newest first",
  querystring: listQuerySchema({ status: z.enum(vlogStatuses).optional() }),
  response: {
    200: z.object({ vlogs: z.array(vlogViewSchema), nextCursor: z.string().nullable() }),
    ...commonErrors,
  },
};

export const vlogActionDocs = {
  cancel: {
    operationId: 'cancelVlog',
    summary: 'Cancel a vlog in progress',
    description:
      'The running step stops, what it half-made is removed, and the vlog ends `cancelled`.',
  },
  retry: {
    operationId: 'retryVlog',
    summary: 'Retry a failed vlog (at most 3 times)',
    description:
      'The vlog keeps its id and URL; finished steps (analysis, a generated video) are reused.',
  },
};

const mediaKindSchema = z.enum(['image', 'video']);

export const uploadLimitsViewSchema = z
  .object({
    maxFiles: z.number().int().describe('Most files in one vlog (VLOG_MAX_FILES)'),
    maxFileBytes: z.number().int().describe('Largest file in bytes (VLOG_MAX_FILE_BYTES)'),
    maxVideoSeconds: z.number().int().describe('Longest clip in seconds (VLOG_MAX_VIDEO_SECONDS)'),
    maxVideoSide: z
      .number()
      .int()
      .describe("Most pixels on a clip's longest side (VLOG_MAX_VIDEO_SIDE)"),
    maxImagePixels: z.number().int().describe('Most pixels in a photo (VLOG_MAX_IMAGE_PIXELS)'),
    mediaTypes: z
      .record(z.string(), mediaKindSchema)
      .describe('The content types accepted, each an image or a video (decided by the bytes)'),
    extensions: z
      .record(z.string(), mediaKindSchema)
      .describe(
        'File name extensions that name a kind: a file whose content is the other kind is refused',
      ),
  })
  .describe('UploadLimits');

export type UploadLimitsView = z.infer<typeof uploadLimitsViewSchema>;

export const uploadLimitsSchema = {
  operationId: 'getVlogUploadLimits',
  tags: ['vlogs'],
  summary: 'What a vlog upload may hold: the limits and types its files are checked against',
  description:
    "The same limits `POST /api/vlogs` enforces, from this service's configuration, so a client can check files before it sends them.",
  response: { 200: uploadLimitsViewSchema, ...commonErrors },
};

/** The limits as the upload limits route answers them. */
export function uploadLimitsView(limits: Omit<UploadLimitsView, 'mediaTypes' | 'extensions'>) {
  return { ...limits, mediaTypes: acceptedMediaTypes, extensions: mediaExtensionKinds };
}
