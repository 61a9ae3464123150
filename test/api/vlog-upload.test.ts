import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Readable } from 'node:stream';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { InvalidStorageKeyError, storageKeyProblem } from '../../src/storage/object-storage.js';
import { jpegBytes, mp4Bytes, multipartBody, pngBytes } from '../fixtures/media.js';
import { startHarness, type Harness } from '../support/harness.js';
import { captureLogs } from '../support/logs.js';
import { readStored, storedMediaOf } from '../support/stored-files.js';

// No worker polls this API's task queue: the test looks at what the upload stored, nothing more.
describe('vlog uploads on local storage', () => {
  let h: Harness;
  const env = { VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://bucket/out/', GEMINI_API_KEY: 'k' };
  const storageRoot = path.join(os.tmpdir(), `vlogflow-upload-${randomUUID()}`);
  const storage = new LocalMediaStorage(storageRoot, { publicUrl: 'http://api.test', secret: 's' });

  before(async () => {
    h = await startHarness({ env, mediaStorage: storage });
  });
  after(() => h.stop());

  it('stores every file whole, byte for byte, larger than the sniffed sample or not', async () => {
    const files = [jpegBytes(300 * 1024), mp4Bytes(2 * 1024 * 1024), jpegBytes(1_000)];
    const form = multipartBody(
      { title: 'Whole files' },
      files.map((bytes, index) => ({
        field: 'media',
        filename: index === 1 ? 'clip.mp4' : `photo-${index}.jpg`,
        contentType: index === 1 ? 'video/mp4' : 'image/jpeg',
        bytes,
      })),
    );
    const response = await h.user('uploader').postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 202, response.body);
    const media = await storedMediaOf(h.db, response.json<{ id: string }>().id);
    assert.equal(media.length, files.length);
    for (const [index, ref] of media.entries()) {
      const stored = await readStored(storage, ref.key);
      assert.equal(stored.length, files[index]!.length, `${ref.key} stored ${stored.length} bytes`);
      assert.ok(stored.equals(files[index]!));
      assert.equal(ref.size, files[index]!.length);
      assert.equal(ref.sha256, createHash('sha256').update(files[index]!).digest('hex'));
    }
  });

  // The names storage keeps for its own files (a half-written object, an object's content type)
  // are ordinary file names to a user: a browser's half download, a sidecar file.
  it('accepts files named like storage’s own files, storing them under keys storage takes', async () => {
    const files = [
      { filename: 'x.partial', contentType: 'image/png', bytes: pngBytes() },
      { filename: 'a.jpg.meta.json', contentType: 'image/jpeg', bytes: jpegBytes(1_000) },
    ];
    const form = multipartBody(
      { title: 'Reserved names' },
      files.map((file) => ({ field: 'media', ...file })),
    );
    const response = await h.user('reserved-names').postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 202, response.body);
    const media = await storedMediaOf(h.db, response.json<{ id: string }>().id);
    assert.deepEqual(
      media.map((ref) => ref.name),
      files.map((file) => file.filename),
    );
    for (const [index, ref] of media.entries()) {
      assert.equal(storageKeyProblem(ref.key), null, ref.key);
      assert.ok(await storage.head(ref.key), `${ref.key} is not stored`);
      assert.ok((await readStored(storage, ref.key)).equals(files[index]!.bytes));
    }
  });

  // Storage refusing a key is the service's fault, not the client's form: a 500 that shows
  // nothing of how keys are made, and a log line for the operator.
  it('answers a storage failure 500 INTERNAL_ERROR, showing no key, and logs it', async () => {
    const failingRoot = path.join(os.tmpdir(), `vlogflow-upload-failing-${randomUUID()}`);
    class RefusingStorage extends LocalMediaStorage {
      override async putStream(key: string, body: Readable): Promise<{ size: number }> {
        body.resume();
        throw new InvalidStorageKeyError(key, 'must not end with .partial');
      }
    }
    const logs = captureLogs();
    const api = await h.startApi({
      env,
      logger: logs.logger,
      mediaStorage: new RefusingStorage(failingRoot, { publicUrl: 'http://api.test', secret: 's' }),
    });
    const form = multipartBody({ title: 'Refused by storage' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
    ]);
    const response = await api.user('storage-fails').postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 500, response.body);
    assert.deepEqual(response.json(), {
      error: { code: 'INTERNAL_ERROR', message: 'Internal server error' },
    });
    const logged = logs.lines().find((line) => line['msg'] === 'unhandled error');
    assert.ok(logged, 'no log line of the failure');
    assert.match(JSON.stringify(logged), /Invalid storage key/);
  });
});
