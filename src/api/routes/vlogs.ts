import fastifyMultipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { providerRetrySettings, type Config } from '../../config.js';
import type { Db } from '../../db/database.js';
import type { JobRow } from '../../db/schema.js';
import type { JobProgress, VlogInput, VlogJobInput, VlogResult } from '../../jobs/messages.js';
import { findOwnedJob } from '../../jobs/repository.js';
import { mediaTaskQueueOf } from '../../media/processes.js';
import type { MediaTools } from '../../media/tools.js';
import { missingVlogProviderSettings, selectVlogProvider } from '../../providers/index.js';
import type { MediaStorage } from '../../storage/object-storage.js';
import { ApiError, errorBodySchema } from '../errors.js';
import { jobActionRoutes, type JobActions } from '../services/job-actions.js';
import type { JobEventFeed } from '../services/job-event-feed.js';
import { jobEventRoutes } from './job-event-stream.js';
import { refuseOwnerAtJobCap, requestFingerprint, type StartJob } from '../services/job-starter.js';
import { jobViewSchema, liveView, liveViewSchema, toJobView } from '../services/job-views.js';
import { mediaLimitInspector, mediaLimitsOf } from '../services/media-limits.js';
import { receiveUpload } from '../services/media-upload.js';
import { commonErrors, idempotencyKeySchema, idParams } from '../schemas/common.js';
import { listJobsPage, listQuerySchema } from './jobs.js';

export const vlogStatuses = [
  'pending',
  'analyzing',
  'generating',
  'transferring',
  'completed',
  'failed',
  'cancelled',
] as const;

const vlogFieldsSchema = z.strictObject({
  title: z.string().trim().min(1).max(200),
  prompt: z.string().trim().max(2_000).optional(),
  style: z.string().trim().max(200).optional(),
  aspectRatio: z.enum(['16:9', '9:16']).default('16:9'),
  durationSeconds: z
    .enum(['4', '6', '8'], { error: 'must be 4, 6 or 8' })
    .default('8')
    .transform(Number),
});

const vlogViewSchema = jobViewSchema
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

type VlogView = z.infer<typeof vlogViewSchema>;

export interface VlogRouteDependencies {
  config: Config;
  db: Db;
  mediaStorage: MediaStorage;
  /** The ffmpeg this machine has; the local provider cannot run without it. */
  mediaTools: MediaTools | null;
  startJob: StartJob;
  actions: JobActions;
  events: JobEventFeed;
}

/** What makes two vlog requests the same: the fields and the media's content, not its names. */
function fingerprint(input: VlogInput): string {
  const { media, ...fields } = input;
  return requestFingerprint({
    fields,
    media: media.map((item) => [item.sha256, item.contentType, item.size]),
  });
}

export function vlogRoutes(deps: VlogRouteDependencies): FastifyPluginAsyncZod {
  const { config, db, mediaStorage, mediaTools, startJob, actions } = deps;
  const limits = { maxFiles: config.VLOG_MAX_FILES, maxFileBytes: config.VLOG_MAX_FILE_BYTES };
  const mediaLimits = mediaLimitsOf(config);

  async function toVlogView(row: JobRow, live?: JobProgress | null): Promise<VlogView> {
    const { input: _input, result: _result, ...view } = toJobView(row);
    const input = row.input as VlogInput;
    const result = row.result as VlogResult | null;
    const finished = row.status === 'completed' && result && !row.media_deleted_at;
    return {
      ...view,
      links: { self: `/api/vlogs/${encodeURIComponent(row.id)}` },
      status: row.status as VlogView['status'],
      title: input.title,
      aspectRatio: input.aspectRatio,
      media: input.media.map(({ name, contentType, size }) => ({ name, contentType, size })),
      videoUrl: finished
        ? await mediaStorage.url(result.videoKey, config.MEDIA_URL_TTL_SECONDS)
        : null,
      shareUrl: finished
        ? await mediaStorage.url(result.videoKey, config.SHARE_URL_TTL_SECONDS)
        : null,
      thumbnailUrl:
        finished && result.thumbnailKey
          ? await mediaStorage.url(result.thumbnailKey, config.MEDIA_URL_TTL_SECONDS)
          : null,
      durationSeconds: row.status === 'completed' && result ? result.durationSeconds : null,
      mediaDeletedAt: row.media_deleted_at?.toISOString() ?? null,
      ...liveView(live),
    };
  }

  async function ownedVlog(userId: string, id: string): Promise<JobRow> {
    const row = await findOwnedJob(db, userId, id);
    if (!row || row.kind !== 'vlog') throw new ApiError('NOT_FOUND', `No vlog with id ${id}`);
    return row;
  }

  return async (app) => {
    await app.register(fastifyMultipart, {
      limits: {
        files: limits.maxFiles,
        fileSize: limits.maxFileBytes,
        fields: 10,
        fieldSize: 16 * 1024,
        parts: limits.maxFiles + 10,
        headerPairs: 100,
      },
    });

    app.post(
      '/vlogs',
      {
        // Before a byte of the upload is read (the rate limit ran just before): a user at the
        // cap is refused at once instead of after streaming gigabytes into storage.
        onRequest: async (request) => {
          await refuseOwnerAtJobCap(db, request.userId, config.USER_MAX_JOBS_IN_FLIGHT);
        },
        schema: {
          tags: ['vlogs'],
          summary: 'Create a vlog from uploaded photos and clips',
          description:
            'multipart/form-data: one or more `media` files (images or videos, checked by content) and the fields ' +
            'title (required), prompt, style, aspectRatio (16:9 | 9:16), durationSeconds (4 | 6 | 8). ' +
            'Files stream to storage as they arrive. Send an Idempotency-Key to make the request safe to repeat.',
          headers: z.object({ 'idempotency-key': idempotencyKeySchema }).passthrough(),
          multipartForm: vlogFieldsSchema.extend({
            media: z.array(z.file()).min(1).max(limits.maxFiles).describe('Photos and clips'),
          }),
          response: {
            202: vlogViewSchema,
            ...commonErrors,
            413: errorBodySchema,
            415: errorBodySchema,
            422: errorBodySchema,
            503: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        const missing = missingVlogProviderSettings(config, mediaTools);
        if (missing.length > 0) {
          const provider = selectVlogProvider(config);
          throw new ApiError(
            'VIDEO_PROVIDER_NOT_CONFIGURED',
            provider === 'local'
              ? 'Vlogs are unavailable: the local provider needs ffmpeg and ffprobe (on PATH, or installed by npm ci)'
              : `Vlogs are unavailable: the google provider is not configured (set ${missing.join(', ')})`,
            { provider, missing },
          );
        }
        if (!request.isMultipart()) {
          throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'The request must be multipart/form-data');
        }
        const upload = await receiveUpload(
          request,
          mediaStorage,
          limits,
          mediaTools ? mediaLimitInspector(mediaTools, mediaLimits, request.log) : undefined,
        );
        try {
          const fields = vlogFieldsSchema.safeParse(upload.fields);
          if (!fields.success) {
            const issues = fields.error.issues.map((issue) => ({
              field: ['body', ...issue.path].join('.') || 'body',
              message: issue.message,
            }));
            throw new ApiError(
              'VALIDATION_FAILED',
              issues.map((issue) => `${issue.field}: ${issue.message}`).join('; '),
              { issues },
            );
          }
          if (upload.media.length === 0) {
            throw new ApiError('NO_MEDIA', 'media: at least one image or video file is required');
          }
          const input: VlogInput = {
            title: fields.data.title,
            prompt: fields.data.prompt ?? null,
            style: fields.data.style ?? null,
            aspectRatio: fields.data.aspectRatio,
            durationSeconds: fields.data.durationSeconds,
            media: upload.media,
          };
          const idempotencyKey = request.headers['idempotency-key'] ?? null;
          const started = await startJob<VlogInput>({
            kind: 'vlog',
            type: 'VLOG',
            workflowType: 'vlogJob',
            workflowArgs: (job): [VlogJobInput] => [
              {
                job,
                attempt: 1,
                seq: 0,
                carried: { analysis: null, generation: null },
                settings: {
                  deadlineMs: config.VLOG_DEADLINE_MS,
                  pollIntervalMs: config.VIDEO_POLL_INTERVAL_MS,
                  retryWindowMs: config.JOB_RETRY_WINDOW_MS,
                  providerRetry: providerRetrySettings(config),
                  ...(selectVlogProvider(config) === 'local' && {
                    mediaTaskQueue: mediaTaskQueueOf(config.TEMPORAL_TASK_QUEUE),
                  }),
                },
              },
            ],
            ownerId: request.userId,
            input,
            idempotencyKey,
            requestFingerprint: idempotencyKey ? fingerprint(input) : null,
            summary: `Vlog "${input.title}": ${input.media.length} files, ${input.durationSeconds}s ${input.aspectRatio}`,
            memo: { title: input.title },
          });
          if (started.replayed) await upload.discard();
          const view = await toVlogView(started.row);
          return reply
            .code(202)
            .header('location', view.links.self)
            .header('idempotent-replayed', String(started.replayed))
            .send(view);
        } catch (error) {
          await upload.discard();
          throw error;
        }
      },
    );

    app.get(
      '/vlogs/:id',
      {
        schema: {
          tags: ['vlogs'],
          summary: "A vlog's status, progress and, when done, its video",
          params: idParams,
          querystring: z.strictObject({
            live: z
              .enum(['true', 'false'])
              .default('false')
              .describe(
                'Also ask the workflow for its live progress (slower; for operators and debugging)',
              ),
          }),
          response: { 200: vlogViewSchema, ...commonErrors },
        },
      },
      async (request) => {
        request.log = request.log.child({ jobId: request.params.id });
        const row = await ownedVlog(request.userId, request.params.id);
        if (request.query.live !== 'true') return toVlogView(row);
        const live = await actions.live(row, request.log);
        return toVlogView(row, live);
      },
    );

    app.get(
      '/vlogs',
      {
        schema: {
          tags: ['vlogs'],
          summary: "The caller's vlogs, newest first",
          querystring: listQuerySchema
            .omit({ kind: true, type: true })
            .extend({ status: z.enum(vlogStatuses).optional() }),
          response: {
            200: z.object({ vlogs: z.array(vlogViewSchema), nextCursor: z.string().nullable() }),
            ...commonErrors,
          },
        },
      },
      async (request) => {
        const page = await listJobsPage(db, request.userId, { ...request.query, kind: 'vlog' });
        return {
          vlogs: await Promise.all(page.rows.map((row) => toVlogView(row))),
          nextCursor: page.nextCursor,
        };
      },
    );

    await app.register(
      jobActionRoutes({
        path: '/vlogs',
        tag: 'vlogs',
        noun: 'vlog',
        findOwned: ownedVlog,
        actions,
        docs: {
          cancel: {
            summary: 'Cancel a vlog in progress',
            description:
              'The running step stops, what it half-made is removed, and the vlog ends `cancelled`.',
          },
          retry: {
            summary: 'Retry a failed vlog (at most 3 times)',
            description:
              'The vlog keeps its id and URL; finished steps (analysis, a generated video) are reused.',
          },
        },
      }),
    );
    await app.register(
      jobEventRoutes({
        path: '/vlogs',
        tag: 'vlogs',
        noun: 'vlog',
        findOwned: ownedVlog,
        view: (row) => toVlogView(row),
        feed: deps.events,
      }),
    );
  };
}
