// What a client sees of an API process that stops: requests in flight finish, and a request
// that reaches it meanwhile on a connection still open is refused in the error envelope, so the
// client sends it again (to another process, behind a balancer).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('an API process that stops', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());

  it('finishes the request in flight and answers one after it 503 SHUTTING_DOWN, then closes', async () => {
    const api = await h.startApi();
    const port = Number(new URL(await api.listen()).port);
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    // A request whose body has not all arrived keeps the connection busy while the API stops:
    // an idle one would be closed at once.
    const body = '{"steps":1}';
    const inFlight = new Promise((resolve) => api.app.server.once('request', resolve));
    socket.write(
      `POST /no-such-route HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 3)}`,
    );
    await inFlight;
    const stopped = api.app.close();
    // It stops listening once it has begun to stop (its preClose hooks ran).
    await eventually(
      async () => api.app.server.listening,
      (listening) => !listening,
      { what: 'the API stopping', timeoutMs: 10_000 },
    );
    socket.write(`${body.slice(3)}GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    await eventually(
      async () => received,
      (text) => (text.match(/HTTP\/1\.1 /g) ?? []).length === 2,
      { what: 'both answers', timeoutMs: 10_000 },
    );
    await closed;
    await stopped;

    const [first, second] = received.split(/(?=HTTP\/1\.1 )/);
    assert.match(first!, /^HTTP\/1\.1 404 /, 'the request in flight is answered as ever');
    assert.match(second!, /^HTTP\/1\.1 503 /);
    assert.match(second!, /\r\nconnection: close\r\n/i);
    assert.match(second!, /\r\nretry-after: 1\r\n/i);
    assert.match(second!, /\r\nx-content-type-options: nosniff\r\n/i);
    const answer = JSON.parse(second!.slice(second!.indexOf('\r\n\r\n') + 4)) as {
      error: { code: string; message: string };
    };
    assert.deepEqual(answer.error, {
      code: 'SHUTTING_DOWN',
      message: 'This API process is stopping; send the request again',
    });
  });
});
