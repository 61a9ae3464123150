// How the web page follows a job's progress stream when the stream goes silent: its code, bundled
// for the browser as the page's is, runs here against a stand-in EventSource and the test's
// clock. (The browser tests follow real streams; a connection that dies without closing is
// what they cannot make.)
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** An EventSource the test opens, feeds and watches; the page's code sees nothing else. */
class StandInEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static opened: StandInEventSource[] = [];
  readyState = StandInEventSource.CONNECTING;
  private readonly listeners = new Map<string, ((event: unknown) => void)[]>();

  constructor(readonly url: string) {
    StandInEventSource.opened.push(this);
  }

  addEventListener(type: string, listener: (event: unknown) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.readyState = StandInEventSource.CLOSED;
  }

  open(): void {
    this.readyState = StandInEventSource.OPEN;
    this.emit('open', {});
  }

  send(type: string, data: unknown, lastEventId = ''): void {
    this.emit(type, { data: JSON.stringify(data), lastEventId });
  }

  private emit(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

/**
 * What the test uses of `followJob` (its module is typed for the browser, so this side cannot
 * import its types).
 */
type FollowJob = (options: {
  link: () => Promise<{ url: string }>;
  read: () => Promise<{ attempt: number; updatedAt: string; waitingForWorker?: unknown }>;
  ended: (view: unknown) => boolean;
  onEvent: (event: unknown) => void;
  onView: (view: unknown) => void;
  onEnd: (view: unknown) => void;
  onTransport: (transport: string) => void;
  onWaitingForWorker: (waiting: unknown) => void;
  onFailure: (failure: Error) => void;
}) => { stop(): void };

/** `followJob` as the browser runs it: bundled from the page's source. */
async function loadFollowJob(): Promise<FollowJob> {
  const bundled = await build({
    entryPoints: [fileURLToPath(new URL('../../src/web/client/follow-job.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const code = bundled.outputFiles[0]!.text;
  const module = (await import(`data:text/javascript,${encodeURIComponent(code)}`)) as {
    followJob: FollowJob;
  };
  return module.followJob;
}

/** Lets the page's pending promises (a link asked for, a read) settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the web page following a job', () => {
  it('closes a stream silent for three keep-alive intervals, polls, and resumes in a new one', async (t) => {
    Object.assign(globalThis, {
      EventSource: StandInEventSource,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
    });
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const followJob = await loadFollowJob();
    const transports: string[] = [];
    const reads = mock.fn(async () => ({ attempt: 1, updatedAt: 'then', status: 'running' }));
    let links = 0;
    const following = followJob({
      link: async () => ({ url: `/api/vlogs/v/events?access=${(links += 1)}` }),
      read: reads,
      ended: () => false,
      onEvent: () => undefined,
      onView: () => undefined,
      onEnd: () => undefined,
      onTransport: (transport) => transports.push(transport),
      onWaitingForWorker: () => undefined,
      onFailure: (failure) => assert.fail(failure),
    });
    try {
      await settle();
      const [first] = StandInEventSource.opened;
      assert.ok(first, 'a stream opened');
      first.open();
      first.send('keepalive', { intervalMs: 1_000 });
      t.mock.timers.tick(2_999);
      first.send('status', { attempt: 1 }, '1');
      t.mock.timers.tick(2_999);
      first.send('keepalive', { intervalMs: 1_000 });
      t.mock.timers.tick(2_999);
      assert.equal(first.readyState, StandInEventSource.OPEN, 'each event restarts the wait');
      assert.deepEqual(transports, ['connecting', 'stream']);

      t.mock.timers.tick(1);
      assert.equal(first.readyState, StandInEventSource.CLOSED, 'silent for 3 s: taken for dead');
      assert.deepEqual(transports.slice(2), ['polling']);
      await settle();
      assert.equal(reads.mock.callCount(), 1, 'the page polls meanwhile');

      t.mock.timers.tick(1_000);
      await settle();
      const second = StandInEventSource.opened[1];
      assert.ok(second, 'a new stream opened');
      assert.equal(
        second.url,
        '/api/vlogs/v/events?access=2&lastEventId=1',
        'through a new link, after the last event applied',
      );
    } finally {
      following.stop();
    }
  });

  it('tells what the job waits for when no worker serves its queue, from keep-alives and polled views', async (t) => {
    Object.assign(globalThis, {
      EventSource: StandInEventSource,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
    });
    t.mock.timers.enable({ apis: ['setTimeout'] });
    StandInEventSource.opened = [];
    const followJob = await loadFollowJob();
    const waiting = {
      queue: 'workflows',
      taskQueue: 'vlogflow',
      message:
        'No worker polls the workflows queue (vlogflow): this job does not move until one does',
    };
    const told: unknown[] = [];
    const following = followJob({
      link: async () => ({ url: '/api/vlogs/v/events?access=1' }),
      read: async () => ({
        attempt: 1,
        updatedAt: 'then',
        status: 'pending',
        waitingForWorker: waiting,
      }),
      ended: () => false,
      onEvent: () => undefined,
      onView: () => undefined,
      onEnd: () => undefined,
      onTransport: () => undefined,
      onWaitingForWorker: (what) => told.push(what),
      onFailure: (failure) => assert.fail(failure),
    });
    try {
      await settle();
      const [stream] = StandInEventSource.opened;
      assert.ok(stream, 'a stream opened');
      stream.open();
      stream.send('keepalive', { intervalMs: 1_000, waitingForWorker: waiting });
      stream.send('keepalive', { intervalMs: 1_000 });
      assert.deepEqual(told, [waiting, null], 'each keep-alive says it, or that nothing waits');

      t.mock.timers.tick(3_000);
      await settle();
      assert.equal(stream.readyState, StandInEventSource.CLOSED, 'the silent stream dropped');
      assert.deepEqual(told.slice(2), [waiting], 'a polled view says it too');
    } finally {
      following.stop();
    }
  });
});
