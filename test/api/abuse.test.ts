// Hostile clients over real sockets: what Node's HTTP server decides (header size, timeouts,
// stalled connections) never reaches Fastify's inject, so these tests talk TCP to a listening
// API with small limits. Every refusal must be quick, leave the process healthy and leave
// nothing behind: no job, no workflow, no stored object, no partial file.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { assertOnlyControlJobOf } from '../support/jobs.js';
import { assertStoredOnlyUploadOf, storedFiles } from '../support/stored-files.js';

interface ErrorBody {
  error: { code: string; message: string };
}

const limits = {
  bodyBytes: 1_048_576,
  fileBytes: 100 * 1024,
  idleMs: 1_000,
  headersMs: 1_000,
  requestMs: 3_000,
};

/** A raw TCP client: what it sends is up to the test; it records what comes back and when it closes. */
function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  const openedAt = Date.now();
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return {
    socket,
    write: (data: string | Buffer) => socket.write(data),
    received: () => received,
    /** Milliseconds from connecting until the server closed the connection; fails past the deadline. */
    async closedWithin(deadlineMs: number): Promise<number> {
      const deadline = new Promise<never>((_resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the server held the connection over ${deadlineMs} ms`)),
          deadlineMs,
        );
        void closed.then(() => clearTimeout(timer));
      });
      try {
        return (await Promise.race([closed, deadline])) - openedAt;
      } finally {
        socket.destroy();
      }
    },
  };
}

/** Status and JSON body of a raw HTTP/1.1 response. */
function parseResponse(raw: string): { status: number; body: ErrorBody } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
  return { status, body: JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as ErrorBody };
}

describe('abusive clients', { timeout: 120_000 }, () => {
  let h: Harness;
  let base: string;
  let port: number;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-abuse-${randomUUID()}`);

  before(async () => {
    h = await startHarness({
      env: {
        VERTEX_PROJECT: 'p',
        VEO_OUTPUT_GCS_URI: 'gs://bucket/out/',
        GEMINI_API_KEY: 'k',
        API_BODY_LIMIT_BYTES: String(limits.bodyBytes),
        VLOG_MAX_FILE_BYTES: String(limits.fileBytes),
        API_IDLE_TIMEOUT_MS: String(limits.idleMs),
        EVENT_STREAM_KEEPALIVE_MS: String(limits.idleMs / 2),
        API_HEADERS_TIMEOUT_MS: String(limits.headersMs),
        API_REQUEST_TIMEOUT_MS: String(limits.requestMs),
      },
      mediaStorage: new LocalMediaStorage(storageRoot, {
        publicUrl: 'http://api.test',
        secret: 's',
      }),
    });
    base = await h.api.listen();
    port = Number(new URL(base).port);
  });
  after(() => h.stop());

  async function assertHealthy(): Promise<void> {
    const response = await fetch(`${base}/healthz`);
    assert.equal(response.status, 200);
  }

  /** No job, no workflow: only a control probe of the same user, accepted after the refusal. */
  async function assertNoJobLeftBy(user: string): Promise<void> {
    await assertOnlyControlJobOf(h, user, 'probe');
  }

  /** No job, no workflow, no stored file: only a control vlog of the same user and its upload. */
  async function assertNothingLeftBy(user: string): Promise<void> {
    const control = await assertOnlyControlJobOf(h, user, 'vlog');
    await assertStoredOnlyUploadOf(storageRoot, h.db, control);
  }

  /** Request head of a POST whose body the test sends (or withholds) itself. */
  async function postHead(
    url: string,
    user: string,
    headers: Record<string, string | number>,
  ): Promise<string> {
    const lines = Object.entries({
      host: `127.0.0.1:${port}`,
      authorization: await h.user(user).authorization(),
      ...headers,
    }).map(([name, value]) => `${name}: ${value}`);
    return `POST ${url} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
  }

  it('answers 413 PAYLOAD_TOO_LARGE to a JSON body over the limit, declared or streamed', async () => {
    const user = `big-json-${randomUUID().slice(0, 8)}`;
    const auth = await h.user(user).authorization();
    const oversized = JSON.stringify({ steps: 1, padding: 'x'.repeat(limits.bodyBytes) });
    const declared = await fetch(`${base}/api/probes`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: oversized,
    });
    const chunks = [oversized.slice(0, 600_000), oversized.slice(600_000)];
    const streamed = await fetch(`${base}/api/probes`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(new TextEncoder().encode(next));
          else controller.close();
        },
      }),
      duplex: 'half',
    });
    for (const response of [declared, streamed]) {
      assert.equal(response.status, 413);
      const { error } = (await response.json()) as ErrorBody;
      assert.equal(error.code, 'PAYLOAD_TOO_LARGE');
      assert.match(error.message, /body/i);
    }
    await assertNoJobLeftBy(user);
    await assertHealthy();
  });

  it('answers 413 FILE_TOO_LARGE to an upload over the file limit and keeps none of it', async () => {
    const user = `big-file-${randomUUID().slice(0, 8)}`;
    const form = multipartBody({ title: 'Too big' }, [
      { field: 'media', filename: 'ok.png', contentType: 'image/png', bytes: pngBytes() },
      {
        field: 'media',
        filename: 'huge.png',
        contentType: 'image/png',
        bytes: pngBytes(3 * limits.fileBytes),
      },
    ]);
    const response = await fetch(`${base}/api/vlogs`, {
      method: 'POST',
      headers: { authorization: await h.user(user).authorization(), ...form.headers },
      body: form.payload,
    });
    assert.equal(response.status, 413);
    const { error } = (await response.json()) as ErrorBody;
    assert.equal(error.code, 'FILE_TOO_LARGE');
    assert.match(error.message, /^media: huge\.png is larger than the limit of 102400 bytes/);
    await assertNothingLeftBy(user);
    await assertHealthy();
  });

  it('refuses a header that takes one value given twice, before it reads who is calling', async () => {
    const user = `twice-${randomUUID().slice(0, 8)}`;
    const auth = await h.user(user).authorization();
    const body = '{"steps":1}';
    const requests = [
      {
        head: `GET /api/jobs HTTP/1.1\r\nAuthorization: ${auth}\r\nAuthorization: Bearer garbage\r\n`,
        field: 'headers.authorization',
      },
      {
        head:
          `POST /api/probes HTTP/1.1\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n` +
          `Idempotency-Key: one\r\nIdempotency-Key: two\r\nContent-Length: ${body.length}\r\n`,
        field: 'headers.idempotency-key',
        body,
      },
    ];
    for (const request of requests) {
      const client = rawClient(port);
      client.write(
        `${request.head}Host: 127.0.0.1\r\nConnection: close\r\n\r\n${request.body ?? ''}`,
      );
      await client.closedWithin(5_000);
      const { status, body: answer } = parseResponse(client.received());
      assert.equal(status, 400, client.received());
      assert.equal(answer.error.code, 'VALIDATION_FAILED');
      assert.equal(answer.error.message, `${request.field}: given more than once`);
    }
    await assertNoJobLeftBy(user);
  });

  // A parameter a hook judges before validation (the usage route's owner, a stream link's
  // access) given twice, or empty, is refused as the parameter it is, not judged on one value.
  it('refuses a repeated or empty parameter that a check before validation reads, naming it', async () => {
    const user = `repeated-${randomUUID().slice(0, 8)}`;
    const asUser = (url: string) => h.user(user).get(url);
    // A stream link stands in for the token: without one, the link is what says who calls.
    const asLinkHolder = (url: string) => h.api.app.inject({ method: 'GET', url });
    for (const [url, field, send] of [
      [`/api/usage?userId=${user}&userId=${user}`, 'querystring.userId', asUser],
      ['/api/usage?userId=', 'querystring.userId', asUser],
      ['/api/ai/jobs/some-job/events?access=x&access=x', 'querystring.access', asLinkHolder],
    ] as const) {
      const response = await send(url);
      assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED', url);
      assert.match(error.message, new RegExp(`^${field.replace('.', '\\.')}: `), url);
    }
  });

  it('reads JSON as UTF-8 only: another charset is a 415, bytes that are not UTF-8 a 400', async () => {
    const user = `charset-${randomUUID().slice(0, 8)}`;
    const auth = await h.user(user).authorization();
    const send = (contentType: string, body: Buffer) =>
      fetch(`${base}/api/probes`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': contentType },
        body,
      }).then(async (response) => ({
        status: response.status,
        error: ((await response.json()) as ErrorBody).error,
      }));
    const latin1 = Buffer.from('{"steps":1,"note":"caf\xe9"}', 'latin1');
    const cases = [
      {
        type: 'application/json; charset=iso-8859-1',
        body: latin1,
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: /^A JSON body in charset iso-8859-1 is not accepted here: expected UTF-8$/,
      },
      {
        type: 'application/json; charset="UTF-16LE"',
        body: Buffer.from('{"steps":1}', 'utf16le'),
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: /charset utf-16le/,
      },
      {
        type: 'application/json',
        body: latin1,
        status: 400,
        code: 'INVALID_JSON',
        message: /^Body is not valid UTF-8$/,
      },
      // RFC 8259 forbids sending one; told so, not shown an invisible character.
      {
        type: 'application/json',
        body: Buffer.from('\ufeff{"steps":1}'),
        status: 400,
        code: 'INVALID_JSON',
        message: /^Body starts with a byte order mark \(U\+FEFF\), which JSON may not have$/,
      },
      // Read, so refused only for the field it should not have.
      {
        type: 'application/json; charset=UTF-8',
        body: Buffer.from('{"steps":1,"note":"café"}'),
        status: 400,
        code: 'VALIDATION_FAILED',
        message: /^body\.note: unknown field/,
      },
    ];
    for (const testCase of cases) {
      const { status, error } = await send(testCase.type, testCase.body);
      assert.equal(status, testCase.status, `${testCase.type}: ${JSON.stringify(error)}`);
      assert.equal(error.code, testCase.code);
      assert.match(error.message, testCase.message);
    }
    await assertNoJobLeftBy(user);
  });

  it('refuses JSON nested deeper than it reads before parsing it, and stays healthy', async () => {
    const user = `nested-${randomUUID().slice(0, 8)}`;
    const auth = await h.user(user).authorization();
    const depth = 100_000;
    const tooDeep = /^Body nests arrays and objects more than 32 levels deep$/;
    const cases = [
      { url: '/api/probes', body: `${'['.repeat(depth)}${']'.repeat(depth)}`, message: tooDeep },
      { url: '/api/probes', body: '['.repeat(depth), message: tooDeep },
      {
        url: '/api/ai/jobs',
        body: `{"type":"SUBGOAL_GENERATION","input":{"goal":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`,
        message: tooDeep,
      },
      // Brackets inside strings (escaped quotes too) are text, not nesting.
      {
        url: '/api/probes',
        body: `{"steps":1,"note":"${'[{\\"'.repeat(depth)}"}`,
        code: 'VALIDATION_FAILED',
        message: /^body\.note: unknown field/,
      },
      // As deep as allowed: read, then checked as any body is, to the bottom.
      {
        url: '/api/probes',
        body: `${'['.repeat(32)}"\\u0000"${']'.repeat(32)}`,
        code: 'VALIDATION_FAILED',
        message: /^body(\.0){32}: must not contain NUL characters/,
      },
    ];
    for (const testCase of cases) {
      const startedAt = Date.now();
      const response = await fetch(`${base}${testCase.url}`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: testCase.body,
      });
      const elapsed = Date.now() - startedAt;
      const { error } = (await response.json()) as ErrorBody;
      assert.equal(response.status, 400, JSON.stringify(error));
      assert.equal(error.code, testCase.code ?? 'INVALID_JSON');
      assert.match(error.message, testCase.message);
      assert.ok(elapsed < 2_000, `answered in ${elapsed} ms`);
    }
    await assertNoJobLeftBy(user);
    await assertHealthy();
  });

  it('answers 431 HEADERS_TOO_LARGE to 64 KB of headers, and stays healthy', async () => {
    const client = rawClient(port);
    client.write(
      `GET /api/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    await client.closedWithin(5_000);
    const { status, body } = parseResponse(client.received());
    assert.equal(status, 431);
    assert.equal(body.error.code, 'HEADERS_TOO_LARGE');
    assert.match(client.received(), /\r\nX-Content-Type-Options: nosniff\r\n/i);
    await assertHealthy();
  });

  it('answers 414 URL_TOO_LONG to a URL over API_MAX_URL_BYTES, below the header limit', async () => {
    const auth = await h.user(`long-url-${randomUUID().slice(0, 8)}`).authorization();
    /** A GET of `url` over a socket, with or without a token. */
    async function get(url: string, token: boolean) {
      const client = rawClient(port);
      const authorization = token ? `authorization: ${auth}\r\n` : '';
      client.write(
        `GET ${url} HTTP/1.1\r\nhost: 127.0.0.1\r\n${authorization}connection: close\r\n\r\n`,
      );
      await client.closedWithin(5_000);
      return parseResponse(client.received());
    }
    // The default limits: 8,192 bytes of URL, 16,384 of request line and headers.
    const padded = (prefix: string, bytes: number) =>
      `${prefix}${'a'.repeat(bytes - prefix.length)}`;
    for (const [url, token] of [
      [padded('/api/jobs/', 16_000), true],
      [padded('/api/jobs?cursor=', 8_193), true],
      [padded('/api/jobs/', 8_193), false],
      [padded('/no-such-route/', 12_000), false],
    ] as const) {
      const { status, body } = await get(url, token);
      assert.equal(status, 414, `${url.length} bytes: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'URL_TOO_LONG');
      assert.match(body.error.message, new RegExp(`is ${url.length} bytes long.* at most 8192$`));
    }
    // At the limit, the route's own rules answer.
    const atLimit = await get(padded('/api/jobs/', 8_192), true);
    assert.equal(atLimit.status, 400);
    assert.match(atLimit.body.error.message, /^params\.id: /);
    // Past the header limit, Node refuses the request line before the API sees it.
    const overHeaders = await get(padded('/api/jobs/', 16_390), true);
    assert.equal(overHeaders.status, 431);
    assert.equal(overHeaders.body.error.code, 'HEADERS_TOO_LARGE');
    await assertHealthy();
  });

  it('answers in the error envelope what Node would refuse with a bare status: no Host, an unknown Expect', async () => {
    const cases = [
      ['GET /healthz HTTP/1.1\r\n\r\n', 400, 'BAD_REQUEST', /must have a Host header/],
      [
        'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: 200-ok\r\n\r\n',
        417,
        'EXPECTATION_FAILED',
        /"200-ok" cannot be met/,
      ],
    ] as const;
    for (const [request, status, code, message] of cases) {
      const client = rawClient(port);
      client.write(request);
      await eventually(
        async () => client.received(),
        (text) => text.includes('}}'),
        { what: `the answer to ${JSON.stringify(request)}`, timeoutMs: 5_000 },
      );
      client.socket.destroy();
      const answer = parseResponse(client.received());
      assert.equal(answer.status, status, client.received());
      assert.equal(answer.body.error.code, code);
      assert.match(answer.body.error.message, message);
      assert.match(client.received(), /\r\nX-Content-Type-Options: nosniff\r\n/i);
    }
    // HTTP/1.0 has no Host header to require.
    const old = rawClient(port);
    old.write('GET /healthz HTTP/1.0\r\n\r\n');
    await old.closedWithin(5_000);
    assert.match(old.received(), /^HTTP\/1\.1 200 /);
    await assertHealthy();
  });

  it('closes a stalled upload after the idle timeout and keeps nothing of it', async () => {
    const user = `stalled-${randomUUID().slice(0, 8)}`;
    const form = multipartBody({ title: 'Stalled' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes(90 * 1024) },
    ]);
    const client = rawClient(port);
    client.write(
      await postHead('/api/vlogs', user, {
        ...form.headers,
        'content-length': form.payload.length,
      }),
    );
    // Well past the bytes a type sniffer reads, so the file is already streaming into storage.
    client.write(form.payload.subarray(0, 40 * 1024));
    await eventually(
      () => storedFiles(storageRoot),
      (files) => files.some((file) => file.endsWith('.partial')),
      {
        timeoutMs: 5_000,
        what: 'the upload streaming into storage',
      },
    );
    const closedAfter = await client.closedWithin(limits.idleMs + 5_000);
    assert.ok(closedAfter >= limits.idleMs - 50, `closed after ${closedAfter} ms`);
    await assertNothingLeftBy(user);
    await assertHealthy();
  });

  it('closes a connection that sends headers and then nothing', async () => {
    const user = `headers-only-${randomUUID().slice(0, 8)}`;
    const client = rawClient(port);
    client.write(
      await postHead('/api/probes', user, {
        'content-type': 'application/json',
        'content-length': 100,
      }),
    );
    const closedAfter = await client.closedWithin(limits.idleMs + 5_000);
    assert.ok(closedAfter >= limits.idleMs - 50, `closed after ${closedAfter} ms`);
    await assertNoJobLeftBy(user);
    await assertHealthy();
  });

  it('answers 408 to a client that trickles its headers', async () => {
    const client = rawClient(port);
    client.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    // One header byte at a time, each well within the idle timeout.
    const trickle = setInterval(() => client.write('x'), limits.idleMs / 4);
    try {
      const closedAfter = await client.closedWithin(limits.headersMs + 5_000);
      assert.ok(closedAfter >= limits.headersMs - 50, `closed after ${closedAfter} ms`);
    } finally {
      clearInterval(trickle);
    }
    const { status, body } = parseResponse(client.received());
    assert.equal(status, 408);
    assert.equal(body.error.code, 'REQUEST_TIMEOUT');
  });

  it('answers 408 to an upload trickled slower than the request timeout and keeps nothing', async () => {
    const user = `trickled-${randomUUID().slice(0, 8)}`;
    const form = multipartBody({ title: 'Trickled' }, [
      { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes(90 * 1024) },
    ]);
    const client = rawClient(port);
    client.write(
      await postHead('/api/vlogs', user, {
        ...form.headers,
        'content-length': form.payload.length,
      }),
    );
    let sent = 0;
    const trickle = setInterval(() => {
      client.write(form.payload.subarray(sent, sent + 1024));
      sent += 1024;
    }, limits.idleMs / 4);
    try {
      const closedAfter = await client.closedWithin(limits.requestMs + 5_000);
      assert.ok(closedAfter >= limits.requestMs - 50, `closed after ${closedAfter} ms`);
    } finally {
      clearInterval(trickle);
    }
    assert.ok(sent < form.payload.length, 'the whole upload went through before the timeout');
    const { status, body } = parseResponse(client.received());
    assert.equal(status, 408);
    assert.equal(body.error.code, 'REQUEST_TIMEOUT');
    await assertNothingLeftBy(user);
    await assertHealthy();
  });
});
