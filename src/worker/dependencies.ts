import type { ActivityDependencies } from '../activities/index.js';
import { resolveJwtSecret } from '../auth.js';
import { mediaProcessLimits, type Config } from '../config.js';
import type { Db } from '../db/database.js';
import { findMediaTools } from '../media/tools.js';
import { createProviders } from '../providers/index.js';
import { createMediaStorage } from '../storage/index.js';

/** The real dependencies the worker hands to the activities. */
export async function createActivityDependencies(
  config: Config,
  db: Db,
): Promise<ActivityDependencies> {
  const mediaStorage = createMediaStorage(config, await resolveJwtSecret(config));
  const mediaTools = await findMediaTools(mediaProcessLimits(config));
  return {
    db,
    mediaStorage,
    providers: createProviders(config, { mediaStorage, mediaTools }),
    mediaTools,
    gcsApiEndpoint: config.GCS_API_ENDPOINT,
  };
}
