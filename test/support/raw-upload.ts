// An upload sent over a socket of its own, byte by byte as the test says: what `inject` cannot
// do (hold a request open, close it before the answer, meet the server's connection timeouts).
import assert from 'node:assert/strict';
import net from 'node:net';

export interface RawAnswer {
  status: number;
  code: string | undefined;
  raw: string;
}

/**
 * Opens `POST /api/vlogs` on `port` and sends the form up to `sent` bytes of its payload (all
 * of it by default); the answer is read once the server has answered and closed the connection.
 */
export function openUpload(
  port: number,
  authorization: string,
  form: { payload: Buffer; headers: Record<string, string> },
  sent = form.payload.length,
  /** More header lines: `connection: close` for an answer that ends the connection. */
  headers: string[] = [],
) {
  const head = [
    'POST /api/vlogs HTTP/1.1',
    `host: 127.0.0.1:${port}`,
    `authorization: ${authorization}`,
    `content-type: ${form.headers['content-type']}`,
    `content-length: ${form.payload.length}`,
    ...headers,
    '',
    '',
  ].join('\r\n');
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(head);
  socket.write(form.payload.subarray(0, sent));
  return {
    socket,
    /** The answer, once the server has closed the connection (within `timeoutMs`). */
    answer: async (timeoutMs = 10_000): Promise<RawAnswer> => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'held'>((resolve) => {
        timer = setTimeout(() => resolve('held'), timeoutMs);
      });
      const outcome = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
      clearTimeout(timer);
      assert.equal(outcome, 'closed', `the server held the upload open: ${received}`);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1]);
      const body = received.includes('\r\n\r\n')
        ? (JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as {
            error?: { code: string };
          })
        : null;
      return { status, code: body?.error?.code, raw: received };
    },
  };
}
