import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import {
  assertStorageKey,
  assertStoragePrefix,
  ObjectNotFoundError,
  type ByteRange,
  type ObjectStorage,
  type StoredObject,
} from './object-storage.js';

export interface GcsLocation {
  bucket: string;
  key: string;
}

export function parseGcsUri(uri: string): GcsLocation {
  const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match?.[1]) throw new Error(`Not a gs:// URI: ${uri}`);
  return { bucket: match[1], key: match[2] ?? '' };
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: number }).code === 404;
}

/** One Cloud Storage bucket: where Veo writes generated videos. */
export class GcsObjectStorage implements ObjectStorage {
  readonly location: string;
  private readonly storage: Storage;

  constructor(
    private readonly bucket: string,
    options: { apiEndpoint?: string | undefined; projectId?: string | undefined } = {},
  ) {
    this.location = `gs://${bucket}`;
    this.storage = new Storage({
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      ...(options.projectId ? { projectId: options.projectId } : {}),
    });
  }

  private file(key: string) {
    assertStorageKey(key);
    return this.storage.bucket(this.bucket).file(key);
  }

  async putStream(
    key: string,
    body: Readable,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ size: number }> {
    let size = 0;
    body.on('data', (chunk: Buffer) => (size += chunk.length));
    await pipeline(body, this.file(key).createWriteStream({ contentType, resumable: false }), {
      signal,
    });
    return { size };
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    if (!(await this.head(key))) throw new ObjectNotFoundError(key);
    return this.file(key).createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async head(key: string): Promise<StoredObject | null> {
    try {
      const [metadata] = await this.file(key).getMetadata();
      return { size: Number(metadata.size ?? 0), contentType: metadata.contentType };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.file(key)
      .delete()
      .catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
  }

  async list(prefix: string): Promise<string[]> {
    assertStoragePrefix(prefix);
    const [files] = await this.storage.bucket(this.bucket).getFiles({ prefix });
    return files.map((file) => file.name).sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (const key of keys) await this.delete(key);
    return keys.length;
  }
}
