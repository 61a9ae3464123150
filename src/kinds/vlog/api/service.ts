import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../../config.js';
import { jobRunSettings } from '../../registration.js';
import type { Db } from '../../../db/database.js';
import { findJobIdByIdempotencyKey, findOwnedJob } from '../../../db/jobs.js';
import type { JobRow } from '../../../db/schema.js';
import {
  claimUploadBatch,
  forgetUploadBatch,
  recordUploadBatch,
} from '../../../db/upload-batches.js';
import type { JobProgress } from '../../../jobs/contracts.js';
import { taskQueueNames } from '../../../capacity/task-queues.js';
import {
  costedModels,
  missingVlogProviderSettings,
  selectVlogProvider,
} from '../../../providers/index.js';
import { estimateVlog } from '../../../costs/estimates.js';
import { PriceBook } from '../../../costs/prices.js';
import { budgetDefaults, refuseOverBudget } from '../../../api/services/budgets.js';
import type { MediaStorage } from '../../../storage/object-storage.js';
import type { TemporalAccess } from '../../../temporal-client.js';
import {
  ApiError,
  jobNotFound,
  refuseIfClientLeft,
  schemaIssues,
  unsupportedBodyTypeError,
  validationFailed,
} from '../../../api/errors.js';
import type { ListQuery } from '../../../api/schemas/jobs.js';
import { listJobsPage } from '../../../api/services/job-list.js';
import {
  findReplay,
  refuseOwnerAtJobCap,
  requestFingerprint,
  type StartJob,
} from '../../../api/services/job-starter.js';
import { liveView, toJobView } from '../../../api/services/job-views.js';
import { mediaLimitInspector, mediaLimitsOf } from './media-limits.js';
import type { MediaWorkers } from '../../../api/services/media-workers.js';
import { vlogKind, type VlogInput, type VlogJobInput, type VlogResult } from '../declaration.js';
import { receiveUpload, type ReceivedUpload } from './media-upload.js';
import { UploadsInProgress } from './uploads-in-progress.js';
import { TurnsByUser } from '../../../api/services/turns-by-user.js';
import { uploadRefusals, type UploadLimits } from '../upload-rules.js';
import { vlogFieldsSchema, type VlogView } from './schemas.js';

export interface VlogServiceDependencies {
  config: Config;
  db: Db;
  mediaStorage: MediaStorage;
  temporal: TemporalAccess;
  /** The workers' ffmpeg on the media queue: the local provider cannot run without it. */
  mediaWorkers: MediaWorkers;
  /** The workers on the upload inspection queue, which read uploads with ffprobe. */
  inspectionWorkers: MediaWorkers;
  startJob: StartJob;
}

/** A vlog request: the job's input and the concurrency key it may carry. */
interface VlogRequest {
  input: VlogInput;
  concurrencyKey: string | null;
}

/** What makes two vlog requests the same: the fields and the media's content, not its names. */
function fingerprint({ input, concurrencyKey }: VlogRequest): string {
  const { media, ...fields } = input;
  return requestFingerprint({
    fields,
    media: media.map((item) => [item.sha256, item.contentType, item.size]),
    // Left out without a key, so a request replayed across the upgrade keeps its fingerprint.
    ...(concurrencyKey && { concurrencyKey }),
  });
}

/** The vlog a received upload asks for, or a 400 naming what is missing or wrong. */
function vlogRequestOf(upload: ReceivedUpload): VlogRequest {
  const fields = vlogFieldsSchema.safeParse(upload.fields);
  if (!fields.success) {
    const [first, ...rest] = fields.error.issues.flatMap((issue) => schemaIssues('body', issue));
    throw validationFailed([first!, ...rest]);
  }
  if (upload.media.length === 0) {
    throw new ApiError('NO_MEDIA', uploadRefusals.noMedia());
  }
  return {
    input: {
      title: fields.data.title,
      prompt: fields.data.prompt ?? null,
      style: fields.data.style ?? null,
      aspectRatio: fields.data.aspectRatio,
      durationSeconds: fields.data.durationSeconds,
      media: upload.media,
    },
    concurrencyKey: fields.data.concurrencyKey ?? null,
  };
}

/** Vlogs: made from uploaded photos and clips, read back with links to the finished video. */
export function createVlogService(deps: VlogServiceDependencies) {
  const { config, db, mediaStorage, mediaWorkers, startJob } = deps;
  const uploadLimits = {
    maxFiles: config.VLOG_MAX_FILES,
    maxFileBytes: config.VLOG_MAX_FILE_BYTES,
  };
  const mediaLimits = mediaLimitsOf(config);
  const prices = new PriceBook(config.COST_PRICES);
  const { vlogAnalysis, vlogVideo } = costedModels(config);
  const models = { analysis: vlogAnalysis, video: vlogVideo };
  /** The least a vlog can cost (no media, the shortest video, 4 s): the early check's bar. */
  const leastVlogCost = estimateVlog(prices, models, {
    images: 0,
    clips: 0,
    durationSeconds: 4,
  });

  async function refuseUnlessProviderReady(): Promise<void> {
    const provider = selectVlogProvider(config);
    const lackFfmpeg = provider === 'local' && (await mediaWorkers.lackFfmpeg());
    const missing = missingVlogProviderSettings(config, !lackFfmpeg);
    if (missing.length === 0) return;
    throw new ApiError(
      'VIDEO_PROVIDER_NOT_CONFIGURED',
      provider === 'local'
        ? 'Vlogs are unavailable: the local provider needs ffmpeg and ffprobe on the workers (on PATH, or installed by npm ci)'
        : `Vlogs are unavailable: the google provider is not configured (set ${missing.join(', ')})`,
      { provider, missing },
    );
  }

  function start(
    ownerId: string,
    request: VlogRequest,
    idempotencyKey: string | null,
    batchId: string,
  ) {
    const { input, concurrencyKey } = request;
    return startJob<VlogInput>({
      kind: vlogKind,
      type: vlogKind.jobTypes[0],
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
            ...jobRunSettings(config),
            ...(selectVlogProvider(config) === 'local' && {
              mediaTaskQueue: taskQueueNames(config.TEMPORAL_TASK_QUEUE).media,
            }),
          },
        },
      ],
      ownerId,
      input,
      concurrencyKey,
      idempotencyKey,
      requestFingerprint: idempotencyKey ? fingerprint(request) : null,
      estimatedCost: estimateVlog(prices, models, {
        images: input.media.filter((media) => media.kind === 'image').length,
        clips: input.media.filter((media) => media.kind === 'video').length,
        durationSeconds: input.durationSeconds,
      }),
      memo: { title: input.title },
      beforeStart: (jobId) => claimUploadBatch(db, batchId, jobId),
    });
  }

  /** The caller's vlog, or a 404 (another user's vlog is not theirs to know of). */
  async function findOwned(userId: string, id: string): Promise<JobRow> {
    const row = await findOwnedJob(db, userId, id);
    if (!row || row.kind !== vlogKind.kind) throw jobNotFound('vlog', id);
    return row;
  }

  async function view(row: JobRow, live?: JobProgress | null): Promise<VlogView> {
    const { input: _input, result: _result, ...job } = toJobView(row);
    const input = row.input as VlogInput;
    const result = row.result as VlogResult | null;
    const finished = row.status === 'completed' && result && !row.media_deleted_at;
    return {
      ...job,
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

  /** One inspection at a time for each user: a user's uploads cannot hold every slot. */
  const inspections = new TurnsByUser();

  return {
    uploadLimits,

    /** The uploads this API process is reading, held to VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER. */
    uploadsInProgress: new UploadsInProgress(config.VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER),

    /** Every limit an upload is held to, for clients that check files before sending them. */
    allUploadLimits: { ...uploadLimits, ...mediaLimits } satisfies UploadLimits,

    /**
     * Refuses an owner at the in-flight cap before a byte of the upload is read, instead of
     * after streaming gigabytes into storage. A repeat of a request that made a vlog
     * (`idempotencyKey`) is let through: it replays that vlog, as the exact check lets it.
     */
    async admit(ownerId: string, idempotencyKey: string | undefined): Promise<void> {
      if (
        idempotencyKey !== undefined &&
        (await findJobIdByIdempotencyKey(db, ownerId, idempotencyKey)) !== undefined
      ) {
        return;
      }
      await refuseOwnerAtJobCap(db, ownerId, config.USER_MAX_JOBS_IN_FLIGHT);
      await refuseOverBudget(db, ownerId, leastVlogCost, budgetDefaults(config));
    },

    /**
     * Streams the upload into storage, checks it, and starts the vlog. The upload is deleted
     * again when the request is refused, and when it replays an earlier request's key. What
     * the files hold is inspected last, once the form is whole and its key is not an earlier
     * request's: a refusal the form or the key decides starts no inspection.
     */
    async submit(
      request: FastifyRequest,
      idempotencyKey: string | null,
    ): Promise<{ view: VlogView; replayed: boolean }> {
      await refuseUnlessProviderReady();
      if (!request.isMultipart()) {
        throw unsupportedBodyTypeError(request.headers['content-type'], 'multipart/form-data');
      }
      // Recorded before the first file is stored: should this process die before the upload is
      // a job's or deleted, the media sweep finds its folder (UPLOAD_ORPHAN_AGE_MS).
      const batchId = randomUUID();
      await recordUploadBatch(db, { batchId, ownerId: request.userId });
      const forgetBatch = () =>
        forgetUploadBatch(db, batchId).catch((error: unknown) => {
          request.log.warn({ err: error, batchId }, 'upload left for the media sweep to forget');
        });
      let upload: ReceivedUpload;
      try {
        upload = await receiveUpload(
          request,
          mediaStorage,
          uploadLimits,
          // The text fields of the form, each checked as it arrives; its files come under `media`.
          vlogFieldsSchema.shape,
          batchId,
        );
      } catch (error) {
        await forgetBatch();
        throw error;
      }
      try {
        const vlogRequest = vlogRequestOf(upload);
        const earlier = idempotencyKey
          ? await findReplay(
              db,
              { kind: vlogKind.kind, ownerId: request.userId, idempotencyKey },
              fingerprint(vlogRequest),
            )
          : null;
        if (earlier) {
          await upload.discard();
          await forgetBatch();
          return { view: await view(earlier.row), replayed: true };
        }
        const inspect = mediaLimitInspector(
          {
            temporal: deps.temporal.client,
            taskQueue: config.TEMPORAL_TASK_QUEUE,
            workers: deps.inspectionWorkers,
            limits: mediaLimits,
          },
          request.log,
        );
        await inspections.run(request.userId, () => {
          refuseIfClientLeft(request);
          return inspect(batchId, upload.media);
        });
        refuseIfClientLeft(request);
        const started = await start(request.userId, vlogRequest, idempotencyKey, batchId);
        if (started.replayed) await upload.discard();
        await forgetBatch();
        return { view: await view(started.row), replayed: started.replayed };
      } catch (error) {
        await upload.discard();
        await forgetBatch();
        throw error;
      }
    },

    view,

    findOwned,

    async list(userId: string, query: Omit<ListQuery, 'kind' | 'type'>) {
      const page = await listJobsPage(db, userId, { ...query, kind: vlogKind.kind });
      return {
        vlogs: await Promise.all(page.rows.map((row) => view(row))),
        nextCursor: page.nextCursor,
      };
    },
  };
}

export type VlogService = ReturnType<typeof createVlogService>;
