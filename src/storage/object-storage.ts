import type { Readable } from 'node:stream';

export interface StoredObject {
  size: number;
  contentType: string | undefined;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** Inclusive byte range, as HTTP ranges are. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The small surface the service needs from object storage. Keys are `/`-separated paths that
 * pass `assertStorageKey`, checked by every backend on every call; media bytes only ever move
 * through streams, never through workflow payloads.
 */
export interface ObjectStorage {
  /** For logs and errors: `file:///…`, `s3://bucket`, `gs://bucket`. */
  readonly location: string;
  /**
   * Stores `body` at `key`. An abort of `signal` stops the write: it rejects, and only once
   * nothing it sent can still land (an object whose write had already ended may be stored;
   * `putStreamUnlessAborted` removes that too).
   */
  putStream(
    key: string,
    body: Readable,
    contentType: string,
    signal?: AbortSignal,
  ): Promise<{ size: number }>;
  getStream(key: string, range?: ByteRange): Promise<Readable>;
  head(key: string): Promise<StoredObject | null>;
  delete(key: string): Promise<void>;
  /** The keys of every object under the prefix, at any depth, in key order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes every object under the prefix; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
}

/**
 * Storage that finished videos are delivered to: resumable multipart uploads (a transfer that
 * crashes resumes from its last completed part) and links clients can open.
 */
export interface MediaStorage extends ObjectStorage {
  createMultipartUpload(key: string, contentType: string): Promise<string>;
  uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    signal?: AbortSignal,
  ): Promise<UploadedPart>;
  listParts(key: string, uploadId: string): Promise<UploadedPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: UploadedPart[]): Promise<void>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /** Multipart uploads still open under a prefix, so a cancelled job can abort them. */
  listMultipartUploads(prefix: string): Promise<{ key: string; uploadId: string }[]>;
  /** A URL that serves the object for `ttlSeconds`. */
  url(key: string, ttlSeconds: number): Promise<string>;
}

/**
 * Stores `body` at `key` for an activity that may be cancelled: the write stops when `signal`
 * aborts, and an object stored by then is deleted before this rejects. A cancelled activity
 * that awaited it has written nothing, so the cleanup that follows it has nothing to miss.
 */
export async function putStreamUnlessAborted(
  storage: ObjectStorage,
  key: string,
  body: Readable,
  contentType: string,
  signal: AbortSignal,
): Promise<{ size: number }> {
  try {
    const stored = await storage.putStream(key, body, contentType, signal);
    signal.throwIfAborted();
    return stored;
  } catch (error) {
    if (signal.aborted) await storage.delete(key);
    throw error;
  }
}

/** Longest storage key, in characters. */
export const maxStorageKeyLength = 512;
/** Longest segment of a key: a file name on the local backend, with room for its `.partial` suffix. */
const maxSegmentLength = 200;
const segmentPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
/** The local backend's own files beside each object: no key ends with one. */
export const reservedKeySuffixes: readonly string[] = ['.meta.json', '.partial'];

/**
 * What is wrong with a storage key, or null. A key is 1 to 512 characters of `/`-separated
 * segments; each segment is 1 to 200 letters, digits, `.`, `_` or `-` and does not start with
 * `.`. So no key is absolute, climbs (`..`), holds a backslash, a NUL, a `%` escape or a
 * doubled `/`, or names a backend's own files: a key means the same object on every backend
 * and never a path outside the local storage folder.
 */
export function storageKeyProblem(key: string): string | null {
  if (key.length === 0 || key.length > maxStorageKeyLength) {
    return `must be 1 to ${maxStorageKeyLength} characters long`;
  }
  for (const segment of key.split('/')) {
    if (segment.length === 0) return 'must not start or end with / or hold //';
    if (segment.length > maxSegmentLength) {
      return `must not have a segment longer than ${maxSegmentLength} characters`;
    }
    if (!segmentPattern.test(segment)) {
      return 'may hold only letters, digits, ".", "_", "-" and "/", and no segment may start with "."';
    }
  }
  if (reservedKeySuffixes.some((suffix) => key.endsWith(suffix))) {
    return `must not end with ${reservedKeySuffixes.join(' or ')}`;
  }
  return null;
}

export class InvalidStorageKeyError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`Invalid storage key ${JSON.stringify(key.slice(0, 100))}: it ${problem}`);
  }
}

export function assertStorageKey(key: string): void {
  const problem = storageKeyProblem(key);
  if (problem) throw new InvalidStorageKeyError(key, problem);
}

/** A prefix is a key, or a key followed by `/`: never empty, so no call spans a whole store. */
export function assertStoragePrefix(prefix: string): void {
  assertStorageKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`No object at ${key}`);
  }
}

const mediaScheme = 'media:';

/** A URI for an object in the configured media storage (a local render's output): `media:<key>`. */
export function mediaUri(key: string): string {
  return `${mediaScheme}${key}`;
}

/** The key of a `media:` URI, or null for any other URI. */
export function parseMediaUri(uri: string): string | null {
  return uri.startsWith(mediaScheme) ? uri.slice(mediaScheme.length) : null;
}
