// Each request's log lines carry its URL; a credential in the query (a stream link's access, a
// media link's signature, a token sent by mistake) must not reach the log, whoever reads it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { redactedUrl } from '../../src/api/request-log.js';
import { startHarness, type Harness } from '../support/harness.js';
import { captureLogs } from '../support/logs.js';

describe('request logs', () => {
  let h: Harness;
  const logs = captureLogs();
  before(async () => {
    h = await startHarness({ logger: logs.logger });
  });
  after(() => h.stop());

  it('log every request with the credentials of its query hidden', async () => {
    const secret = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl';
    await h.user('logged').get(`/api/jobs?access_token=${secret}`);
    for (const url of [
      `/media/vlogs/x/video.mp4?expires=1796548171&signature=${secret}`,
      `/api/vlogs/x/events?access=1796.logged.${secret}`,
    ])
      await h.api.app.inject({ method: 'GET', url });
    const urls = logs
      .lines()
      .filter((line) => line['msg'] === 'incoming request')
      .map((line) => (line['req'] as { url: string }).url);
    assert.deepEqual(urls, [
      '/api/jobs?access_token=***',
      '/media/vlogs/x/video.mp4?expires=1796548171&signature=***',
      '/api/vlogs/x/events?access=***',
    ]);
    assert.ok(!JSON.stringify(logs.lines()).includes(secret), 'the secret is in no line');
  });

  it("carry the job's id on every line of a request about a job, as the worker's lines do", async () => {
    const jobId = 'probe-logged-by-id';
    const before = logs.lines().length;
    assert.equal((await h.user('logged').get(`/api/jobs/${jobId}`)).statusCode, 404);
    assert.equal((await h.user('logged').post(`/api/vlogs/${jobId}/cancel`)).statusCode, 404);
    const lines = logs.lines().slice(before);
    assert.deepEqual(
      lines.map((line) => line['msg']),
      ['incoming request', 'request completed', 'incoming request', 'request completed'],
    );
    for (const line of lines) {
      const carried = line['jobId'] ?? (line['req'] as { jobId?: string } | undefined)?.jobId;
      assert.equal(carried, jobId, JSON.stringify(line));
    }
  });

  it('hides each credential parameter however it is spelt, and nothing else', () => {
    assert.equal(redactedUrl('/a'), '/a');
    assert.equal(redactedUrl('/a?limit=5&cursor=abc'), '/a?limit=5&cursor=abc');
    assert.equal(
      redactedUrl('/a?%61ccess=x&TOKEN=y&api_key=z&signature&limit=1'),
      '/a?%61ccess=***&TOKEN=***&api_key=***&signature=***&limit=1',
    );
  });

  it('name the client by the address its trusted proxies forward, and only theirs', async () => {
    const behindOne = await h.startApi({ env: { API_TRUST_PROXY: '1' }, logger: logs.logger });
    const behindNamed = await h.startApi({
      env: { API_TRUST_PROXY: '10.0.0.0/8' },
      logger: logs.logger,
    });
    /** The address the request log gives a request from 127.0.0.1 with this X-Forwarded-For. */
    const loggedClient = async (app: typeof h.api.app, forwardedFor?: string) => {
      const before = logs.lines().length;
      await app.inject({
        method: 'GET',
        url: '/healthz',
        headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
      });
      const line = logs
        .lines()
        .slice(before)
        .find((entry) => entry['msg'] === 'incoming request');
      return (line?.['req'] as { remoteAddress?: string } | undefined)?.remoteAddress;
    };
    // Unset: whatever a client forwards, it is its connection's address.
    assert.equal(await loggedClient(h.api.app, '203.0.113.7'), '127.0.0.1');
    // One load balancer: the address it appended, not one a client wrote before it.
    assert.equal(await loggedClient(behindOne.app, '203.0.113.7'), '203.0.113.7');
    assert.equal(await loggedClient(behindOne.app, '198.51.100.1, 203.0.113.7'), '203.0.113.7');
    assert.equal(await loggedClient(behindOne.app), '127.0.0.1');
    // Named proxies: 127.0.0.1 is not one of them, so what it forwards is not believed.
    assert.equal(await loggedClient(behindNamed.app, '203.0.113.7'), '127.0.0.1');
  });
});
