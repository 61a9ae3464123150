import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { jpegBytes, mp4Bytes, multipartBody } from '../fixtures/media.js';
import { startHarness, type Harness } from '../support/harness.js';

// No worker polls this API's task queue: the test looks at what the upload stored, nothing more.
describe('vlog uploads on local storage', () => {
  let h: Harness;
  const storage = new LocalMediaStorage(path.join(os.tmpdir(), `vlogflow-upload-${randomUUID()}`), {
    publicUrl: 'http://api.test',
    secret: 's',
  });

  before(async () => {
    h = await startHarness({
      env: { VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://bucket/out/', GEMINI_API_KEY: 'k' },
      mediaStorage: storage,
    });
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
    const row = await h.db
      .selectFrom('jobs')
      .select('input')
      .where('id', '=', response.json<{ id: string }>().id)
      .executeTakeFirstOrThrow();
    const media = (row.input as { media: { key: string; size: number; sha256: string }[] }).media;
    assert.equal(media.length, files.length);
    for (const [index, ref] of media.entries()) {
      const chunks: Buffer[] = [];
      for await (const chunk of await storage.getStream(ref.key)) chunks.push(chunk as Buffer);
      const stored = Buffer.concat(chunks);
      assert.equal(stored.length, files[index]!.length, `${ref.key} stored ${stored.length} bytes`);
      assert.ok(stored.equals(files[index]!));
      assert.equal(ref.size, files[index]!.length);
      assert.equal(ref.sha256, createHash('sha256').update(files[index]!).digest('hex'));
    }
  });
});
