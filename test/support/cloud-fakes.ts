import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CreateBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { loadConfig, type Config } from '../../src/config.js';
import type { Db } from '../../src/db/database.js';
import { parseGcsUri } from '../../src/storage/gcs-storage.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { testJwtSecret } from './harness.js';
import { startFakeGcs, startMoto, type Emulator } from './emulators.js';

export const generationBucket = 'veo-output';
export const mediaBucket = 'media';

/**
 * Everything a vlog needs outside the service, faked at the protocol level: Gemini and Vertex
 * (FakeGoogle), Cloud Storage (fake-gcs-server) and R2 (moto's S3), wired through the same
 * environment variables production uses.
 */
export class CloudFakes {
  google!: FakeGoogle;
  gcs!: Emulator;
  s3!: Awaited<ReturnType<typeof startMoto>>;
  gcsClient!: Storage;
  s3Client!: S3Client;
  env: Record<string, string> = {};

  static async start(): Promise<CloudFakes> {
    const fakes = new CloudFakes();
    [fakes.gcs, fakes.s3] = await Promise.all([startFakeGcs([generationBucket]), startMoto()]);
    fakes.gcsClient = new Storage({
      apiEndpoint: fakes.gcs.endpoint,
      projectId: 'test-project',
    });
    fakes.google = new FakeGoogle(async (gcsUri, bytes) => {
      const { bucket, key } = parseGcsUri(gcsUri);
      await fakes.gcsClient
        .bucket(bucket)
        .file(key)
        .save(bytes, { contentType: 'video/mp4', resumable: false });
    });
    await fakes.google.start();
    fakes.s3Client = new S3Client({
      endpoint: fakes.s3.endpoint,
      region: 'auto',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await fakes.s3Client.send(new CreateBucketCommand({ Bucket: mediaBucket }));
    fakes.env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-fakes-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: fakes.google.url,
      VERTEX_PROJECT: 'test-project',
      VERTEX_LOCATION: 'us-central1',
      VERTEX_BASE_URL: fakes.google.url,
      VERTEX_ACCESS_TOKEN: 'test-token',
      VEO_OUTPUT_GCS_URI: `gs://${generationBucket}/generated/`,
      GCS_API_ENDPOINT: fakes.gcs.endpoint,
      STORAGE_BACKEND: 's3',
      S3_ENDPOINT: fakes.s3.endpoint,
      S3_BUCKET: mediaBucket,
      S3_ACCESS_KEY_ID: 'test',
      S3_SECRET_ACCESS_KEY: 'test',
      S3_FORCE_PATH_STYLE: 'true',
      VIDEO_POLL_INTERVAL_MS: '200',
      PROVIDER_RETRY_INITIAL_MS: '200',
      PROVIDER_RETRY_MAX_MS: '1000',
    };
    return fakes;
  }

  config(overrides: Record<string, string> = {}): Config {
    return loadConfig({ ...this.env, ...overrides });
  }

  /** Delay added to every part a worker of these fakes uploads, to make a transfer slow on purpose. */
  partDelayMs = 0;

  /** The real worker dependencies, with media storage whose part uploads honour `partDelayMs`. */
  async activityDependencies(db: Db) {
    const deps = await createActivityDependencies(this.config(), db);
    const storage = deps.mediaStorage;
    const uploadPart: typeof storage.uploadPart = async (...args) => {
      if (this.partDelayMs > 0) await delay(this.partDelayMs);
      return storage.uploadPart(...args);
    };
    return {
      ...deps,
      mediaStorage: Object.assign(Object.create(storage) as typeof storage, { uploadPart }),
    };
  }

  /** Keys in the media bucket under a prefix. */
  async mediaKeys(prefix: string): Promise<string[]> {
    const page = await this.s3Client.send(
      new ListObjectsV2Command({ Bucket: mediaBucket, Prefix: prefix }),
    );
    return (page.Contents ?? []).map((object) => object.Key ?? '');
  }

  async openMultipartUploads(prefix: string): Promise<number> {
    const page = await this.s3Client.send(
      new ListMultipartUploadsCommand({ Bucket: mediaBucket, Prefix: prefix }),
    );
    return page.Uploads?.length ?? 0;
  }

  async generatedKeys(prefix: string): Promise<string[]> {
    const [files] = await this.gcsClient.bucket(generationBucket).getFiles({ prefix });
    return files.map((file) => file.name);
  }

  async stop(): Promise<void> {
    await this.google.stop();
    await Promise.all([this.gcs.stop(), this.s3.stop()]);
    this.s3Client.destroy();
  }
}
