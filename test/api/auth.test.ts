import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { mintToken } from '../../src/auth.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness, type TestApi } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { documentedOperations } from '../support/openapi.js';
import { fromSource, projectRoot } from '../support/processes.js';

interface ErrorBody {
  error: { code: string; message: string };
}

const secret = new TextEncoder().encode(testJwtSecret);
const hour = 3_600;
const day = 24 * hour;
/** The defaults of AUTH_MAX_TOKEN_LIFETIME_SECONDS and AUTH_CLOCK_SKEW_SECONDS. */
const maxLifetime = day;
const skew = 60;

const seconds = () => Math.floor(Date.now() / 1000);
const base64url = (value: object | string | Buffer) =>
  (Buffer.isBuffer(value)
    ? value
    : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))
  ).toString('base64url');

/** Signs the bytes of a compact JWS: `header.payload`. */
type Signer = (signingInput: string) => Promise<Buffer>;

/**
 * A JWT built by hand, so its claims can be any JSON (or not JSON at all): jose's builder
 * refuses most of what these tests need to send.
 */
async function rawToken(
  header: object | string,
  payload: object | string | Buffer,
  sign: Signer,
): Promise<string> {
  const input = `${base64url(header)}.${base64url(payload)}`;
  return `${input}.${(await sign(input)).toString('base64url')}`;
}

const signHs256: Signer = async (input) =>
  createHmac('sha256', testJwtSecret).update(input).digest();

type Claims = Record<string, unknown>;

interface Refusal {
  name: string;
  claims: (valid: Claims, now: number) => Claims;
  code: string;
  /** What the message must name. */
  names: RegExp;
}

const printableAscii = Array.from({ length: 0x7e - 0x20 }, (_, i) => String.fromCharCode(0x21 + i))
  .filter((char) => !`"'\\\``.includes(char))
  .join('');

/** Tokens that are signed correctly but whose claims break a rule, with the answer each gets. */
const refusals: Refusal[] = [
  ...(
    [
      ['an object', { id: 'alice' }],
      ['an array', ['alice']],
      ['a number', 42],
      ['null', null],
      ['true', true],
      ['empty', ''],
      ['with a NUL character', 'al\u0000ice'],
      ['6,000 characters long', 'a'.repeat(6_000)],
      ['129 characters long', 'a'.repeat(129)],
      ['with a space', 'alice smith'],
      ['with a newline', 'alice\nadmin'],
      ['with a tab', 'alice\t'],
      ['with DEL', 'alice\u007f'],
      ['with a double quote', 'alice"'],
      ['with a single quote', "o'brien"],
      ['with a backslash', 'dom\\alice'],
      ['with a backtick', 'alice`'],
      ['not ASCII', 'zoë'],
      ['an emoji', 'alice🙂'],
      ['an unpaired surrogate', 'alice\ud800'],
    ] as const
  ).map(([what, sub]): Refusal => ({
    name: `sub ${what}`,
    claims: (valid) => ({ ...valid, sub }),
    code: 'TOKEN_SUBJECT_INVALID',
    names: /\bsub\b/,
  })),
  {
    name: 'no sub',
    claims: ({ sub: _sub, ...valid }) => valid,
    code: 'TOKEN_SUBJECT_INVALID',
    names: /\bsub\b/,
  },
  ...(
    [
      ['iss', { name: 'issuer' }],
      ['iss', 7],
      ['aud', { name: 'api' }],
      ['aud', [1, 2]],
      ['aud', null],
      ['exp', { at: 1 }],
      ['exp', '9999999999'],
      ['exp', null],
      ['exp', true],
      ['nbf', { at: 1 }],
      ['nbf', '0'],
      ['iat', ['0']],
      ['iat', 'now'],
      ['jti', { id: 1 }],
    ] as const
  ).map(([claim, value]): Refusal => ({
    name: `${claim} as ${JSON.stringify(value)}`,
    claims: (valid) => ({ ...valid, [claim]: value }),
    code: 'TOKEN_CLAIM_INVALID',
    names: new RegExp(`\\b${claim}\\b`),
  })),
  {
    name: 'no exp',
    claims: ({ exp: _exp, ...valid }) => valid,
    code: 'TOKEN_EXPIRY_MISSING',
    names: /\bexp\b/,
  },
  {
    name: 'exp - iat one second over the maximum lifetime',
    claims: (valid, now) => ({ ...valid, iat: now - 10, exp: now - 10 + maxLifetime + 1 }),
    code: 'TOKEN_LIFETIME_TOO_LONG',
    names: /\bexp\b.*\biat\b/,
  },
  {
    name: 'a 10-year token',
    claims: (valid, now) => ({ ...valid, exp: now + 3_650 * day }),
    code: 'TOKEN_LIFETIME_TOO_LONG',
    names: /\bexp\b/,
  },
  {
    name: 'no iat and exp further than the maximum lifetime (and skew) from now',
    claims: ({ iat: _iat, ...valid }, now) => ({ ...valid, exp: now + maxLifetime + skew + 30 }),
    code: 'TOKEN_LIFETIME_TOO_LONG',
    names: /\bexp\b/,
  },
  {
    name: 'exp past the clock skew',
    claims: (valid, now) => ({ ...valid, iat: now - hour, exp: now - skew - 30 }),
    code: 'TOKEN_EXPIRED',
    names: /expired/,
  },
  {
    name: 'nbf past the clock skew',
    claims: (valid, now) => ({ ...valid, nbf: now + skew + 30 }),
    code: 'TOKEN_NOT_YET_VALID',
    names: /\bnbf\b/,
  },
  {
    name: 'iat past the clock skew',
    claims: (valid, now) => ({ ...valid, iat: now + skew + 30, exp: now + skew + 30 + hour }),
    code: 'TOKEN_NOT_YET_VALID',
    names: /\biat\b/,
  },
];

/** Tokens at the edges of the rules that must still be accepted. */
const acceptances: { name: string; claims: (valid: Claims, now: number) => Claims }[] = [
  { name: 'sub of 128 characters', claims: (valid) => ({ ...valid, sub: 'a'.repeat(128) }) },
  {
    name: 'sub of every allowed character',
    claims: (valid) => ({ ...valid, sub: printableAscii.slice(0, 128) }),
  },
  { name: 'sub of one character', claims: (valid) => ({ ...valid, sub: 'a' }) },
  {
    name: 'an identity-provider style sub',
    claims: (valid) => ({ ...valid, sub: 'google-oauth2|104726395620384759201' }),
  },
  {
    name: 'exp - iat exactly the maximum lifetime',
    claims: (valid, now) => ({ ...valid, iat: now, exp: now + maxLifetime }),
  },
  {
    name: 'no iat, exp an hour away',
    claims: ({ iat: _iat, ...valid }, now) => ({ ...valid, exp: now + hour }),
  },
  {
    name: 'nbf and iat within the clock skew',
    claims: (valid, now) => ({ ...valid, nbf: now + skew - 30, iat: now + skew - 30 }),
  },
  {
    name: 'exp passed within the clock skew',
    claims: (valid, now) => ({ ...valid, iat: now - hour, exp: now - skew + 30 }),
  },
  { name: 'a string jti and unknown claims', claims: (valid) => ({ ...valid, jti: 'x', x: {} }) },
];

/** Tokens that are not JWTs this API accepts at all. */
function malformed(header: Claims, valid: Claims, sign: Signer): [string, Promise<string>][] {
  return [
    ['garbage', Promise.resolve('not.a.jwt')],
    ['two parts', Promise.resolve(`${base64url(header)}.${base64url(valid)}`)],
    ['five parts', Promise.resolve('a.b.c.d.e')],
    ['a header that is not JSON', rawToken('{"alg":', valid, sign)],
    ['a header that is an array', rawToken(['HS256'], valid, sign)],
    ['claims that are not JSON', rawToken(header, '{"sub":"alice"', sign)],
    ['claims that are an array', rawToken(header, [valid], sign)],
    ['claims that are a string', rawToken(header, '"alice"', sign)],
    ['claims that are not UTF-8', rawToken(header, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), sign)],
    ['alg none', Promise.resolve(`${base64url({ alg: 'none' })}.${base64url(valid)}.`)],
    ['alg none with a signature', rawToken({ ...header, alg: 'none' }, valid, sign)],
    ['an unknown critical header', rawToken({ ...header, crit: ['x'], x: 1 }, valid, sign)],
    ['a signature of other claims', rawToken(header, valid, sign).then(swapClaims)],
    // Base64url decoders take padding: the same token, spelt otherwise.
    ['a padded signature', rawToken(header, valid, sign).then((token) => `${token}=`)],
    ['a signature spelt with a spare bit set', rawToken(header, valid, sign).then(spareBitSet)],
    [
      'padded claims',
      rawToken(header, valid, sign).then((token) => {
        const [head, claims, signature] = token.split('.');
        return `${head}.${claims}=.${signature}`;
      }),
    ],
  ];
}

/**
 * The same signature with the lowest bit of its last character set otherwise: that bit lies past
 * the signature's last byte (its length is no multiple of 3 bytes), so it decodes alike.
 */
function spareBitSet(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token.at(-1)!);
  const spelt = `${token.slice(0, -1)}${alphabet[last ^ 1]}`;
  assert.deepEqual(
    Buffer.from(spelt.split('.')[2]!, 'base64url'),
    Buffer.from(token.split('.')[2]!, 'base64url'),
  );
  return spelt;
}

/** The same signature over different claims: a forgery. */
function swapClaims(token: string): string {
  const [header, , signature] = token.split('.');
  return `${header}.${base64url({ sub: 'mallory', exp: seconds() + hour })}.${signature}`;
}

async function answer(api: TestApi, token: string) {
  const response = await api.app.inject({
    method: 'GET',
    url: '/api/jobs',
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: response.statusCode,
    code: response.statusCode === 200 ? null : response.json<ErrorBody>().error.code,
    message: response.statusCode === 200 ? '' : response.json<ErrorBody>().error.message,
    challenge: response.headers['www-authenticate'],
  };
}

/** What a 401 for a bearer token that was sent and refused challenges with (RFC 6750, 3). */
const invalidTokenChallenge = 'Bearer error="invalid_token"';

/** The claim rules, the same whichever way tokens are verified. */
function claimRules(
  setup: () => { api: TestApi; header: Claims; valid: (now: number) => Claims; sign: Signer },
) {
  it('answers 401 with one stable code per broken rule, naming the claim', async () => {
    const { api, header, valid, sign } = setup();
    const wrong: string[] = [];
    for (const refusal of refusals) {
      const now = seconds();
      const got = await answer(api, await rawToken(header, refusal.claims(valid(now), now), sign));
      if (
        got.status !== 401 ||
        got.code !== refusal.code ||
        !refusal.names.test(got.message) ||
        got.challenge !== invalidTokenChallenge
      ) {
        wrong.push(`${refusal.name} (want ${refusal.code}): ${JSON.stringify(got)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('accepts tokens at the edges of the rules', async () => {
    const { api, header, valid, sign } = setup();
    const wrong: string[] = [];
    for (const acceptance of acceptances) {
      const now = seconds();
      const got = await answer(
        api,
        await rawToken(header, acceptance.claims(valid(now), now), sign),
      );
      if (got.status !== 200 || got.challenge !== undefined) {
        wrong.push(`${acceptance.name}: ${JSON.stringify(got)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('answers 401 TOKEN_INVALID for malformed tokens, alg none and forged signatures', async () => {
    const { api, header, valid, sign } = setup();
    const wrong: string[] = [];
    for (const [name, token] of malformed(header, valid(seconds()), sign)) {
      const got = await answer(api, await token);
      if (
        got.status !== 401 ||
        got.code !== 'TOKEN_INVALID' ||
        got.challenge !== invalidTokenChallenge
      ) {
        wrong.push(`${name}: ${JSON.stringify(got)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
}

// Tokens here are built by hand on purpose: requests go through `api.app.inject`, not a user.
describe('authentication', () => {
  let h: Harness;
  let api: TestApi;
  before(async () => {
    h = await startHarness();
    api = h.api;
  });
  after(() => h.stop());

  async function codeFor(authorization?: string) {
    const response = await api.app.inject({
      method: 'GET',
      url: '/api/jobs',
      headers: authorization === undefined ? {} : { authorization },
    });
    assert.equal(response.statusCode, 401, response.body);
    const { error } = response.json<{ error: { code: string; message: string } }>();
    return { ...error, challenge: response.headers['www-authenticate'] };
  }

  it('answers 401 TOKEN_MISSING without an Authorization header, challenging for a Bearer token', async () => {
    const error = await codeFor();
    assert.equal(error.code, 'TOKEN_MISSING');
    assert.match(error.message, /Authorization header/);
    assert.equal(error.challenge, 'Bearer');
  });

  it('answers 401 TOKEN_INVALID for a header that is not a Bearer token', async () => {
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer']) {
      const error = await codeFor(header);
      assert.equal(error.code, 'TOKEN_INVALID', header);
      assert.equal(error.challenge, 'Bearer', `${header}: no token sent, so none is invalid`);
    }
  });

  it('answers 401 TOKEN_INVALID for a wrong secret or another HMAC algorithm', async () => {
    const forged = await mintToken('another-secret-that-is-long-enough-too!', 'alice');
    assert.deepEqual(
      { ...(await codeFor(`Bearer ${forged}`)), message: '' },
      { code: 'TOKEN_INVALID', message: '', challenge: invalidTokenChallenge },
    );
    const hs512 = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(secret);
    assert.equal((await codeFor(`Bearer ${hs512}`)).code, 'TOKEN_INVALID');
  });

  claimRules(() => ({
    api,
    header: { alg: 'HS256', typ: 'JWT' },
    valid: (now) => ({ sub: 'alice', iat: now, exp: now + hour }),
    sign: signHs256,
  }));

  it('challenges on every 401 of every route, a request without a token or with a bad one', async () => {
    const operations = (await documentedOperations(api.app)).filter(({ path }) =>
      path.startsWith('/api/'),
    );
    assert.ok(operations.length >= 20, `${operations.length} operations`);
    const wrong: string[] = [];
    for (const operation of operations) {
      for (const [authorization, code, challenge] of [
        [undefined, 'TOKEN_MISSING', 'Bearer'],
        ['Bearer not.a.jwt', 'TOKEN_INVALID', invalidTokenChallenge],
      ] as const) {
        const response = await api.app.inject({
          method: operation.method,
          url: operation.url,
          headers: authorization ? { authorization } : {},
        });
        const got = `${response.statusCode} ${response.json<ErrorBody>().error.code} ${String(response.headers['www-authenticate'])}`;
        if (got !== `401 ${code} ${challenge}`) {
          wrong.push(`${operation.method} ${operation.url}: ${got}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('writes nothing for a refused token: no request counted, no job', async () => {
    const counts = async () => ({
      jobs: (await h.db.selectFrom('jobs').select('id').execute()).length,
      windows: (await h.db.selectFrom('rate_limit_windows').select('owner_id').execute()).length,
    });
    const before = await counts();
    // A positive control: an accepted submission is counted, so a refusal that wrote would show.
    const accepted = await api.app.inject({
      method: 'POST',
      url: '/api/ai/jobs/none/cancel',
      headers: { authorization: `Bearer ${await mintToken(testJwtSecret, 'counted')}` },
    });
    assert.equal(accepted.statusCode, 404, accepted.body);
    const counted = await counts();
    assert.equal(counted.windows, before.windows + 1);
    const now = seconds();
    for (const sub of [{ id: 'alice' }, 'al\u0000ice', 'a'.repeat(6_000)]) {
      const token = await rawToken({ alg: 'HS256' }, { sub, iat: now, exp: now + hour }, signHs256);
      const response = await api.app.inject({
        method: 'POST',
        url: '/api/probes',
        headers: { authorization: `Bearer ${token}` },
        payload: { steps: 1 },
      });
      assert.equal(response.statusCode, 401, response.body);
    }
    assert.deepEqual(await counts(), counted);
  });

  it('accepts the tokens it mints itself (the start banner, npm run token)', async () => {
    assert.equal((await answer(api, await mintToken(testJwtSecret, 'local-dev'))).status, 200);
    for (const url of ['/healthz', '/openapi.json', '/docs/']) {
      assert.equal((await api.app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
  });
});

describe('token lifetime settings', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      env: { AUTH_MAX_TOKEN_LIFETIME_SECONDS: '600', AUTH_CLOCK_SKEW_SECONDS: '0' },
    });
  });
  after(() => h.stop());

  it('applies AUTH_MAX_TOKEN_LIFETIME_SECONDS and AUTH_CLOCK_SKEW_SECONDS', async () => {
    const now = seconds();
    const token = (claims: Claims) =>
      rawToken({ alg: 'HS256' }, { sub: 'alice', ...claims }, signHs256);
    assert.equal((await answer(h.api, await token({ iat: now, exp: now + 600 }))).status, 200);
    assert.equal(
      (await answer(h.api, await token({ iat: now, exp: now + 601 }))).code,
      'TOKEN_LIFETIME_TOO_LONG',
    );
    assert.equal(
      (await answer(h.api, await mintToken(testJwtSecret, 'alice'))).code,
      'TOKEN_LIFETIME_TOO_LONG',
    );
    assert.equal(
      (await answer(h.api, await token({ iat: now, nbf: now + 5, exp: now + 60 }))).code,
      'TOKEN_NOT_YET_VALID',
    );
  });

  it('refuses a token once it expires, though it was accepted (and remembered) before', async () => {
    const now = seconds();
    const token = await rawToken({ alg: 'HS256' }, { sub: 'alice', exp: now + 2 }, signHs256);
    assert.equal((await answer(h.api, token)).status, 200);
    assert.equal((await answer(h.api, token)).status, 200);
    const refused = await eventually(
      () => answer(h.api, token),
      (outcome) => outcome.status !== 200,
      { timeoutMs: 10_000, intervalMs: 100, what: 'the expired token refused' },
    );
    assert.deepEqual([refused.status, refused.code], [401, 'TOKEN_EXPIRED']);
  });
});

describe('npm run token', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());

  async function run(args: string[]): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [...fromSource, 'scripts/mint-token.ts', ...args],
        { cwd: projectRoot, env: { ...process.env, AUTH_JWT_SECRET: testJwtSecret } },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, output: `${stdout}${stderr}`.trim() }),
      );
    });
  }

  it('mints a token the API accepts, and refuses a lifetime or user id the API would not', async () => {
    const minted = await run(['alice']);
    assert.equal(minted.code, 0, minted.output);
    assert.deepEqual(await answer(h.api, minted.output), {
      status: 200,
      code: null,
      message: '',
      challenge: undefined,
    });
    const tooLong = await run(['alice', '30d']);
    assert.equal(tooLong.code, 2, tooLong.output);
    assert.match(tooLong.output, /AUTH_MAX_TOKEN_LIFETIME_SECONDS/);
    const badUser = await run(['alice smith']);
    assert.equal(badUser.code, 2, badUser.output);
    assert.match(badUser.output, /user id/);
  });

  it('refuses with exit code 2 an expiry already past and arguments it does not take, naming them', async () => {
    for (const [args, problem] of [
      [['alice', '--', '-5m'], /^A token expiring in "-5m" would be expired already$/],
      [['alice', '5m ago'], /^A token expiring in "5m ago" would be expired already$/],
      [['alice', '0s'], /^A token expiring in "0s" would be expired already$/],
      [['alice', '-5m'], /^Unknown option '-5'/],
      [['alice', '1h', '--bogus'], /^Unknown option '--bogus'/],
      [['alice', '1h', '--admin', '--admin'], /^--admin: given more than once$/],
      [['alice', '1h', 'bob'], /^unexpected argument "bob"$/],
      [[], /^no user id given$/],
    ] as const) {
      const refused = await run([...args]);
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.output}`);
      const [message, usage] = refused.output.split('\n');
      assert.match(message ?? '', problem, refused.output);
      assert.match(usage ?? '', /^usage: npm run token -- /, refused.output);
    }
    const help = await run(['--help']);
    assert.equal(help.code, 0, help.output);
    assert.match(help.output, /^usage: npm run token -- /);
  });
});

describe('authentication against an identity provider (JWKS)', () => {
  let h: Harness;
  let api: TestApi;
  let unreachable: TestApi;
  let server: Server;
  let privateKey: CryptoKey;
  let strangerKey: CryptoKey;
  const issuer = 'https://id.example.test/';
  const audience = 'vlogflow-api';

  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey;
    strangerKey = (await generateKeyPair('RS256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const env = { AUTH_ISSUER: issuer, AUTH_AUDIENCE: audience };
    h = await startHarness({
      env: { ...env, AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json` },
    });
    api = h.api;
    unreachable = await h.startApi({
      env: { ...env, AUTH_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json` },
    });
  });
  after(async () => {
    await h.stop();
    server.close();
  });

  function token(
    claims: { iss?: string; aud?: string; exp?: number } = {},
    key: CryptoKey = privateKey,
  ) {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'key-1' })
      .setSubject('auth0|alice')
      .setIssuer(claims.iss ?? issuer)
      .setAudience(claims.aud ?? audience)
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '1h')
      .sign(key);
  }

  const signRs256: Signer = async (input) =>
    Buffer.from(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', privateKey, Buffer.from(input)));

  it("accepts a token signed with the provider's key for the right issuer and audience", async () => {
    assert.deepEqual(await answer(api, await token()), {
      status: 200,
      code: null,
      message: '',
      challenge: undefined,
    });
  });

  it('answers 401 with a stable code for a wrong audience, issuer, key, algorithm or expiry', async () => {
    const code = async (bearer: string) => {
      const got = await answer(api, bearer);
      return { status: got.status, code: got.code };
    };
    assert.deepEqual(await code(await token({ aud: 'another-api' })), {
      status: 401,
      code: 'TOKEN_CLAIM_INVALID',
    });
    assert.deepEqual(await code(await token({ iss: 'https://evil.test/' })), {
      status: 401,
      code: 'TOKEN_CLAIM_INVALID',
    });
    assert.deepEqual(await code(await token({}, strangerKey)), {
      status: 401,
      code: 'TOKEN_INVALID',
    });
    assert.deepEqual(await code(await mintToken(testJwtSecret, 'alice', { issuer, audience })), {
      status: 401,
      code: 'TOKEN_INVALID',
    });
    assert.deepEqual(await code(await token({ exp: seconds() - 3_600 })), {
      status: 401,
      code: 'TOKEN_EXPIRED',
    });
    const unknownKey = await rawToken(
      { alg: 'RS256', kid: 'key-2' },
      { sub: 'alice', iss: issuer, aud: audience, exp: seconds() + hour },
      signRs256,
    );
    assert.deepEqual(await code(unknownKey), { status: 401, code: 'TOKEN_INVALID' });
  });

  claimRules(() => ({
    api,
    header: { alg: 'RS256', kid: 'key-1', typ: 'JWT' },
    valid: (now) => ({ sub: 'auth0|alice', iss: issuer, aud: audience, iat: now, exp: now + hour }),
    sign: signRs256,
  }));

  it('answers 503 AUTH_UNAVAILABLE, not 401, when the keys cannot be fetched', async () => {
    const got = await answer(unreachable, await token());
    assert.deepEqual(
      { status: got.status, code: got.code, challenge: got.challenge },
      {
        status: 503,
        code: 'AUTH_UNAVAILABLE',
        challenge: undefined,
      },
    );
  });
});
