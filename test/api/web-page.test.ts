import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { checkFile, checkSelection, type UploadRules } from '../../src/web/client/file-checks.js';
import { mp4Bytes, multipartBody, pngBytes, type FormFile } from '../fixtures/media.js';
import { startHarness, type Harness } from '../support/harness.js';
import { assertOnlyControlJobOf } from '../support/jobs.js';

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** The directives of a Content-Security-Policy header, by name. */
function directives(header: string | string[] | undefined): Map<string, string[]> {
  assert.ok(typeof header === 'string', 'one Content-Security-Policy header');
  return new Map(
    header.split(';').map((directive) => {
      const [name, ...sources] = directive.trim().split(/\s+/);
      return [name!, sources];
    }),
  );
}

/** What the page's CSP must hold, whichever of its files carries it. */
function assertPagePolicy(header: string | string[] | undefined) {
  const policy = directives(header);
  assert.deepEqual(policy.get('default-src'), ["'none'"]);
  assert.deepEqual(policy.get('script-src'), ["'self'"], 'scripts from the page only, none inline');
  assert.deepEqual(policy.get('style-src'), ["'self'"]);
  assert.deepEqual(policy.get('connect-src'), ["'self'"]);
  assert.deepEqual(policy.get('frame-ancestors'), ["'none'"]);
  assert.deepEqual(policy.get('require-trusted-types-for'), ["'script'"]);
  // The videos and thumbnails of vlogs: signed links on the API's public URL (local storage)
  // and on HTTPS (S3-compatible storage, Cloud Storage).
  for (const name of ['media-src', 'img-src']) {
    assert.ok(
      policy.get(name)?.includes('http://api.test'),
      `${name} allows the API's media links`,
    );
    assert.ok(policy.get(name)?.includes('https:'), `${name} allows signed HTTPS links`);
  }
  for (const [name, sources] of policy) {
    assert.ok(
      !sources.some((source) => /unsafe-(inline|eval|hashes)/.test(source)),
      `${name} allows nothing unsafe`,
    );
  }
}

describe('the web page', () => {
  let h: Harness;
  const user = `web-${randomUUID().slice(0, 8)}`;
  const storage = new LocalMediaStorage(path.join(os.tmpdir(), `vlogflow-web-${randomUUID()}`), {
    publicUrl: 'http://api.test',
    secret: 's',
  });
  // The Google provider's settings pass the provider check, so uploads reach the file checks;
  // no worker polls, so nothing accepted would run (and nothing is accepted).
  const env = {
    VERTEX_PROJECT: 'p',
    VEO_OUTPUT_GCS_URI: 'gs://bucket/out/',
    GEMINI_API_KEY: 'k',
    VLOG_MAX_FILES: '2',
    VLOG_MAX_FILE_BYTES: String(100 * 1024),
  };
  before(async () => {
    h = await startHarness({ env, mediaStorage: storage });
  });
  after(() => h.stop());

  it('is served at / without a token, with a policy that forbids inline scripts', async () => {
    const response = await h.api.app.inject({ method: 'GET', url: '/' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/html; charset=utf-8/);
    assertPagePolicy(response.headers['content-security-policy']);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
    assert.equal(response.headers['x-frame-options'], 'DENY');
    assert.equal(response.headers['cache-control'], 'no-cache');
    // Nothing the policy would have to allow: every script has a src, no element a handler.
    const scripts = [...response.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    for (const [, attributes, content] of scripts) {
      assert.match(attributes!, /\bsrc="\/assets\/app-[A-Z0-9]+\.js"/);
      assert.equal(content!.trim(), '', 'no inline script');
    }
    assert.doesNotMatch(response.body, /\son[a-z]+=/i, 'no inline event handler');
    assert.doesNotMatch(response.body, /\sstyle=/i, 'no inline style');
  });

  it("serves the page's script and stylesheet under the same policy, cacheable for good", async () => {
    const page = (await h.api.app.inject({ method: 'GET', url: '/' })).body;
    const assets = [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map(([, url]) => url!);
    assert.deepEqual(
      assets.map((url) => path.extname(url)).sort(),
      ['.css', '.js'],
      'one stylesheet and one script',
    );
    for (const url of assets) {
      const response = await h.api.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200, url);
      assert.match(
        String(response.headers['content-type']),
        url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/,
      );
      assert.equal(response.headers['cache-control'], 'public, max-age=31536000, immutable');
      assertPagePolicy(response.headers['content-security-policy']);
      assert.ok(response.body.length > 1_000, `${url} has the page in it`);
    }
    const missing = await h.api.app.inject({ method: 'GET', url: '/assets/nothing-here.js' });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json<ErrorBody>().error, {
      code: 'ROUTE_NOT_FOUND',
      message: 'No route for GET /assets/nothing-here.js',
    });
  });

  it('serves the API reference at /docs, on the same origin, under a policy as strict', async () => {
    // Swagger UI shares the page's origin, and so the token the page keeps in its tab: nothing
    // injected into it may run, nor send anything elsewhere.
    const page = await h.api.app.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map(
      ([, url]) => new URL(url!, 'http://api.test/docs/').pathname,
    );
    assert.ok(assets.length >= 3, `the reference's scripts and styles: ${assets.join(', ')}`);
    for (const url of ['/docs', '/docs/', ...assets]) {
      const response = await h.api.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200, url);
      assert.equal(response.headers['x-frame-options'], 'DENY', url);
      const policy = directives(response.headers['content-security-policy']);
      assert.deepEqual(policy.get('default-src'), ["'none'"], url);
      assert.deepEqual(policy.get('script-src'), ["'self'"], `${url}: no inline script`);
      assert.deepEqual(policy.get('connect-src'), ["'self'"], `${url}: talks to this API only`);
      assert.deepEqual(policy.get('frame-ancestors'), ["'none'"], url);
      assert.deepEqual(policy.get('base-uri'), ["'none'"], url);
      for (const [name, sources] of policy) {
        assert.ok(
          !sources.some((source) => /unsafe-(inline|eval|hashes)/.test(source)),
          `${url}: ${name} allows nothing unsafe`,
        );
      }
    }
  });

  it('tells a signed-in client the upload limits this service was configured with', async () => {
    const anonymous = await h.api.app.inject({ method: 'GET', url: '/api/vlogs/upload-limits' });
    assert.equal(anonymous.statusCode, 401);
    const response = await h.user(user).get('/api/vlogs/upload-limits');
    assert.equal(response.statusCode, 200, response.body);
    const limits = response.json<UploadRules>();
    assert.equal(limits.maxFiles, 2);
    assert.equal(limits.maxFileBytes, 100 * 1024);
    assert.equal(limits.maxVideoSeconds, 1_800);
    assert.equal(limits.mediaTypes['video/mp4'], 'video');
    assert.equal(limits.mediaTypes['image/png'], 'image');
    assert.equal(limits.extensions['mov'], 'video');
  });

  it('checks files before upload in the words the API refuses them with', async () => {
    const rules = (await h.user(user).get('/api/vlogs/upload-limits')).json<UploadRules>();
    const file = (filename: string, contentType: string, bytes: Buffer): FormFile => ({
      field: 'media',
      filename,
      contentType,
      bytes,
    });
    const cases = [
      { files: [file('notes.txt', 'text/plain', Buffer.from('plain text'))], code: 415 },
      { files: [file('big.mp4', 'video/mp4', mp4Bytes(150 * 1024))], code: 413 },
      // A name the API does not keep: the page refused it only once sent, naming no file.
      { files: [file('holiday\u202Egnp.exe.png', 'image/png', pngBytes())], code: 400 },
      { files: [file(`${'a'.repeat(300)}.png`, 'image/png', pngBytes())], code: 400 },
    ];
    for (const { files, code } of cases) {
      const answer = await h
        .user(user)
        .postForm('/api/vlogs', multipartBody({ title: 'Checked' }, files));
      assert.equal(answer.statusCode, code, answer.body);
      // The refusal names the file as sent, for the page to mark it in its list.
      assert.equal(answer.json<ErrorBody>().error.details?.['file'], files[0]!.filename);
      const [sent] = files;
      const checked = checkFile(
        { name: sent!.filename, size: sent!.bytes.length, type: sent!.contentType },
        rules,
      );
      assert.deepEqual(
        checked,
        {
          code: answer.json<ErrorBody>().error.code,
          message: answer.json<ErrorBody>().error.message,
        },
        sent!.filename,
      );
    }
    const three = [1, 2, 3].map((n) => file(`p${n}.png`, 'image/png', pngBytes()));
    const tooMany = await h
      .user(user)
      .postForm('/api/vlogs', multipartBody({ title: 'Checked' }, three));
    assert.deepEqual(
      checkSelection(
        three.map((sent) => ({ name: sent.filename, size: sent.bytes.length, type: 'image/png' })),
        rules,
      ),
      tooMany.json<ErrorBody>().error,
    );
    const none = await h.user(user).postForm('/api/vlogs', multipartBody({ title: 'Checked' }, []));
    assert.deepEqual(checkSelection([], rules), none.json<ErrorBody>().error);
  });

  it('leaves no job behind for the refused uploads', async () => {
    await assertOnlyControlJobOf(h, user, 'vlog');
  });
});
