// Signed media links over real sockets: Fastify's inject resolves `..` in a URL before the
// router sees it, an attacker's client does not.
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { InvalidStorageKeyError } from '../../src/storage/object-storage.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { storedMediaOf } from '../support/stored-files.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The API's own link signature, made here with its real secret as anyone holding it could. */
function sign(key: string, expires: number): string {
  return createHmac('sha256', `media-url:${testJwtSecret}`)
    .update(`${key}\n${expires}`)
    .digest('base64url');
}

describe('media links', () => {
  let h: Harness;
  let port: number;
  // The storage root and, beside it, a file no link may ever serve.
  const folder = path.join(os.tmpdir(), `vlogflow-media-${randomUUID()}`);
  const root = path.join(folder, 'storage');
  const sentinel = path.join(folder, 'outside.txt');
  const secretText = `SENTINEL-${randomUUID()}`;
  const storage = new LocalMediaStorage(root, {
    publicUrl: 'http://api.test',
    secret: testJwtSecret,
  });
  const image = pngBytes(4_096);

  before(async () => {
    h = await startHarness({
      env: { VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://bucket/out/', GEMINI_API_KEY: 'k' },
      mediaStorage: storage,
    });
    port = Number(new URL(await h.api.listen()).port);
    await mkdir(root, { recursive: true });
    await writeFile(sentinel, secretText);
    await writeFile(`${sentinel}.meta.json`, JSON.stringify({ contentType: 'text/html' }));
  });
  after(() => h.stop());

  /** A GET (or HEAD) with the path sent byte for byte as given: no client-side normalising. */
  function request(
    rawPath: string,
    options: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const outgoing = http.request(
        {
          host: '127.0.0.1',
          port,
          path: rawPath,
          method: options.method ?? 'GET',
          headers: options.headers,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  /** `/media/<rawPath>` signed for `key`, the path parameter the router decodes it to. */
  function signedPath(rawPath: string, key: string): string {
    const expires = Math.floor(Date.now() / 1000) + 600;
    return `/media/${rawPath}?expires=${expires}&signature=${sign(key, expires)}`;
  }

  function pathOf(url: string): string {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  }

  function errorCode(answer: Answer): string {
    return (JSON.parse(answer.body.toString('utf8')) as { error: { code: string } }).error.code;
  }

  it('signs links that the route serves (the control for the signatures below)', async () => {
    const key = `uploads/${randomUUID()}/00-photo.png`;
    await storage.putStream(key, Readable.from([image]), 'image/png');
    const answer = await request(signedPath(key, key));
    assert.equal(answer.status, 200);
    assert.ok(answer.body.equals(image));
    assert.equal(pathOf(await storage.url(key, 600)).split('?')[0], `/media/${key}`);
  });

  it('answers 400 with a code to validly signed paths that leave the storage folder, and never serves what is outside', async () => {
    const outside = sentinel.slice(1);
    const paths: [rawPath: string, key: string, code?: string][] = [
      ['../outside.txt', '../outside.txt'],
      ['%2e%2e/outside.txt', '../outside.txt'],
      ['%2E%2E%2Foutside.txt', '../outside.txt'],
      ['..%2F..%2Foutside.txt', '../../outside.txt'],
      ['vlogs/x/../../../outside.txt', 'vlogs/x/../../../outside.txt'],
      ['%252e%252e/outside.txt', '%2e%2e/outside.txt'],
      ['%252e%252e%252foutside.txt', '%2e%2e%2foutside.txt'],
      [`/${outside}`, `/${outside}`],
      [`%2F${outside.split('/').join('%2F')}`, `/${outside}`],
      ['..%5Coutside.txt', '..\\outside.txt'],
      ['..\\outside.txt', '..\\outside.txt'],
      // NUL is refused in every request field, before any route: the API-wide code.
      ['outside.txt%00.png', 'outside.txt\u0000.png', 'VALIDATION_FAILED'],
      ['./outside.txt', './outside.txt'],
      ['a//b', 'a//b'],
      ['%E2%80%A5/outside.txt', '\u2025/outside.txt'],
      ['.multipart/x/upload.json', '.multipart/x/upload.json'],
      ['vlogs/x/video.mp4.meta.json', 'vlogs/x/video.mp4.meta.json'],
    ];
    const wrong: string[] = [];
    for (const [rawPath, key, expected = 'MEDIA_KEY_INVALID'] of paths) {
      const answer = await request(signedPath(rawPath, key));
      const body = answer.body.toString('utf8');
      assert.ok(!body.includes(secretText), `${rawPath} served the file outside the storage root`);
      const code = answer.status === 200 ? null : errorCode(answer);
      if (answer.status !== 400 || code !== expected) {
        wrong.push(`${rawPath}: ${answer.status} ${code ?? body.slice(0, 80)}`);
      } else if (answer.headers['x-content-type-options'] !== 'nosniff') {
        wrong.push(`${rawPath}: no nosniff`);
      }
    }
    assert.deepEqual(wrong, []);
    // Nor does the storage sign such a link in the first place.
    for (const [, key] of paths) {
      await assert.rejects(storage.url(key, 600), InvalidStorageKeyError, key);
    }
  });

  it('refuses a path that is no storage key as such, before it reads the link: unsigned, badly signed or expired', async () => {
    const expired = Math.floor(Date.now() / 1000) - 60;
    const queries = [
      '',
      '?expires=1&signature=bad',
      `?expires=${expired}&signature=${sign('../x', expired)}`,
    ];
    const wrong: string[] = [];
    for (const rawPath of ['%2e%2e/x', '../x', 'a%5cb', 'uploads/x.meta.json', 'a//b']) {
      for (const query of queries) {
        const answer = await request(`/media/${rawPath}${query}`);
        const code = answer.status === 200 ? null : errorCode(answer);
        if (answer.status !== 400 || code !== 'MEDIA_KEY_INVALID') {
          wrong.push(`${rawPath}${query}: ${answer.status} ${code}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
    // A storage key's link with a bad signature is still the link's fault.
    const key = `uploads/${randomUUID()}/00-photo.png`;
    const forged = await request(`/media/${key}?expires=${expired + 600}&signature=bad`);
    assert.equal(forged.status, 403);
    assert.equal(errorCode(forged), 'MEDIA_LINK_INVALID');
  });

  it('serves the content type stored at upload (the detected one), never one from the name', async () => {
    const form = multipartBody({ title: 'Named like a web page' }, [
      { field: 'media', filename: 'page.html', contentType: 'text/html', bytes: image },
    ]);
    const response = await h.user('uploader').postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 202, response.body);
    const [uploaded] = await storedMediaOf(h.db, response.json<{ id: string }>().id);
    assert.ok(uploaded);
    assert.match(uploaded.key, /page\.html$/);
    const answer = await request(pathOf(await storage.url(uploaded.key, 600)));
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'image/png');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');

    // A file with no stored type (put there by hand) is bytes, whatever its name says.
    const bare = `legacy/${randomUUID()}.html`;
    await mkdir(path.join(root, 'legacy'), { recursive: true });
    await writeFile(path.join(root, bare), '<script>alert(1)</script>');
    const untyped = await request(pathOf(await storage.url(bare, 600)));
    assert.equal(untyped.status, 200);
    assert.equal(untyped.headers['content-type'], 'application/octet-stream');
    assert.equal(untyped.headers['x-content-type-options'], 'nosniff');
  });

  it('says nosniff on every kind of answer: whole, range, unsatisfiable range, HEAD and each error', async () => {
    const key = `vlogs/${randomUUID()}/thumbnail.jpg`;
    await storage.putStream(key, Readable.from([image]), 'image/jpeg');
    const link = pathOf(await storage.url(key, 600));
    const missing = pathOf(await storage.url(`vlogs/${randomUUID()}/video.mp4`, 600));
    const expires = Math.floor(Date.now() / 1000) - 10;
    const answers: [kind: string, answer: Promise<Answer>, status: number, type: RegExp][] = [
      ['whole', request(link), 200, /^image\/jpeg$/],
      ['range', request(link, { headers: { range: 'bytes=0-99' } }), 206, /^image\/jpeg$/],
      ['suffix range', request(link, { headers: { range: 'bytes=-10' } }), 206, /^image\/jpeg$/],
      [
        'unsatisfiable range',
        request(link, { headers: { range: `bytes=${image.length + 10}-` } }),
        416,
        /json/,
      ],
      ['HEAD', request(link, { method: 'HEAD' }), 200, /^image\/jpeg$/],
      ['unknown object', request(missing), 404, /json/],
      ['bad signature', request(link.replace(/signature=[^&]+/, 'signature=forged')), 403, /json/],
      [
        'expired',
        request(`/media/${key}?expires=${expires}&signature=${sign(key, expires)}`),
        403,
        /json/,
      ],
      ['no signature', request(`/media/${key}`), 400, /json/],
      ['invalid key', request(signedPath('..%2Foutside.txt', '../outside.txt')), 400, /json/],
      ['malformed escape', request('/media/a%zz?expires=1&signature=x'), 400, /json/],
    ];
    for (const [kind, pending, status, type] of answers) {
      const answer = await pending;
      assert.equal(answer.status, status, `${kind}: ${answer.body.toString('utf8').slice(0, 200)}`);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', kind);
      assert.match(answer.headers['content-type'] ?? '', type, kind);
    }
    const range = await request(link, { headers: { range: 'bytes=0-99' } });
    assert.ok(range.body.equals(image.subarray(0, 100)));
  });

  it('refuses a range outside the object with 416 RANGE_NOT_SATISFIABLE, its size in Content-Range', async () => {
    const key = `vlogs/${randomUUID()}/video.mp4`;
    await storage.putStream(key, Readable.from([image]), 'video/mp4');
    const link = pathOf(await storage.url(key, 600));
    for (const range of ['bytes=999999999-', `bytes=${image.length}-`, 'bytes=-0', 'bytes=9-3']) {
      for (const method of ['GET', 'HEAD']) {
        const answer = await request(link, { method, headers: { range } });
        const what = `${method} ${range}`;
        assert.equal(answer.status, 416, what);
        assert.equal(answer.headers['content-range'], `bytes */${image.length}`, what);
        assert.match(answer.headers['content-type'] ?? '', /^application\/json/, what);
        if (method === 'HEAD') continue;
        const { error } = JSON.parse(answer.body.toString('utf8')) as {
          error: { code: string; message: string; details: { size: number } };
        };
        assert.equal(error.code, 'RANGE_NOT_SATISFIABLE', what);
        assert.equal(
          error.message,
          `The range ${range} is not within the media's ${image.length} bytes`,
        );
        assert.deepEqual(error.details, { size: image.length });
      }
    }
    // The last byte is within it.
    const last = await request(link, { headers: { range: `bytes=${image.length - 1}-` } });
    assert.equal(last.status, 206);
    assert.equal(
      last.headers['content-range'],
      `bytes ${image.length - 1}-${image.length - 1}/${image.length}`,
    );
  });

  it('answers a range asked If-Range with the whole object, and refuses a parameter the link does not carry', async () => {
    const key = `vlogs/${randomUUID()}/video.mp4`;
    await storage.putStream(key, Readable.from([image]), 'video/mp4');
    const link = pathOf(await storage.url(key, 600));
    // The answers carry no validator a client could hold, so no If-Range matches.
    const whole = await request(link, { headers: { range: 'bytes=0-0', 'if-range': '"nope"' } });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-range'], undefined);
    assert.equal(whole.body.length, image.length);
    assert.equal((await request(link, { headers: { range: 'bytes=0-0' } })).status, 206);

    const extra = await request(`${link}&x=1`);
    assert.equal(extra.status, 400);
    assert.match(extra.body.toString('utf8'), /querystring\.x: unknown field/);
  });
});
