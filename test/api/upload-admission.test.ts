// An upload the API will refuse must be refused before its body is read: a user at the
// in-flight cap or over the rate limit could otherwise stream gigabytes into storage (and
// through the network) only to be told no at the end. Real sockets: inject never streams.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { startHarness, type Harness } from '../support/harness.js';
import { storedFiles } from '../support/stored-files.js';

const declaredBytes = 2 * 1024 ** 3;
const sentBytes = 1024 * 1024;

describe('upload admission', { timeout: 120_000 }, () => {
  let h: Harness;
  let port: number;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-admission-${randomUUID()}`);
  // The process's temporary folder for this suite, so "no temp files" is checked where the
  // upload would have put them, with nothing else of the machine in it.
  const tmpDir = path.join(os.tmpdir(), `vlogflow-admission-tmp-${randomUUID()}`);
  const originalTmpDir = process.env['TMPDIR'];

  before(async () => {
    await mkdir(tmpDir, { recursive: true });
    process.env['TMPDIR'] = tmpDir;
    h = await startHarness({
      env: {
        VERTEX_PROJECT: 'p',
        VEO_OUTPUT_GCS_URI: 'gs://bucket/out/',
        GEMINI_API_KEY: 'k',
        USER_MAX_JOBS_IN_FLIGHT: '1',
        USER_RATE_LIMIT_REQUESTS: '3',
        // A day-long window: the test's requests never straddle a window's end.
        RATE_LIMIT_WINDOW_MS: '86400000',
        VLOG_MAX_FILE_BYTES: String(declaredBytes),
      },
      mediaStorage: new LocalMediaStorage(storageRoot, {
        publicUrl: 'http://api.test',
        secret: 's',
      }),
    });
    port = Number(new URL(await h.api.listen()).port);
  });
  after(async () => {
    if (originalTmpDir === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = originalTmpDir;
    await h.stop();
  });

  async function postVlog(user: string, idempotencyKey?: string): Promise<Response> {
    const form = multipartBody({ title: 'First' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
    ]);
    return fetch(`http://127.0.0.1:${port}/api/vlogs`, {
      method: 'POST',
      headers: {
        authorization: await h.user(user).authorization(),
        ...form.headers,
        ...(idempotencyKey && { 'idempotency-key': idempotencyKey }),
      },
      body: form.payload,
    });
  }

  async function acceptedVlog(user: string, idempotencyKey?: string): Promise<string> {
    const response = await postVlog(user, idempotencyKey);
    assert.equal(response.status, 202, await response.clone().text());
    const { id } = (await response.json()) as { id: string };
    h.terminateOnStop(id);
    return id;
  }

  /**
   * Declares a 2 GiB upload, sends its first MiB and then waits: an API that reads bodies before
   * deciding would sit waiting for the rest. Returns the answer and when the server hung up.
   */
  async function hugeUpload(user: string, fields: Record<string, string> = { title: 'Huge' }) {
    const boundary = `admission-${randomUUID()}`;
    const head = [
      'POST /api/vlogs HTTP/1.1',
      `host: 127.0.0.1:${port}`,
      `authorization: ${await h.user(user).authorization()}`,
      `content-type: multipart/form-data; boundary=${boundary}`,
      `content-length: ${declaredBytes}`,
      '',
      '',
    ].join('\r\n');
    const partHead =
      Object.entries(fields)
        .map(
          ([name, value]) =>
            `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
        )
        .join('') +
      `--${boundary}\r\ncontent-disposition: form-data; name="media"; filename="huge.png"\r\n` +
      'content-type: image/png\r\n\r\n';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const sentAt = Date.now();
    socket.write(head);
    socket.write(partHead);
    socket.write(pngBytes(sentBytes));
    const deadline = new Promise<'held'>((resolve) => {
      const timer = setTimeout(() => resolve('held'), 10_000);
      void closed.then(() => clearTimeout(timer));
    });
    const outcome = await Promise.race([closed.then(() => 'closed' as const), deadline]);
    socket.destroy();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1]);
    const body = received.includes('\r\n\r\n')
      ? (JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as {
          error: { code: string; message: string };
        })
      : null;
    return { outcome, status, body, raw: received, elapsedMs: Date.now() - sentAt };
  }

  it('refuses an upload from a user at the in-flight cap before reading it, writing nothing', async () => {
    const user = `at-cap-${randomUUID().slice(0, 8)}`;
    await acceptedVlog(user);
    // The accepted vlog's upload is in storage: the check below looks where uploads do land.
    const baseline = await storedFiles(storageRoot);
    assert.ok(baseline.length > 0, 'the accepted upload stored nothing');

    const refused = await hugeUpload(user);
    assert.equal(refused.outcome, 'closed', `the server waited for the body: ${refused.raw}`);
    assert.equal(refused.status, 429, refused.raw);
    assert.equal(refused.body?.error.code, 'TOO_MANY_JOBS_IN_FLIGHT');
    assert.match(refused.raw, /\r\nconnection: close\r\n/i);
    assert.match(refused.raw, /\r\nretry-after: \d+\r\n/i);
    assert.deepEqual(await storedFiles(storageRoot), baseline);
    assert.deepEqual(await storedFiles(tmpDir), []);
    const rows = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.equal(rows.length, 1);
  });

  // A client that lost the answer sends the request again: it must learn the vlog it made,
  // whatever its count, as a repeated probe or AI job does.
  it('replays the repeat of an upload that made a vlog to a user at the in-flight cap', async () => {
    const user = `repeat-at-cap-${randomUUID().slice(0, 8)}`;
    const key = `key-${randomUUID()}`;
    const id = await acceptedVlog(user, key);
    const again = await postVlog(user, key);
    assert.equal(again.status, 202, await again.clone().text());
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(((await again.json()) as { id: string }).id, id);
    const other = await postVlog(user, `key-${randomUUID()}`);
    assert.equal(other.status, 429, 'a new request is still held to the cap');
  });

  it('refuses an upload from a user over the rate limit before reading it, writing nothing', async () => {
    const user = `chatty-${randomUUID().slice(0, 8)}`;
    await acceptedVlog(user);
    const auth = await h.user(user).authorization();
    // Two more submissions (cancels of jobs that do not exist) reach the limit of 3.
    for (let request = 0; request < 2; request += 1) {
      const response = await fetch(`http://127.0.0.1:${port}/api/vlogs/none/cancel`, {
        method: 'POST',
        headers: { authorization: auth },
      });
      assert.equal(response.status, 404);
    }
    const baseline = await storedFiles(storageRoot);
    assert.ok(baseline.length > 0, 'the accepted upload stored nothing');

    const refused = await hugeUpload(user);
    assert.equal(refused.outcome, 'closed', `the server waited for the body: ${refused.raw}`);
    assert.equal(refused.status, 429, refused.raw);
    assert.equal(refused.body?.error.code, 'TOO_MANY_REQUESTS');
    assert.deepEqual(await storedFiles(storageRoot), baseline);
    assert.deepEqual(await storedFiles(tmpDir), []);
  });

  it('refuses an upload whose field before its files is wrong before reading the files, writing nothing', async () => {
    const user = `bad-field-${randomUUID().slice(0, 8)}`;
    const baseline = await storedFiles(storageRoot);

    const refused = await hugeUpload(user, { title: 'Huge', durationSeconds: '5' });
    assert.equal(refused.outcome, 'closed', `the server waited for the body: ${refused.raw}`);
    assert.equal(refused.status, 400, refused.raw);
    assert.equal(refused.body?.error.code, 'VALIDATION_FAILED');
    assert.match(refused.body?.error.message ?? '', /^body\.durationSeconds: must be 4, 6 or 8$/);
    assert.deepEqual(await storedFiles(storageRoot), baseline);
    assert.deepEqual(await storedFiles(tmpDir), []);
  });
});
