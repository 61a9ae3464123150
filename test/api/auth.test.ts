import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { mintToken } from '../../src/auth.js';
import { createTestApi, testJwtSecret, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testTemporal } from '../support/temporal.js';

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
