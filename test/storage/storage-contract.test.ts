import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GcsObjectStorage } from '../../src/storage/gcs-storage.js';
import { LocalMediaStorage, verifyMediaLink } from '../../src/storage/local-storage.js';
import {
  InvalidStorageKeyError,
  ObjectNotFoundError,
  putStreamUnlessAborted,
  type MediaStorage,
  type ObjectStorage,
} from '../../src/storage/object-storage.js';
import { S3MediaStorage } from '../../src/storage/s3-storage.js';
import { startFakeGcs, startMoto, type Emulator } from '../support/emulators.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const MiB = 1024 * 1024;

/**
 * Starts a write whose body sends more than one 8 MiB part and then waits, aborts it once the
 * store has read what was sent, and returns when the write has rejected.
 */
async function abortMidWrite(storage: ObjectStorage, key: string): Promise<void> {
  const controller = new AbortController();
  const body = new PassThrough();
  const writing = storage.putStream(key, body, 'video/mp4', controller.signal);
  if (!body.write(randomBytes(9 * MiB))) await once(body, 'drain');
  controller.abort(new Error('cancelled'));
  await assert.rejects(writing);
}

/** Keys no backend may take: each climbs out, is absolute, escapes or names a backend's own files. */
const invalidKeys = [
  '',
  '../outside',
  'contract/../../outside',
  '..',
  '.',
  './a',
  '/etc/passwd',
  'a//b',
  'a/',
  '..\\outside',
  'a\u0000b',
  '%2e%2e/outside',
  '%252e%252e/outside',
  'a b',
  'caf\u00e9',
  '\u2025/outside',
  '.multipart/x/upload.json',
  'contract/.hidden',
  'contract/video.mp4.meta.json',
  'contract/video.mp4.partial',
  'a'.repeat(201),
  `${'abcdefg/'.repeat(64)}x`,
];
const invalidPrefixes = ['', '/', '../', '../contract/', 'a//', '%2e%2e/'];

/** What every backend must do the same way. */
function objectStorageContract(name: string, storage: () => ObjectStorage) {
  describe(`${name}: objects`, () => {
    it('stores a stream and reads it back whole and by range', async () => {
      const bytes = randomBytes(3 * MiB + 17);
      const key = `contract/${randomUUID()}/clip.mp4`;
      assert.deepEqual(await storage().putStream(key, Readable.from([bytes]), 'video/mp4'), {
        size: bytes.length,
      });
      assert.deepEqual(await storage().head(key), { size: bytes.length, contentType: 'video/mp4' });
      assert.ok((await readAll(await storage().getStream(key))).equals(bytes));
      const range = await readAll(await storage().getStream(key, { start: MiB, end: 2 * MiB - 1 }));
      assert.ok(range.equals(bytes.subarray(MiB, 2 * MiB)));
    });

    it('says plainly when an object is missing', async () => {
      const key = `contract/${randomUUID()}/none`;
      assert.equal(await storage().head(key), null);
      await assert.rejects(storage().getStream(key), ObjectNotFoundError);
      await storage().delete(key);
    });

    it('has no object at a name that only starts other keys (a folder on disk)', async () => {
      const base = `contract/${randomUUID()}`;
      await storage().putStream(`${base}/dir/x`, Readable.from([Buffer.from('x')]), 'text/plain');
      assert.equal(await storage().head(`${base}/dir`), null);
      await assert.rejects(storage().getStream(`${base}/dir`), ObjectNotFoundError);
      await storage().delete(`${base}/dir`);
      assert.ok(await storage().head(`${base}/dir/x`), 'the object under the name is kept');
    });

    it('refuses keys and prefixes that are not storage keys, on every call', async () => {
      for (const key of invalidKeys) {
        await assert.rejects(
          storage().putStream(key, Readable.from([Buffer.from('x')]), 'text/plain'),
          InvalidStorageKeyError,
          JSON.stringify(key),
        );
        await assert.rejects(storage().head(key), InvalidStorageKeyError, JSON.stringify(key));
        await assert.rejects(storage().getStream(key), InvalidStorageKeyError, JSON.stringify(key));
        await assert.rejects(storage().delete(key), InvalidStorageKeyError, JSON.stringify(key));
      }
      for (const prefix of invalidPrefixes) {
        await assert.rejects(
          storage().deletePrefix(prefix),
          InvalidStorageKeyError,
          JSON.stringify(prefix),
        );
        await assert.rejects(
          storage().list(prefix),
          InvalidStorageKeyError,
          JSON.stringify(prefix),
        );
      }
    });

    it('stops a write when its signal aborts, leaving no object', async () => {
      const key = `contract/${randomUUID()}/aborted.mp4`;
      await abortMidWrite(storage(), key);
      assert.equal(await storage().head(key), null);
    });

    it('lists and deletes everything under a prefix, at any depth, and nothing else', async () => {
      const base = `contract/${randomUUID()}`;
      for (const key of [`${base}/a/1`, `${base}/a/2`, `${base}/a/x/3`, `${base}/b/1`]) {
        await storage().putStream(key, Readable.from([Buffer.from(key)]), 'text/plain');
      }
      // A write cut short under the prefix: it left no object, and is not one to delete.
      await abortMidWrite(storage(), `${base}/a/y/cut.mp4`);
      assert.deepEqual(await storage().list(`${base}/a/`), [
        `${base}/a/1`,
        `${base}/a/2`,
        `${base}/a/x/3`,
      ]);
      assert.equal(await storage().deletePrefix(`${base}/a/`), 3);
      assert.deepEqual(await storage().list(`${base}/a/`), []);
      for (const key of [`${base}/a/1`, `${base}/a/x/3`, `${base}/a/y/cut.mp4`]) {
        assert.equal(await storage().head(key), null, key);
      }
      assert.ok(await storage().head(`${base}/b/1`));
    });
  });
}

function mediaStorageContract(name: string, storage: () => MediaStorage) {
  objectStorageContract(name, storage);
  describe(`${name}: multipart uploads`, () => {
    it('assembles parts in order, lists the parts it holds, and forgets the upload once complete', async () => {
      const key = `contract/${randomUUID()}/video.mp4`;
      const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(123)];
      const uploadId = await storage().createMultipartUpload(key, 'video/mp4');
      // Out of order, and the first part twice (a retry): the store keeps one copy of each.
      const uploaded = [
        await storage().uploadPart(key, uploadId, 2, parts[1]!),
        await storage().uploadPart(key, uploadId, 1, parts[0]!),
      ];
      await storage().uploadPart(key, uploadId, 1, parts[0]!);
      const listed = await storage().listParts(key, uploadId);
      assert.deepEqual(listed.map((part) => [part.partNumber, part.size]).sort(), [
        [1, 5 * MiB],
        [2, 5 * MiB],
      ]);
      assert.deepEqual(await storage().listMultipartUploads(key), [{ key, uploadId }]);
      uploaded.push(await storage().uploadPart(key, uploadId, 3, parts[2]!));
      await storage().completeMultipartUpload(key, uploadId, uploaded);
      assert.ok((await readAll(await storage().getStream(key))).equals(Buffer.concat(parts)));
      assert.deepEqual(await storage().listMultipartUploads(key), []);
    });

    it('refuses to start an upload to, or link to, a key that is not a storage key', async () => {
      for (const key of invalidKeys) {
        await assert.rejects(
          storage().createMultipartUpload(key, 'video/mp4'),
          InvalidStorageKeyError,
          JSON.stringify(key),
        );
        await assert.rejects(storage().url(key, 60), InvalidStorageKeyError, JSON.stringify(key));
      }
      for (const prefix of invalidPrefixes) {
        await assert.rejects(
          storage().listMultipartUploads(prefix),
          InvalidStorageKeyError,
          JSON.stringify(prefix),
        );
      }
    });

    it('has nothing left to land once an aborted write rejects: no object, no open upload', async () => {
      const key = `contract/${randomUUID()}/aborted.mp4`;
      await abortMidWrite(storage(), key);
      assert.deepEqual(await storage().listMultipartUploads(key), []);
      assert.equal(await storage().head(key), null);
    });

    it('aborts an upload without leaving an object', async () => {
      const key = `contract/${randomUUID()}/video.mp4`;
      const uploadId = await storage().createMultipartUpload(key, 'video/mp4');
      await storage().uploadPart(key, uploadId, 1, randomBytes(1024));
      await storage().abortMultipartUpload(key, uploadId);
      assert.deepEqual(await storage().listMultipartUploads(key), []);
      assert.equal(await storage().head(key), null);
    });
  });
}

describe('storage backends', () => {
  let moto: Emulator;
  let gcs: Emulator;
  let s3: S3MediaStorage;
  let google: GcsObjectStorage;
  const localRoot = path.join(os.tmpdir(), `vlogflow-storage-${randomUUID()}`);
  const local = new LocalMediaStorage(localRoot, {
    publicUrl: 'http://api.test',
    secret: 'link-secret',
  });

  before(async () => {
    [moto, gcs] = await Promise.all([startMoto(), startFakeGcs(['contract'])]);
    const options = {
      endpoint: moto.endpoint,
      region: 'auto',
      bucket: 'contract',
      accessKeyId: 'test',
      secretAccessKey: 'test',
      forcePathStyle: true,
    };
    const client = new S3Client({
      ...options,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await client.send(new CreateBucketCommand({ Bucket: 'contract' }));
    client.destroy();
    s3 = new S3MediaStorage(options);
    google = new GcsObjectStorage('contract', { apiEndpoint: gcs.endpoint, projectId: 'test' });
  });
  after(async () => {
    await Promise.all([moto.stop(), gcs.stop()]);
    await rm(localRoot, { recursive: true, force: true });
  });

  mediaStorageContract('local filesystem', () => local);
  mediaStorageContract('S3-compatible (moto)', () => s3);
  objectStorageContract('Cloud Storage (fake-gcs-server)', () => google);

  it('S3 links are presigned URLs that serve the object', async () => {
    const key = `contract/${randomUUID()}/clip.mp4`;
    await s3.putStream(key, Readable.from([Buffer.from('video bytes')]), 'video/mp4');
    const response = await fetch(await s3.url(key, 60));
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'video bytes');
  });

  it('local links are signed for one key and expire', async () => {
    const url = new URL(await local.url('vlogs/x/video.mp4', 60));
    assert.equal(url.origin + url.pathname, 'http://api.test/media/vlogs/x/video.mp4');
    const expires = Number(url.searchParams.get('expires'));
    const signature = url.searchParams.get('signature') ?? '';
    assert.equal(verifyMediaLink('link-secret', 'vlogs/x/video.mp4', expires, signature), true);
    assert.equal(verifyMediaLink('link-secret', 'vlogs/y/video.mp4', expires, signature), false);
    assert.equal(verifyMediaLink('other-secret', 'vlogs/x/video.mp4', expires, signature), false);
    assert.equal(
      verifyMediaLink('link-secret', 'vlogs/x/video.mp4', expires, signature, (expires + 1) * 1000),
      false,
    );
  });

  it('putStreamUnlessAborted deletes an object whose write ended as its activity was cancelled', async () => {
    const key = `contract/${randomUUID()}/late.mp4`;
    const controller = new AbortController();
    // The cancel comes the moment the store has the object, before the caller hears of it.
    const cancelledOnArrival: ObjectStorage = {
      location: local.location,
      putStream: async (...args) => {
        const stored = await local.putStream(...args);
        controller.abort(new Error('cancelled'));
        return stored;
      },
      getStream: (...args) => local.getStream(...args),
      head: (...args) => local.head(...args),
      delete: (...args) => local.delete(...args),
      list: (...args) => local.list(...args),
      deletePrefix: (...args) => local.deletePrefix(...args),
    };
    await assert.rejects(
      putStreamUnlessAborted(
        cancelledOnArrival,
        key,
        Readable.from([Buffer.from('late')]),
        'video/mp4',
        controller.signal,
      ),
      /cancelled/,
    );
    assert.equal(await local.head(key), null);
  });

  // A render cancelled mid-write leaves its folder with no object in it; a cancelled vlog's
  // cleanup then failed on that folder (EISDIR), retrying forever.
  it('local: deleting a prefix removes the folders under it, empty ones too', async () => {
    const base = `contract/${randomUUID()}`;
    await local.putStream(`${base}/done/video.mp4`, Readable.from([Buffer.from('v')]), 'video/mp4');
    await abortMidWrite(local, `${base}/attempt-1/video.mp4`);
    assert.equal(await local.deletePrefix(`${base}/`), 1);
    const left = await readdir(path.join(localRoot, 'contract'));
    assert.ok(!left.includes(path.basename(base)), `${base} left behind`);
  });

  // A process killed mid-write (an API mid-upload) leaves its partial file, which no abort
  // removes: the sweep of its upload's folder must take it, or the folder stays forever.
  it('local: deleting a prefix removes what a write of a killed process left', async () => {
    const base = `contract/${randomUUID()}`;
    await local.putStream(`${base}/00-a.jpg`, Readable.from([Buffer.from('a')]), 'image/jpeg');
    await mkdir(path.join(localRoot, base, 'deep'), { recursive: true });
    await writeFile(path.join(localRoot, base, `01-b.mp4.${randomUUID()}.partial`), 'half');
    await writeFile(path.join(localRoot, base, 'deep', `c.mp4.${randomUUID()}.partial`), 'half');
    assert.equal(await local.deletePrefix(`${base}/`), 1);
    const left = await readdir(path.join(localRoot, 'contract'));
    assert.ok(!left.includes(path.basename(base)), `${base} left behind`);
  });

  it('local keys cannot reach beside the storage folder', async () => {
    const sentinel = path.join(path.dirname(localRoot), `${path.basename(localRoot)}-outside`);
    await writeFile(sentinel, 'outside');
    const escaping = `../${path.basename(sentinel)}`;
    try {
      await assert.rejects(local.head(escaping), InvalidStorageKeyError);
      await assert.rejects(local.getStream(escaping), InvalidStorageKeyError);
      await assert.rejects(local.delete(escaping), InvalidStorageKeyError);
      await assert.rejects(
        local.putStream(escaping, Readable.from([Buffer.from('overwritten')]), 'text/plain'),
        InvalidStorageKeyError,
      );
      assert.equal(await readFile(sentinel, 'utf8'), 'outside');
    } finally {
      await rm(sentinel, { force: true });
    }
  });
});
