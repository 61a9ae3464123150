import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { mintToken } from '../../src/auth.js';
import { createTestApi, testJwtSecret, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort } from '../support/ports.js';
import { testTemporal } from '../support/temporal.js';

interface ErrorBody {
  error: { code: string; message: string };
}

const secret = new TextEncoder().encode(testJwtSecret);

describe('authentication', () => {
  let test: TestDatabase;
  let api: TestApi;
  const temporal = testTemporal();
  before(async () => {
    test = await createTestDatabase();
    api = await createTestApi({ db: test.db, temporal, taskQueue: 'unused' });
  });
  after(async () => {
    await api.app.close();
    await temporal.close();
    await test.drop();
  });

  async function codeFor(authorization?: string) {
    const response = await api.app.inject({
      method: 'GET',
      url: '/api/jobs',
      headers: authorization === undefined ? {} : { authorization },
    });
    assert.equal(response.statusCode, 401, response.body);
    return response.json<{ error: { code: string; message: string } }>().error;
  }

  it('answers 401 TOKEN_MISSING without an Authorization header', async () => {
    const error = await codeFor();
    assert.equal(error.code, 'TOKEN_MISSING');
    assert.match(error.message, /Authorization header/);
  });

  it('answers 401 TOKEN_INVALID for a header that is not a Bearer token', async () => {
    assert.equal((await codeFor('Basic dXNlcjpwYXNz')).code, 'TOKEN_INVALID');
    assert.equal((await codeFor('Bearer')).code, 'TOKEN_INVALID');
  });

  it('answers 401 TOKEN_INVALID for garbage, a wrong signature or a token without a subject', async () => {
    assert.equal((await codeFor('Bearer not.a.jwt')).code, 'TOKEN_INVALID');
    const forged = await mintToken('another-secret-that-is-long-enough-too!', 'alice');
    assert.equal((await codeFor(`Bearer ${forged}`)).code, 'TOKEN_INVALID');
    const noSubject = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(secret);
    assert.equal((await codeFor(`Bearer ${noSubject}`)).code, 'TOKEN_INVALID');
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.`;
    assert.equal((await codeFor(`Bearer ${unsigned}`)).code, 'TOKEN_INVALID');
  });

  it('answers 401 TOKEN_EXPIRED for an expired token', async () => {
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(secret);
    assert.equal((await codeFor(`Bearer ${expired}`)).code, 'TOKEN_EXPIRED');
  });

  it('accepts a valid token and leaves health and docs open', async () => {
    const ok = await api.app.inject({
      method: 'GET',
      url: '/api/jobs',
      headers: { authorization: await api.authFor('alice') },
    });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { jobs: [], nextCursor: null });
    for (const url of ['/healthz', '/openapi.json', '/docs/']) {
      assert.equal((await api.app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
  });
});

describe('authentication against an identity provider (JWKS)', () => {
  let test: TestDatabase;
  let api: TestApi;
  let unreachable: TestApi;
  let server: Server;
  let privateKey: CryptoKey;
  let strangerKey: CryptoKey;
  const issuer = 'https://id.example.test/';
  const audience = 'vlogflow-api';
  const temporal = testTemporal();

  before(async () => {
    test = await createTestDatabase();
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
    api = await createTestApi({
      db: test.db,
      temporal,
      taskQueue: 'unused',
      env: { ...env, AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json` },
    });
    unreachable = await createTestApi({
      db: test.db,
      temporal,
      taskQueue: 'unused',
      env: { ...env, AUTH_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json` },
    });
  });
  after(async () => {
    await api.app.close();
    await unreachable.app.close();
    server.close();
    await temporal.close();
    await test.drop();
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
      .setExpirationTime(claims.exp ?? '1h')
      .sign(key);
  }

  async function answer(bearer: string, on: TestApi = api) {
    const response = await on.app.inject({
      method: 'GET',
      url: '/api/jobs',
      headers: { authorization: `Bearer ${bearer}` },
    });
    return {
      status: response.statusCode,
      code: response.statusCode === 200 ? null : response.json<ErrorBody>().error.code,
    };
  }

  it("accepts a token signed with the provider's key for the right issuer and audience", async () => {
    assert.deepEqual(await answer(await token()), { status: 200, code: null });
  });

  it('answers 401 with a stable code for a wrong audience, issuer, key, algorithm or expiry', async () => {
    assert.deepEqual(await answer(await token({ aud: 'another-api' })), {
      status: 401,
      code: 'TOKEN_CLAIM_INVALID',
    });
    assert.deepEqual(await answer(await token({ iss: 'https://evil.test/' })), {
      status: 401,
      code: 'TOKEN_CLAIM_INVALID',
    });
    assert.deepEqual(await answer(await token({}, strangerKey)), {
      status: 401,
      code: 'TOKEN_INVALID',
    });
    assert.deepEqual(await answer(await mintToken(testJwtSecret, 'alice', { issuer, audience })), {
      status: 401,
      code: 'TOKEN_INVALID',
    });
    assert.deepEqual(await answer(await token({ exp: Math.floor(Date.now() / 1000) - 60 })), {
      status: 401,
      code: 'TOKEN_EXPIRED',
    });
  });

  it('answers 503 AUTH_UNAVAILABLE, not 401, when the keys cannot be fetched', async () => {
    assert.deepEqual(await answer(await token(), unreachable), {
      status: 503,
      code: 'AUTH_UNAVAILABLE',
    });
  });
});
