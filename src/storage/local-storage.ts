import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertStorageKey,
  assertStoragePrefix,
  ObjectNotFoundError,
  type ByteRange,
  type MediaStorage,
  type StoredObject,
  type UploadedPart,
} from './object-storage.js';
import { makeDirectory } from '../directories.js';

const multipartFolder = '.multipart';

function signature(secret: string, key: string, expires: number): string {
  return createHmac('sha256', `media-url:${secret}`)
    .update(`${key}\n${expires}`)
    .digest('base64url');
}

/** Checks a link made by LocalMediaStorage.url(). */
export function verifyMediaLink(
  secret: string,
  key: string,
  expires: number,
  given: string,
  now = Date.now(),
): boolean {
  if (!Number.isInteger(expires) || expires * 1000 < now) return false;
  const expected = Buffer.from(signature(secret, key, expires));
  const actual = Buffer.from(given);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * Media storage on the local filesystem, the embedded default. Objects are files under the
 * root; their content type sits beside them. Links point at the API's `/media` route, signed
 * so they expire like presigned URLs.
 */
export class LocalMediaStorage implements MediaStorage {
  readonly location: string;

  constructor(
    private readonly root: string,
    private readonly links: { publicUrl: string; secret: string },
  ) {
    this.location = `file://${root}`;
  }

  private file(key: string): string {
    assertStorageKey(key);
    return path.join(this.root, key);
  }

  private uploadDir(uploadId: string): string {
    if (!/^[a-f0-9-]+$/.test(uploadId)) throw new Error(`Invalid upload id: ${uploadId}`);
    return path.join(this.root, multipartFolder, uploadId);
  }

  private async writeAtomically(
    key: string,
    contentType: string,
    write: (temp: string) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<number> {
    const target = this.file(key);
    await makeDirectory(path.dirname(target));
    const temp = `${target}.${randomUUID()}.partial`;
    try {
      await write(temp);
      // The rename makes the object: an abort until then leaves none.
      signal?.throwIfAborted();
      await writeFile(`${target}.meta.json`, JSON.stringify({ contentType }));
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
    return (await stat(target)).size;
  }

  async putStream(
    key: string,
    body: Readable,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ size: number }> {
    const size = await this.writeAtomically(
      key,
      contentType,
      (temp) => pipeline(body, createWriteStream(temp), { signal }),
      signal,
    );
    return { size };
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    if (!(await this.head(key))) throw new ObjectNotFoundError(key);
    return createReadStream(this.file(key), range ? { start: range.start, end: range.end } : {});
  }

  async head(key: string): Promise<StoredObject | null> {
    try {
      const facts = await stat(this.file(key));
      // Objects are files: a folder a key made is not one.
      if (!facts.isFile()) return null;
      const { size } = facts;
      const meta = JSON.parse(
        await readFile(`${this.file(key)}.meta.json`, 'utf8').catch(() => '{}'),
      ) as {
        contentType?: string;
      };
      return { size, contentType: meta.contentType };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    // A folder other keys made is no object: deleting its name deletes nothing, as in a bucket.
    await rm(this.file(key), { force: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ERR_FS_EISDIR') throw error;
    });
    await rm(`${this.file(key)}.meta.json`, { force: true });
    await this.removeEmptyFolders(key, path.dirname(this.file(key)));
  }

  /**
   * An object store has no folders: the ones a key made go with its last object, from `dir` up
   * to (not including) its top-level folder, which writes of other jobs may be creating folders in.
   */
  private async removeEmptyFolders(key: string, dir: string): Promise<void> {
    const top = path.join(this.root, key.split('/')[0]!);
    for (; dir.startsWith(`${top}${path.sep}`); dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertStoragePrefix(prefix);
    const keys = await this.list(prefix);
    for (const key of keys) await this.delete(key);
    if (prefix.endsWith('/')) {
      // What writes cut short left (their partial files, by a process killed mid-write) and
      // the folders holding no object go too, deepest first.
      const dir = path.join(this.root, prefix.slice(0, -1));
      const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.isFile() && entry.name.endsWith('.partial')) {
          await rm(path.join(entry.parentPath, entry.name), { force: true });
        }
      }
      const nested = entries
        .filter((entry) => entry.isDirectory())
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort((a, b) => b.length - a.length);
      for (const folder of nested) await rmdir(folder).catch(() => undefined);
      await this.removeEmptyFolders(prefix.slice(0, -1), dir);
    }
    return keys.length;
  }

  /** A prefix ends at a `/` or matches the start of file names. */
  async list(prefix: string): Promise<string[]> {
    assertStoragePrefix(prefix);
    const dir = prefix.endsWith('/') ? prefix.slice(0, -1) : path.posix.dirname(prefix);
    const base = path.join(this.root, dir === '.' ? '' : dir);
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw error;
      },
    );
    // Objects are files: a folder (made by a key, or left by a write cut short) is none.
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(this.root, path.join(entry.parentPath, entry.name)))
      .map((file) => file.split(path.sep).join('/'))
      .filter(
        (key) =>
          key.startsWith(prefix) &&
          !key.endsWith('.meta.json') &&
          !key.endsWith('.partial') &&
          !key.startsWith(multipartFolder),
      )
      .sort();
  }

  async createMultipartUpload(key: string, contentType: string): Promise<string> {
    assertStorageKey(key);
    const uploadId = randomUUID();
    await makeDirectory(this.uploadDir(uploadId));
    await writeFile(
      path.join(this.uploadDir(uploadId), 'upload.json'),
      JSON.stringify({ key, contentType }),
    );
    return uploadId;
  }

  private async uploadMeta(uploadId: string): Promise<{ key: string; contentType: string }> {
    return JSON.parse(
      await readFile(path.join(this.uploadDir(uploadId), 'upload.json'), 'utf8'),
    ) as {
      key: string;
      contentType: string;
    };
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
  ): Promise<UploadedPart> {
    if ((await this.uploadMeta(uploadId)).key !== key)
      throw new Error(`Upload ${uploadId} is not for ${key}`);
    const file = path.join(this.uploadDir(uploadId), `part-${String(partNumber).padStart(5, '0')}`);
    await writeFile(`${file}.partial`, body);
    await rename(`${file}.partial`, file);
    return { partNumber, etag: `"${partNumber}-${body.length}"`, size: body.length };
  }

  async listParts(_key: string, uploadId: string): Promise<UploadedPart[]> {
    const dir = this.uploadDir(uploadId);
    const names = (await readdir(dir)).filter((name) => /^part-\d{5}$/.test(name)).sort();
    return Promise.all(
      names.map(async (name) => {
        const partNumber = Number(name.slice(5));
        const { size } = await stat(path.join(dir, name));
        return { partNumber, etag: `"${partNumber}-${size}"`, size };
      }),
    );
  }

  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: UploadedPart[],
  ): Promise<void> {
    const { contentType } = await this.uploadMeta(uploadId);
    const dir = this.uploadDir(uploadId);
    await this.writeAtomically(key, contentType, async (temp) => {
      const out = createWriteStream(temp);
      for (const part of [...parts].sort((a, b) => a.partNumber - b.partNumber)) {
        await pipeline(
          createReadStream(path.join(dir, `part-${String(part.partNumber).padStart(5, '0')}`)),
          out,
          {
            end: false,
          },
        );
      }
      await new Promise<void>((resolve, reject) =>
        out.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
    });
    await rm(dir, { recursive: true, force: true });
  }

  async abortMultipartUpload(_key: string, uploadId: string): Promise<void> {
    await rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  async listMultipartUploads(prefix: string): Promise<{ key: string; uploadId: string }[]> {
    assertStoragePrefix(prefix);
    const ids = await readdir(path.join(this.root, multipartFolder)).catch(() => [] as string[]);
    const uploads = await Promise.all(
      ids.map(async (uploadId) => ({
        uploadId,
        key: (await this.uploadMeta(uploadId).catch(() => null))?.key,
      })),
    );
    return uploads.filter(
      (upload): upload is { key: string; uploadId: string } => !!upload.key?.startsWith(prefix),
    );
  }

  async url(key: string, ttlSeconds: number): Promise<string> {
    assertStorageKey(key);
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
    const query = new URLSearchParams({
      expires: String(expires),
      signature: signature(this.links.secret, key, expires),
    });
    return `${this.links.publicUrl}/media/${key}?${query.toString()}`;
  }
}
