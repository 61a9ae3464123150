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
 * The small surface the service needs from object storage. Keys are `/`-separated paths;
 * media bytes only ever move through streams, never through workflow payloads.
 */
export interface ObjectStorage {
  /** For logs and errors: `file:///…`, `s3://bucket`, `gs://bucket`. */
  readonly location: string;
  putStream(key: string, body: Readable, contentType: string): Promise<{ size: number }>;
  getStream(key: string, range?: ByteRange): Promise<Readable>;
  head(key: string): Promise<StoredObject | null>;
  delete(key: string): Promise<void>;
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
