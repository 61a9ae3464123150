import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityDependencies } from '../activities/index.js';
import { resolveJwtSecret } from '../auth.js';
import { mediaProcessLimits, type Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { findMediaTools } from '../media/tools.js';
import type { EmbeddedModel } from '../providers/embedded-model.js';
import { meterProviders } from '../metrics/provider-metrics.js';
import { createProviders } from '../providers/index.js';
import { createMediaStorage } from '../storage/index.js';
import type { Tracing } from '../tracing/index.js';

/** The real dependencies the worker hands to the activities; with tracing, provider calls are spans. */
export async function createActivityDependencies(
  config: Config,
  db: Db,
  tracing?: Tracing | null,
): Promise<ActivityDependencies> {
  const mediaStorage = createMediaStorage(config, await resolveJwtSecret(config));
  const mediaTools = await findMediaTools(mediaProcessLimits(config));
  return {
    db,
    mediaStorage,
    providers: meterProviders(
      createProviders(config, { mediaStorage, mediaTools }),
      tracing?.traceProviderCall,
    ),
    mediaTools,
    gcsApiEndpoint: config.GCS_API_ENDPOINT,
  };
}

/**
 * Starts the embedded model now, when AI jobs use it, rather than in the first job: the first
 * start installs it. A model that cannot start leaves the rest of the service running; each
 * AI job then tries again and fails retryably, naming the cause.
 */
export async function startEmbeddedModel(
  embeddedModel: EmbeddedModel | null,
  logger: Logger,
): Promise<void> {
  if (!embeddedModel) return;
  logger.info(
    { model: embeddedModel.model },
    'starting the embedded model (installed into .local/embedded-model on first start)',
  );
  try {
    const { baseUrl, pid } = await embeddedModel.serving();
    logger.info({ model: embeddedModel.model, baseUrl, pid }, 'embedded model ready');
  } catch (error) {
    logger.warn(
      { err: error },
      'the embedded model did not start: AI jobs will fail until it does',
    );
  }
}

/** How long a render's folder goes untouched before a starting worker takes it as abandoned. */
export const abandonedRenderMs = 10 * 60_000;

/**
 * Removes the folders of local renders that nothing has written to for `abandonedRenderMs`: a
 * worker killed mid-render leaves its folder (the inputs and part of the video), which only a
 * retry of the same attempt on this machine would remove. A live render writes into its folder
 * as ffmpeg works, so another worker's on the same data folder is newer than that.
 */
export async function removeAbandonedRenders(
  workDir: string,
  logger: Logger,
  now = Date.now(),
): Promise<void> {
  const folders = await readdir(workDir, { withFileTypes: true }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  });
  for (const folder of folders.filter((entry) => entry.isDirectory())) {
    const dir = path.join(workDir, folder.name);
    const files = await readdir(dir);
    const written = await Promise.all(
      [dir, ...files.map((file) => path.join(dir, file))].map(async (entry) =>
        stat(entry).then(
          ({ mtimeMs }) => mtimeMs,
          () => 0,
        ),
      ),
    );
    const untouchedMs = now - Math.max(...written);
    if (untouchedMs < abandonedRenderMs) continue;
    await rm(dir, { recursive: true, force: true });
    logger.info(
      { folder: dir, untouchedSeconds: Math.round(untouchedMs / 1000) },
      'removed the folder of an abandoned render',
    );
  }
}
