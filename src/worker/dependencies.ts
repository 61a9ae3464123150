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
