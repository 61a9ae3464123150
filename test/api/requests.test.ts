import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { insertJob } from '../../src/db/jobs.js';
import { repositoryRoot } from '../support/docs.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';
import { assertOnlyControlJobOf, jobRecord } from '../support/jobs.js';
import { documentedOperations } from '../support/openapi.js';
import { freePort } from '../support/ports.js';

interface ErrorBody {
  error: {
    code: string;
    message: string;
    details?: { issues?: { field: string; message: string }[] };
  };
}

// Nothing here reaches a worker: every request below but the one started with no body must be
// rejected before a job exists.
describe('request handling', () => {
  let h: Harness;
  let rejected: UserClient;
  const user = `rejected-${Date.now()}`;
  before(async () => {
    h = await startHarness();
    rejected = h.user(user);
  });
  after(() => h.stop());

  async function rejectedProbe(payload: string, contentType = 'application/json') {
    const response = await rejected.post('/api/probes', payload, { 'content-type': contentType });
    return { status: response.statusCode, body: response.json<ErrorBody>() };
  }

  it('names the field of each validation error and rejects unknown properties', async () => {
    const { status, body } = await rejectedProbe(
      JSON.stringify({ steps: 0, stepDelayMs: 'soon', colour: 'red' }),
    );
    assert.equal(status, 400);
    assert.equal(body.error.code, 'VALIDATION_FAILED');
    const fields = body.error.details?.issues?.map((issue) => issue.field).sort();
    assert.deepEqual(fields, ['body.colour', 'body.stepDelayMs', 'body.steps']);
    assert.match(body.error.message, /body\.steps: /);
    assert.match(body.error.message, /body\.colour: unknown field/);
  });

  it('says a field the request left out is required, in the body and in a multipart form', async () => {
    const ai = await rejected.post('/api/ai/jobs', { type: 'SUBGOAL_GENERATION', input: {} });
    assert.equal(ai.statusCode, 400, ai.body);
    assert.deepEqual(ai.json<ErrorBody>().error.details?.issues, [
      { field: 'body.input.goal', message: 'required' },
    ]);
    const form = new FormData();
    form.append('durationSeconds', '8');
    const vlog = await rejected.post('/api/vlogs', form);
    assert.equal(vlog.statusCode, 400, vlog.body);
    assert.match(vlog.json<ErrorBody>().error.message, /body\.title: required/);
    // A field sent with the wrong kind of value is still told so.
    const wrong = await rejectedProbe(JSON.stringify({ steps: 'five' }));
    assert.deepEqual(wrong.body.error.details?.issues, [
      { field: 'body.steps', message: 'Invalid input: expected number, received string' },
    ]);
  });

  it('answers INVALID_JSON for a malformed body, saying why', async () => {
    const { status, body } = await rejectedProbe('{"steps": ');
    assert.equal(status, 400);
    assert.equal(body.error.code, 'INVALID_JSON');
    assert.match(body.error.message, /^Body is not valid JSON: .*JSON/);
    const empty = await rejectedProbe('');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'INVALID_JSON');
    // Read for its depth and keys before it is parsed: a string never closed, a key repeated
    // in malformed text or a bad escape in a key is still told as malformed JSON.
    for (const malformed of ['{"steps', '{"steps":1,"steps', '{"st\\u00zzeps":1,"steps":2}']) {
      const refused = await rejectedProbe(malformed);
      assert.equal(refused.status, 400, malformed);
      assert.equal(refused.body.error.code, 'INVALID_JSON', malformed);
    }
  });

  it('starts a probe with its defaults when the request has no body at all', async () => {
    const user = `no-body-${randomUUID().slice(0, 8)}`;
    const response = await h.user(user).post('/api/probes');
    assert.equal(response.statusCode, 202, response.body);
    h.terminateOnStop(response.json<{ id: string }>().id);
    const job = await h.db
      .selectFrom('jobs')
      .select('input')
      .where('id', '=', response.json<{ id: string }>().id)
      .executeTakeFirstOrThrow();
    assert.deepEqual(job.input, { steps: 5, stepDelayMs: 1_000 });
  });

  it('refuses a JSON body that is no object, null included, rather than take the defaults', async () => {
    for (const [payload, received] of [
      ['null', 'null'],
      [' null ', 'null'],
      ['[]', 'array'],
      ['5', 'number'],
      ['"steps"', 'string'],
    ] as const) {
      const { status, body } = await rejectedProbe(payload);
      assert.equal(status, 400, payload);
      assert.equal(body.error.code, 'VALIDATION_FAILED', payload);
      assert.deepEqual(
        body.error.details?.issues,
        [{ field: 'body', message: `Invalid input: expected object, received ${received}` }],
        payload,
      );
    }
    // Nor does a cancel (whose body is optional) or a route that takes none read null as none.
    for (const url of ['/api/probes/x/cancel', '/api/vlogs/x/retry', '/api/vlogs/x/events/link']) {
      const sent = await rejected.post(url, 'null', { 'content-type': 'application/json' });
      assert.equal(sent.statusCode, 400, `${url}: ${sent.body}`);
      const [issue] = sent.json<ErrorBody>().error.details?.issues ?? [];
      assert.equal(issue?.field, 'body', url);
      // Without a body the request is read, and the job looked for.
      assert.equal((await rejected.post(url)).statusCode, 404, url);
    }
  });

  it('answers INVALID_JSON naming a forbidden key that could change a prototype', async () => {
    for (const [payload, key] of [
      ['{"steps":2,"__proto__":{"x":1}}', 'body.__proto__'],
      [
        '{"steps":2,"note":{"constructor":{"prototype":{"x":1}}}}',
        'body.note.constructor.prototype',
      ],
      ['{"steps":2,"list":[1,{"a":{"__proto__":null}}]}', 'body.list.1.a.__proto__'],
      ['[{"constructor":{"prototype":1}}]', 'body.0.constructor.prototype'],
    ] as const) {
      const { status, body } = await rejectedProbe(payload);
      assert.equal(status, 400, payload);
      assert.equal(body.error.code, 'INVALID_JSON', payload);
      assert.equal(
        body.error.message,
        `Body holds a forbidden key: ${key} (no object in a body may have "__proto__", nor a "constructor" with "prototype")`,
      );
    }
    // Harmless keys of those names pass to the schema, which names what it does not take.
    const { status, body } = await rejectedProbe('{"steps":1,"constructor":"x","prototype":{}}');
    assert.equal(status, 400);
    assert.equal(body.error.code, 'VALIDATION_FAILED');
  });

  it('answers VALIDATION_FAILED naming a key an object of the body holds twice', async () => {
    for (const [payload, field] of [
      ['{"steps":1,"steps":2}', 'body.steps'],
      ['{"steps":1,"stepDelayMs":0,"st\\u0065ps":2}', 'body.steps'],
      ['{"note":{"a":[{"b":1},{"b":2,"c":"{\\"b\\":[","c":3}]}}', 'body.note.a.1.c'],
      ['[1,{"x":{},"x":{}}]', 'body.1.x'],
    ] as const) {
      const { status, body } = await rejectedProbe(payload);
      assert.equal(status, 400, payload);
      assert.equal(body.error.code, 'VALIDATION_FAILED', payload);
      assert.equal(body.error.message, `${field}: given more than once`, payload);
    }
    // The same key in two objects, and a value that reads like a key, are no repeat.
    const { status, body } = await rejectedProbe('{"steps":1,"a":{"steps":1},"b":"steps"}');
    assert.equal(status, 400);
    assert.match(body.error.message, /^body\.a: unknown field/);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const { status, body } = await rejectedProbe('steps=3', 'text/plain');
    assert.equal(status, 415);
    assert.equal(body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('names the body type each route takes when it refuses another, on every route with a body', async () => {
    const operator = h.admin(user);
    const wrong: string[] = [];
    let checked = 0;
    for (const { method, path, url, bodyTypes } of await documentedOperations(h.api.app)) {
      if (bodyTypes.length === 0) continue;
      const [accepted, ...others] = bodyTypes;
      assert.deepEqual(others, [], `${method} ${path} takes one body type`);
      for (const [contentType, sent] of [
        ['text/plain', 'A body of type text/plain'],
        [
          'application/x-www-form-urlencoded; charset=utf-8',
          'A body of type application/x-www-form-urlencoded',
        ],
        [undefined, 'A body without a Content-Type'],
      ] as const) {
        checked += 1;
        const response = await operator.request({
          method,
          url,
          payload: Buffer.from('steps=3'),
          headers: contentType ? { 'content-type': contentType } : {},
        });
        const { error } = response.json<ErrorBody>();
        const expected = `${sent} is not accepted here: expected ${accepted}`;
        if (
          response.statusCode !== 415 ||
          error.code !== 'UNSUPPORTED_MEDIA_TYPE' ||
          error.message !== expected
        ) {
          wrong.push(`${method} ${url} ${contentType}: ${response.statusCode} ${response.body}`);
        }
      }
    }
    assert.ok(checked >= 18, `${checked} requests`);
    assert.deepEqual(wrong, []);
  });

  it('answers 413 for a body over the limit', async () => {
    const { status, body } = await rejectedProbe(
      JSON.stringify({ steps: 1, padding: 'x'.repeat(70 * 1024) }),
    );
    assert.equal(status, 413);
    assert.equal(body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses text the database cannot store in a body, naming the field', async () => {
    for (const [payload, field] of [
      ['{"steps":1,"stepDelayMs":0,"note":"a\\u0000b"}', 'body.note'],
      ['{"steps":1,"stepDelayMs":0,"note":"\\ud800"}', 'body.note'],
    ] as const) {
      const { status, body } = await rejectedProbe(payload);
      assert.equal(status, 400, payload);
      assert.equal(body.error.code, 'VALIDATION_FAILED');
      assert.match(body.error.message, new RegExp(`^${field}: must not contain NUL characters`));
    }
  });

  it("answers an unknown job and another user's job with the same 404", async () => {
    const job = jobRecord({ ownerId: 'someone-else' });
    await insertJob(h.db, job, 'pending');
    const theirs = await rejected.get(`/api/jobs/${job.id}`);
    const unknown = await rejected.get('/api/jobs/probe-unknown');
    assert.equal(theirs.statusCode, 404);
    assert.equal(unknown.statusCode, 404);
    const strip = (body: ErrorBody) => ({
      ...body.error,
      message: body.error.message.replace(/\S+$/, '<id>'),
    });
    assert.deepEqual(strip(theirs.json<ErrorBody>()), strip(unknown.json<ErrorBody>()));
    assert.equal(theirs.json<ErrorBody>().error.code, 'NOT_FOUND');
  });

  it('rejects a cursor it did not issue and a page size out of range, naming the parameter', async () => {
    const badCursor = await rejected.get('/api/jobs?cursor=nonsense');
    assert.equal(badCursor.statusCode, 400);
    assert.match(badCursor.json<ErrorBody>().error.message, /querystring\.cursor/);
    const badLimit = await rejected.get('/api/jobs?limit=1000');
    assert.equal(badLimit.statusCode, 400);
    assert.match(badLimit.json<ErrorBody>().error.message, /querystring\.limit/);
  });

  it('names a query parameter given more than once, on every route that has any', async () => {
    // An operator, so the admin routes answer for their parameters too.
    const operator = h.admin(user);
    const wrong: string[] = [];
    let checked = 0;
    for (const { method, url, queryParameters } of await documentedOperations(h.api.app)) {
      for (const name of queryParameters) {
        checked += 1;
        const response = await operator.request({ method, url: `${url}?${name}=1&${name}=2` });
        const { error } = response.json<ErrorBody>();
        const field = `querystring.${name}`;
        if (
          response.statusCode !== 400 ||
          error.code !== 'VALIDATION_FAILED' ||
          error.message !== `${field}: given more than once` ||
          JSON.stringify(error.details) !==
            JSON.stringify({ issues: [{ field, message: 'given more than once' }] })
        ) {
          wrong.push(`${method} ${url} ${name}: ${response.statusCode} ${response.body}`);
        }
      }
    }
    assert.ok(checked >= 30, `${checked} query parameters`);
    assert.deepEqual(wrong, []);
  });

  it('refuses path and query text the database cannot store, naming the parameter', async () => {
    const cursorWithNul = Buffer.from(
      JSON.stringify({ createdAt: '2026-01-01T00:00:00.000Z', id: 'a\u0000' }),
    ).toString('base64url');
    for (const [url, field] of [
      ['/api/jobs/a%00b', 'params.id'],
      ['/api/jobs?kind=a%00b', 'querystring.kind'],
      [`/api/ai/jobs?cursor=${cursorWithNul}`, 'querystring.cursor'],
    ] as const) {
      const response = await rejected.get(url);
      assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, new RegExp(`^${field}: `));
    }
  });

  it('answers a path that does not percent-decode, and a long id, in the error envelope', async () => {
    const malformed = await rejected.get('/api/jobs/%E0%A4%A');
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json<ErrorBody>().error.code, 'INVALID_URL');
    // Longer than the id schema allows (and than Fastify's default 100-character parameter).
    const tooLong = await rejected.post(`/api/vlogs/${'v'.repeat(2_000)}/retry`);
    assert.equal(tooLong.statusCode, 400, tooLong.body);
    assert.match(tooLong.json<ErrorBody>().error.message, /^params\.id: /);
  });

  it('answers the client errors of plugins with the one code of their status, else 400 BAD_REQUEST', async () => {
    // The browsable reference's assets, served by @fastify/static, which answers conditions
    // and ranges itself.
    const asset = '/docs/static/index.css';
    const get = (headers: Record<string, string>) =>
      h.api.app.inject({ method: 'GET', url: asset, headers });
    assert.equal((await get({})).statusCode, 200);
    const range = await get({ range: 'bytes=99999999-' });
    assert.equal(range.statusCode, 416, range.body);
    assert.equal(range.json<ErrorBody>().error.code, 'RANGE_NOT_SATISFIABLE');
    // No code stands for 412: the API has none for it, so it answers as any other refusal.
    const precondition = await get({ 'if-match': '"another"' });
    assert.equal(precondition.statusCode, 400, precondition.body);
    assert.equal(precondition.json<ErrorBody>().error.code, 'BAD_REQUEST');
  });

  it('serves the browsable API docs at every address of them, each in at most one redirect, with every file it loads', async () => {
    /** Follows redirects as a browser does, failing on a loop; returns the final answer. */
    async function browse(url: string, redirects: string[] = []) {
      const response = await h.api.app.inject({ method: 'GET', url });
      const location = response.headers.location;
      if (typeof location !== 'string') return { url, response, redirects };
      const next = new URL(location, `http://api.test${url}`).pathname;
      assert.ok(
        !redirects.includes(next),
        `a redirect loop: ${[url, ...redirects, next].join(' → ')}`,
      );
      return browse(next, [...redirects, next]);
    }
    for (const address of ['/docs', '/docs/', '/docs/static/index.html']) {
      const { url, response, redirects } = await browse(address);
      assert.equal(response.statusCode, 200, `${address} → ${url}`);
      assert.ok(redirects.length <= 1, `${address}: ${redirects.join(' → ')}`);
      assert.match(String(response.headers['content-type']), /^text\/html/);
      // Relative to the page's own address, as the browser resolves them; the document is what
      // the page's script asks for (`./json` from the page's folder).
      const base = new URL(url.endsWith('/') ? url : `${url}/`, 'http://api.test');
      const files = [...response.body.matchAll(/(?:href|src)="([^"]+)"/g)].map(
        ([, file]) => new URL(file!, `http://api.test${url}`).pathname,
      );
      assert.ok(
        files.some((file) => file.endsWith('/swagger-initializer.js')),
        address,
      );
      for (const file of [...files, new URL('./json', base).pathname]) {
        const asset = await h.api.app.inject({ method: 'GET', url: file });
        assert.equal(asset.statusCode, 200, `${address}: ${file}`);
      }
    }
  });

  it('forbids framing and type sniffing on every answer: the API docs, reads, errors', async () => {
    for (const url of ['/docs', '/docs/', '/docs/json', '/healthz', '/api/jobs', '/nowhere']) {
      const response = await h.api.app.inject({ method: 'GET', url });
      assert.equal(response.headers['x-frame-options'], 'DENY', url);
      assert.equal(response.headers['x-content-type-options'], 'nosniff', url);
    }
  });

  // A client that sent PUT or DELETE where the path takes only GET was told the route does not
  // exist, which sends one looking for a typo in the path.
  it('answers a method a path does not take with 405 and the methods it takes', async () => {
    const cases = [
      { method: 'DELETE', url: '/healthz', allow: 'GET, HEAD' },
      { method: 'POST', url: '/', allow: 'GET, HEAD' },
      { method: 'PATCH', url: '/api/jobs/probe-x?fields=all', allow: 'GET, HEAD' },
    ] as const;
    for (const { method, url, allow } of cases) {
      const response = await rejected.request({ method, url });
      assert.equal(response.statusCode, 405, `${method} ${url}: ${response.body}`);
      assert.equal(response.headers['allow'], allow, `${method} ${url}`);
      const path = url.split('?')[0];
      assert.deepEqual(response.json<ErrorBody>().error, {
        code: 'METHOD_NOT_ALLOWED',
        message: `${method} is not taken by ${path}; it takes ${allow}`,
      });
    }
  });

  it('answers unknown routes with the error envelope', async () => {
    const response = await rejected.get('/api/nothing-here');
    assert.equal(response.statusCode, 404);
    assert.equal(response.json<ErrorBody>().error.code, 'ROUTE_NOT_FOUND');
  });

  // A route of the request's method that finds nothing there (a static file of the API docs)
  // answered 405 saying the path takes that very method.
  it('answers a file the docs do not have with 404, not 405', async () => {
    for (const url of ['/docs/static/nothing.js', '/docs/static/..%2f..%2fpackage.json']) {
      const response = await h.api.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 404, `${url}: ${response.body}`);
      assert.equal(response.json<ErrorBody>().error.code, 'ROUTE_NOT_FOUND', url);
      assert.equal(response.headers['allow'], undefined, url);
    }
  });

  it('describes every route, its errors and its security in the OpenAPI document', async () => {
    const doc = (await h.api.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { security?: unknown[]; responses: Record<string, unknown> }>
      >;
    }>();
    assert.match(doc.openapi, /^3\./);
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/api/admin/budgets/{userId}',
      '/api/admin/failure-groups',
      '/api/admin/redrives',
      '/api/ai/jobs',
      '/api/ai/jobs/{id}',
      '/api/ai/jobs/{id}/cancel',
      '/api/ai/jobs/{id}/events',
      '/api/ai/jobs/{id}/events/link',
      '/api/ai/jobs/{id}/retry',
      '/api/jobs',
      '/api/jobs/{id}',
      '/api/probes',
      '/api/probes/{id}/cancel',
      '/api/usage',
      '/api/vlogs',
      '/api/vlogs/upload-limits',
      '/api/vlogs/{id}',
      '/api/vlogs/{id}/cancel',
      '/api/vlogs/{id}/events',
      '/api/vlogs/{id}/events/link',
      '/api/vlogs/{id}/retry',
      '/healthz',
      '/media/{key}',
      '/readyz',
    ]);
    // The routes table of docs/api.md names every route the document has.
    const apiPage = await readFile(path.join(repositoryRoot, 'docs/api.md'), 'utf8');
    const undocumented = Object.entries(doc.paths).flatMap(([route, methods]) =>
      Object.keys(methods)
        .map((method) => `${method.toUpperCase()} ${route.replace(/\{(\w+)\}/g, ':$1')}`)
        .filter((named) => !route.startsWith('/media') && !apiPage.includes(`\`${named}`)),
    );
    assert.deepEqual(undocumented, [], 'routes missing from the table of docs/api.md');
    const post = doc.paths['/api/probes']?.['post'];
    assert.deepEqual(post?.security, [{ bearerAuth: [] }]);
    assert.ok(post?.responses['202'] && post.responses['400'] && post.responses['401']);
    assert.deepEqual(doc.paths['/healthz']?.['get']?.security, [], 'open, and saying so');
    // What a fuzzer found answered but undocumented: the rate limit on every authenticated
    // route, the body limit and content types on every route with a body, and signed links.
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const statuses = Object.keys(operation.responses);
        if (path.startsWith('/api/')) {
          for (const status of ['400', '401', '429']) {
            assert.ok(statuses.includes(status), `${method} ${path} documents ${status}`);
          }
        }
        if (method === 'post' && !/\/(retry|link)$/.test(path)) {
          for (const status of ['413', '415']) {
            assert.ok(statuses.includes(status), `${method} ${path} documents ${status}`);
          }
        }
      }
    }
    assert.deepEqual(Object.keys(doc.paths['/media/{key}']?.['get']?.responses ?? {}).sort(), [
      '200',
      '206',
      '400',
      '403',
      '404',
      '410',
      '416',
    ]);
  });

  it('documents what every /api route answers before it reads the request: a stream link, keys out of reach', async () => {
    // Keys that cannot be fetched are 503 AUTH_UNAVAILABLE on every route, whatever it is.
    const keysOutOfReach = await h.startApi({
      env: {
        AUTH_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json`,
        AUTH_ISSUER: 'https://id.example.test/',
        AUTH_AUDIENCE: 'vlogflow-api',
      },
    });
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const providerToken = `${part({ alg: 'RS256', kid: 'key-1' })}.${part({ sub: 'alice' })}.c2ln`;
    const operations = (await documentedOperations(h.api.app)).filter((operation) =>
      operation.path.startsWith('/api/'),
    );
    for (const operation of operations) {
      const what = `${operation.method} ${operation.path}`;
      // A stream link anywhere but the stream it opens is 403 STREAM_LINK_INVALID.
      const linked = await h.api.app.inject({
        method: operation.method,
        url: `${operation.url}?access=1.YQ.${'x'.repeat(43)}`,
      });
      assert.ok(
        operation.responses.includes(String(linked.statusCode)),
        `${what} answers ${linked.statusCode} to a stream link, undocumented: ${linked.body}`,
      );
      const unavailable = await keysOutOfReach.app.inject({
        method: operation.method,
        url: operation.url,
        headers: { authorization: `Bearer ${providerToken}` },
      });
      assert.equal(unavailable.json<ErrorBody>().error.code, 'AUTH_UNAVAILABLE', what);
      assert.ok(operation.responses.includes('503'), `${what} answers 503, undocumented`);
    }
  });

  it('declares the headers its answers carry, so a generated client types them', async () => {
    const document = (await h.api.app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { responses: Record<string, { headers?: object }> }>>;
    }>();
    const headersOf = (path: string, method: string, status: string) =>
      Object.keys(document.paths[path]?.[method]?.responses[status]?.headers ?? {});
    const read = headersOf('/api/jobs/{id}', 'get', '200');
    for (const name of ['ETag', 'X-Poll-Interval', 'Cache-Control', 'RateLimit-Remaining']) {
      assert.ok(read.includes(name), `GET /api/jobs/{id} 200: ${name}`);
    }
    assert.ok(headersOf('/api/jobs/{id}', 'get', '304').includes('ETag'));
    for (const name of ['Idempotent-Replayed', 'Location']) {
      assert.ok(headersOf('/api/probes', 'post', '202').includes(name), `start 202: ${name}`);
    }
    assert.ok(headersOf('/api/vlogs/{id}/retry', 'post', '202').includes('Idempotent-Replayed'));
    assert.ok(headersOf('/api/probes', 'post', '429').includes('Retry-After'));
    assert.ok(headersOf('/api/jobs', 'get', '401').includes('WWW-Authenticate'));
    // And the answers carry what is declared (another user: this one makes no job).
    const starter = h.user(`headers-${randomUUID()}`);
    const probe = await starter.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(probe.statusCode, 202, probe.body);
    for (const name of ['idempotent-replayed', 'location', 'ratelimit-remaining']) {
      assert.ok(probe.headers[name] !== undefined, `start answer: ${name}`);
    }
    const view = await starter.get(probe.headers.location as string);
    for (const name of ['etag', 'cache-control', 'ratelimit-limit']) {
      assert.ok(view.headers[name] !== undefined, `view answer: ${name}`);
    }
  });

  it('documents a body as required exactly where a request without one is refused', async () => {
    // An operator, so the admin routes read the request; the probe it starts is its own.
    const operator = h.admin(`operator-${randomUUID().slice(0, 8)}`);
    const withBodies = (await documentedOperations(h.api.app)).filter(
      (operation) => operation.bodyTypes.length > 0,
    );
    assert.ok(withBodies.some((operation) => !operation.bodyRequired));
    for (const operation of withBodies) {
      const what = `${operation.method} ${operation.path}`;
      const response = await operator.request({ method: operation.method, url: operation.url });
      if (response.statusCode === 202) h.terminateOnStop(response.json<{ id: string }>().id);
      const issues = response.statusCode === 400 ? response.json<ErrorBody>().error.details : null;
      const refusedForBody =
        response.statusCode === 415 ||
        (issues?.issues ?? []).some((issue) => issue.field.startsWith('body'));
      assert.equal(operation.bodyRequired, refusedForBody, `${what}: ${response.body}`);
    }
  });

  it("passes Redocly's recommended lint with no error: a good input for generated clients", async () => {
    const source = (await h.api.app.inject({ method: 'GET', url: '/openapi.json' })).body;
    const problems = await lintFromString({
      source,
      absoluteRef: 'openapi.json',
      config: await createConfig({ extends: ['recommended'] }),
    });
    assert.deepEqual(
      problems.map(
        (problem) => `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}`,
      ),
      // The only warnings left are true: the project names no license, and the health probes
      // answer nothing in 4xx.
      [
        'warn info-license at #/info',
        'warn operation-4xx-response at #/paths/~1healthz/get/responses',
        'warn operation-4xx-response at #/paths/~1readyz/get/responses',
      ],
    );
    const { paths } = JSON.parse(source) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const operationIds = Object.values(paths).flatMap((methods) =>
      Object.values(methods).map((operation) => operation.operationId),
    );
    assert.ok(operationIds.length >= 18);
    assert.ok(operationIds.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)));
    assert.equal(new Set(operationIds).size, operationIds.length, 'operationIds are unique');
  });

  // Last, so every rejected request above has been made.
  it('leaves no job row and no workflow behind for rejected requests', async () => {
    await assertOnlyControlJobOf(h, user, 'probe');
  });
});
