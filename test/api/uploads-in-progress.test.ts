// An upload in progress is no job yet, so the in-flight cap does not count it; each may hold
// VLOG_MAX_FILES × VLOG_MAX_FILE_BYTES of storage while its client keeps it open. One user's
// uploads in progress are capped on each API process, before a byte of the body is read, and
// an upload stops counting however it ends. Real sockets: inject never holds a request open.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { mp4Bytes, multipartBody, pngBytes } from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { openUpload as openRawUpload } from '../support/raw-upload.js';
import { startHarness, type Harness } from '../support/harness.js';
import { storedFiles } from '../support/stored-files.js';

const idleMs = 1_500;
const maxFileBytes = 100 * 1024;

describe('uploads in progress', { timeout: 120_000 }, () => {
  let h: Harness;
  let port: number;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-in-progress-${randomUUID()}`);

  before(async () => {
    h = await startHarness({
      env: {
        VERTEX_PROJECT: 'p',
        VEO_OUTPUT_GCS_URI: 'gs://bucket/out/',
        GEMINI_API_KEY: 'k',
        VLOG_MAX_UPLOADS_IN_PROGRESS_PER_USER: '1',
        VLOG_MAX_FILE_BYTES: String(maxFileBytes),
        USER_MAX_JOBS_IN_FLIGHT: '100',
        USER_RATE_LIMIT_REQUESTS: '1000',
        API_IDLE_TIMEOUT_MS: String(idleMs),
        EVENT_STREAM_KEEPALIVE_MS: String(idleMs / 2),
      },
      mediaStorage: new LocalMediaStorage(storageRoot, {
        publicUrl: 'http://api.test',
        secret: 's',
      }),
    });
    port = Number(new URL(await h.api.listen()).port);
  });
  after(() => h.stop());

  const openUpload = async (
    user: string,
    form: { payload: Buffer; headers: Record<string, string> },
    sent: number,
  ) => openRawUpload(port, await h.user(user).authorization(), form, sent);

  const photoForm = (fields: Record<string, string> = { title: 'In progress' }) =>
    multipartBody(fields, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes(40 * 1024) },
    ]);

  /** An upload held open: all of its form but the last 10 KB of its file, sent. */
  async function heldUpload(user: string) {
    const form = photoForm();
    const before = await storedFiles(storageRoot);
    const upload = await openUpload(user, form, form.payload.length - 10 * 1024);
    // Its file is streaming into storage: the upload is under way, not waiting to start.
    await eventually(
      () => storedFiles(storageRoot),
      (files) => files.some((file) => file.endsWith('.partial') && !before.includes(file)),
      { timeoutMs: 5_000, what: 'the held upload streaming into storage' },
    );
    return upload;
  }

  async function postPhoto(user: string, fields?: Record<string, string>) {
    const response = await h.user(user).postForm('/api/vlogs', photoForm(fields));
    if (response.statusCode === 202) h.terminateOnStop(response.json<{ id: string }>().id);
    return response;
  }

  /** The user's next upload is taken again: the one before stopped counting. */
  async function expectSlotFree(user: string, what: string) {
    await eventually(
      () => postPhoto(user),
      (response) => response.statusCode === 202,
      { timeoutMs: 10_000, what: `an upload of ${user} accepted after ${what}` },
    );
  }

  it("refuses a user's upload past the cap before reading it, and no other user's", async () => {
    const user = `busy-${randomUUID().slice(0, 8)}`;
    const held = await heldUpload(user);
    const during = await storedFiles(storageRoot);

    const form = photoForm();
    const refused = await openUpload(user, form, 1024);
    const answer = await refused.answer();
    assert.equal(answer.status, 429, answer.raw);
    assert.equal(answer.code, 'TOO_MANY_UPLOADS');
    assert.match(answer.raw, /\r\nretry-after: \d+\r\n/i);
    assert.match(answer.raw, /\r\nconnection: close\r\n/i);
    assert.match(answer.raw, /You have 1 vlog uploads in progress, the most allowed \(1\)/);
    assert.deepEqual(await storedFiles(storageRoot), during);
    const rows = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.deepEqual(rows, []);

    const other = await postPhoto(`other-${randomUUID().slice(0, 8)}`);
    assert.equal(other.statusCode, 202, other.body);

    // The client gives up: its upload stops counting.
    held.socket.destroy();
    await expectSlotFree(user, 'its held upload was aborted');
  });

  it('stops counting an upload that was accepted', async () => {
    const user = `sequential-${randomUUID().slice(0, 8)}`;
    for (let upload = 0; upload < 3; upload += 1) {
      const response = await postPhoto(user);
      assert.equal(response.statusCode, 202, `upload ${upload}: ${response.body}`);
    }
  });

  it('stops counting an upload refused before its files and one refused while storing them', async () => {
    const user = `refused-${randomUUID().slice(0, 8)}`;
    const early = await postPhoto(user, { title: 'x', durationSeconds: '5' });
    assert.equal(early.statusCode, 400, early.body);
    assert.equal((await postPhoto(user)).statusCode, 202);

    const tooLarge = multipartBody({ title: 'x' }, [
      {
        field: 'media',
        filename: 'big.mp4',
        contentType: 'video/mp4',
        bytes: mp4Bytes(maxFileBytes + 1024),
      },
    ]);
    const late = await h.user(user).postForm('/api/vlogs', tooLarge);
    assert.equal(late.statusCode, 413, late.body);
    assert.equal((await postPhoto(user)).statusCode, 202);
  });

  it('stops counting an upload the server closed for stalling', async () => {
    const user = `stalled-${randomUUID().slice(0, 8)}`;
    const held = await heldUpload(user);
    const refused = await postPhoto(user);
    assert.equal(refused.statusCode, 429, refused.body);
    // The client sends nothing more: the idle timeout closes the connection.
    await held.answer(idleMs + 5_000);
    await expectSlotFree(user, 'its stalled upload was closed');
  });
});
