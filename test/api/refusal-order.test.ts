// Who may ask is decided before what was asked: a request without a token is a 401, and one
// without the admin claim on an admin route a 403, however wrong its path, query or body is.
// Validation first would tell a stranger what each route takes, and a user what the operators'
// routes do. Every operation of the OpenAPI document is tried, so a route added later is too.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { startHarness, type Harness } from '../support/harness.js';
import { documentedOperations, type DocumentedOperation } from '../support/openapi.js';

/** Ways a request can be wrong, each refused with a 400 (or 413, 415) once authorised. */
const wrongRequests = [
  { name: 'a body off its schema', payload: '{"bogus":"x","daily":"x","limit":"abc"}' },
  { name: 'a body that is not JSON', payload: '{"bogus":' },
  { name: 'text that cannot be stored', payload: '{"bogus":"a\\u0000b"}' },
] as const;

describe('refusal order', () => {
  let h: Harness;
  let operations: DocumentedOperation[] = [];
  const user = `order-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness();
    operations = await documentedOperations(h.api.app);
  });
  after(() => h.stop());

  /** The operation with every path parameter too long, an unknown query parameter and `wrong`'s body. */
  function request(
    { method, path }: DocumentedOperation,
    wrong: (typeof wrongRequests)[number],
  ): InjectOptions {
    const url = path.replace(/\{[^}]+\}/g, 'x'.repeat(600));
    return {
      method,
      url: `${url}?limit=abc&from=yesterday&bogus=a%00b`,
      ...(['POST', 'PUT'].includes(method) && {
        payload: wrong.payload,
        headers: { 'content-type': 'application/json' },
      }),
    };
  }

  for (const wrong of wrongRequests) {
    it(`answers 401 without a token before it looks at the request: ${wrong.name}`, async () => {
      const apiOperations = operations.filter(({ path }) => path.startsWith('/api/'));
      assert.ok(apiOperations.length > 20, `${apiOperations.length} operations`);
      const wrongAnswers: string[] = [];
      for (const operation of apiOperations) {
        const response = await h.api.app.inject(request(operation, wrong));
        const code = response.json<{ error?: { code: string } }>().error?.code;
        if (response.statusCode !== 401 || code !== 'TOKEN_MISSING') {
          wrongAnswers.push(
            `${operation.method} ${operation.path}: ${response.statusCode} ${code}`,
          );
        }
      }
      assert.deepEqual(wrongAnswers, []);
    });

    it(`answers 403 ADMIN_REQUIRED to a token without the admin claim on every admin route, before it looks at the request: ${wrong.name}`, async () => {
      const adminOperations = operations.filter(({ tags }) => tags.includes('admin'));
      assert.ok(adminOperations.length >= 5, `${adminOperations.length} admin operations`);
      const wrongAnswers: string[] = [];
      for (const operation of adminOperations) {
        const response = await h.user(user).request(request(operation, wrong));
        const code = response.json<{ error?: { code: string } }>().error?.code;
        if (response.statusCode !== 403 || code !== 'ADMIN_REQUIRED') {
          wrongAnswers.push(
            `${operation.method} ${operation.path}: ${response.statusCode} ${code}`,
          );
        }
      }
      assert.deepEqual(wrongAnswers, []);
    });
  }

  it("answers 403 ADMIN_REQUIRED to another user's usage before it validates the query", async () => {
    for (const query of ['userId=bob&from=yesterday', 'userId=bob&colour=red', 'userId=%20']) {
      const response = await h.user(user).get(`/api/usage?${query}`);
      assert.equal(response.statusCode, 403, `${query}: ${response.body}`);
      assert.equal(response.json<{ error: { code: string } }>().error.code, 'ADMIN_REQUIRED');
    }
    // The caller's own usage, and an operator's request, are validated as before.
    const own = await h.user(user).get(`/api/usage?userId=${user}&from=yesterday`);
    assert.equal(own.statusCode, 400, own.body);
    const operator = await h.admin('operator').get('/api/usage?userId=bob&from=yesterday');
    assert.equal(operator.statusCode, 400, operator.body);
  });

  it('still validates an admin request once the claim is there (the control)', async () => {
    const response = await h.admin('operator').get('/api/admin/failure-groups?limit=abc');
    assert.equal(response.statusCode, 400, response.body);
    const budget = await h
      .admin('operator')
      .request({ method: 'PUT', url: '/api/admin/budgets/alice', payload: { daily: 'x' } });
    assert.equal(budget.statusCode, 400, budget.body);
  });
  // A 404 for a path no route takes would map the routes for a stranger.
  it('answers 401 to a path or method no /api route takes, and 404 only to a signed-in caller', async () => {
    const unrouted = [
      { method: 'GET', url: '/api/nothing' },
      { method: 'GET', url: '/api/admin/nothing?limit=abc' },
      { method: 'DELETE', url: '/api/vlogs/x' },
      { method: 'POST', url: '/api/jobs/x/nothing' },
      { method: 'PUT', url: '/api/vlogs' },
    ] as const;
    for (const unknown of unrouted) {
      for (const headers of [{}, { authorization: 'Bearer garbage' }]) {
        const response = await h.api.app.inject({ ...unknown, headers });
        assert.equal(
          response.statusCode,
          401,
          `${unknown.method} ${unknown.url}: ${response.body}`,
        );
        assert.ok(response.headers['www-authenticate'], 'a 401 names its challenge');
      }
      // A path that takes other methods is told so, with the methods it takes.
      const signedIn = await h.user(user).request(unknown);
      const takesOthers = unknown.url.startsWith('/api/vlogs');
      assert.equal(signedIn.statusCode, takesOthers ? 405 : 404, signedIn.body);
      assert.equal(
        signedIn.json<{ error: { code: string } }>().error.code,
        takesOthers ? 'METHOD_NOT_ALLOWED' : 'ROUTE_NOT_FOUND',
      );
      assert.equal(
        signedIn.headers['allow'],
        takesOthers ? (unknown.url === '/api/vlogs' ? 'GET, HEAD, POST' : 'GET, HEAD') : undefined,
      );
    }
    const outside = await h.api.app.inject({ method: 'GET', url: '/nothing' });
    assert.equal(outside.statusCode, 404, 'outside /api no token is asked for');
  });
});
