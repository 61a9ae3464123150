import type { Config } from '../config.js';
import { LocalMediaStorage } from './local-storage.js';
import type { MediaStorage } from './object-storage.js';
import { S3MediaStorage } from './s3-storage.js';

/**
 * The configured media storage: uploads and delivered videos. `linkSecret` signs the links the
 * local backend serves through the API.
 */
export function createMediaStorage(config: Config, linkSecret: string): MediaStorage {
  if (config.STORAGE_BACKEND === 's3') {
    return new S3MediaStorage({
      endpoint: config.S3_ENDPOINT!,
      region: config.S3_REGION,
      bucket: config.S3_BUCKET!,
      accessKeyId: config.S3_ACCESS_KEY_ID!,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY!,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      publicBaseUrl: config.S3_PUBLIC_BASE_URL,
    });
  }
  return new LocalMediaStorage(config.storageLocalDir, {
    publicUrl: config.apiPublicUrl,
    secret: linkSecret,
  });
}
