// Progress streams over real sockets: what a HEAD of one answers, on every route that serves a
// stream, and that it holds nothing open; the caps on the streams one API process holds open;
// the keep-alive events, and a stream dropped when its client takes nothing.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appendJobOutput } from '../../src/db/job-events.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import type { JobStatus } from '../../src/jobs/model.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness, type TestApi } from '../support/harness.js';
import { jobRecord, jobSnapshot, vlogInput } from '../support/jobs.js';
import { parseMetrics } from '../support/metrics.js';
import { openEventStream, type EventStreamClient } from '../support/sse.js';

describe('progress streams', () => {
  let h: Harness;
  let base: string;
  const owner = `streamer-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness();
    base = await h.api.listen();
  });
  after(() => h.stop());

  /** A job of `ownerId`'s in `status`, its row written directly (no workflow runs it). */
  async function storedJob(
    kind: 'ai' | 'vlog',
    status: JobStatus,
    ownerId = owner,
  ): Promise<string> {
    const job =
      kind === 'ai'
        ? jobRecord({
            id: `ai-${randomUUID()}`,
            kind: 'ai',
            type: 'SUBGOAL_GENERATION',
            ownerId,
            input: { goal: 'Sail', maxItems: 3, language: 'en' },
          })
        : jobRecord({
            id: `vlog-${randomUUID()}`,
            kind: 'vlog',
            type: 'VLOG',
            ownerId,
            input: vlogInput(),
          });
    await insertJob(h.db, job, status);
    return job.id;
  }

  const streamPath = (kind: 'ai' | 'vlog', id: string) =>
    kind === 'ai' ? `/api/ai/jobs/${id}/events` : `/api/vlogs/${id}/events`;

  const openStreams = async () => {
    const response = await h.api.app.inject({ method: 'GET', url: '/metrics' });
    return parseMetrics(response.body).value('vlogflow_sse_streams_open');
  };

  /** The URL of a signed link to the stream at `path`, which opens it without a token. */
  async function signedLink(path: string): Promise<string> {
    const link = await h.user(owner).post(`${path}/link`);
    assert.equal(link.statusCode, 201, link.body);
    return `${base}${link.json<{ url: string }>().url}`;
  }

  /** A request that fails the test, rather than hang it, when no answer comes. */
  const send = (url: string, method: 'GET' | 'HEAD', headers: Record<string, string>) =>
    fetch(url, { method, headers, signal: AbortSignal.timeout(5_000) });

  for (const [kind, status, withLink] of [
    ['vlog', 'queued', false],
    ['vlog', 'running', true],
    ['ai', 'running', false],
    ['ai', 'pending', true],
    ['ai', 'completed', false],
  ] as const) {
    const how = withLink ? 'through a signed link' : 'with a token';
    it(`answer a HEAD at once, as a GET, opening nothing: ${status} ${kind}, ${how}`, async () => {
      const id = await storedJob(kind, status);
      const path = streamPath(kind, id);
      const headers: Record<string, string> = withLink
        ? {}
        : { authorization: await h.user(owner).authorization() };
      const url = withLink ? await signedLink(path) : `${base}${path}`;
      const open = await openStreams();

      const head = await send(url, 'HEAD', headers);
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal(await openStreams(), open, 'a HEAD holds no stream open');

      const get = await send(url, 'GET', headers);
      assert.equal(get.status, 200);
      for (const name of ['content-type', 'cache-control', 'x-accel-buffering']) {
        assert.equal(head.headers.get(name), get.headers.get(name), name);
      }
      assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
      await get.body?.cancel();
      await eventually(openStreams, (now) => now === open, { what: 'the GET stream closed' });
    });
  }

  it("answer a resume after the job's end 204, without a body's length, to a HEAD as to a GET", async () => {
    const id = await storedJob('ai', 'completed');
    const url = `${base}${streamPath('ai', id)}`;
    const headers = {
      authorization: await h.user(owner).authorization(),
      'last-event-id': '0-end',
    };
    for (const method of ['GET', 'HEAD'] as const) {
      const answer = await send(url, method, headers);
      assert.equal(answer.status, 204, method);
      assert.equal(answer.headers.get('content-length'), null, `${method}: RFC 9110, 8.6`);
    }
  });

  it('take an empty Last-Event-ID as the header it is, which wins over the query: from the first state', async () => {
    const id = await storedJob('ai', 'completed');
    const authorization = await h.user(owner).authorization();
    const url = `${base}${streamPath('ai', id)}?lastEventId=0-end`;
    assert.equal((await send(url, 'GET', { authorization })).status, 204, 'the query alone');
    const stream = await openEventStream(url, { authorization, 'last-event-id': '' });
    assert.equal(stream.status, 200);
    const first = await stream.next();
    assert.equal(first.id, '0');
    stream.close();
  });

  describe('caps', () => {
    let capped: TestApi;
    let cappedBase: string;

    before(async () => {
      capped = await h.startApi({
        env: { EVENT_STREAM_MAX_PER_USER: '2', EVENT_STREAM_MAX_OPEN: '3' },
      });
      cappedBase = await capped.listen();
    });

    const openOn = async (url: string, user: string, id: string) =>
      openEventStream(`${url}/api/vlogs/${id}/events`, {
        authorization: await h.user(user).authorization(),
      });

    /** The refusal of a stream: its status, code, message and Retry-After. */
    async function refusal(user: string, id: string, method: 'GET' | 'HEAD' = 'GET') {
      const response = await send(`${cappedBase}/api/vlogs/${id}/events`, method, {
        authorization: await h.user(user).authorization(),
      });
      const body = method === 'GET' ? await response.json() : null;
      const { code, message } = (body as { error?: { code: string; message: string } } | null)
        ?.error ?? { code: null, message: null };
      return {
        status: response.status,
        code,
        message,
        retryAfter: response.headers.get('retry-after'),
      };
    }

    /** A stream opened as soon as the user has room for one. */
    const openWhenRoom = (user: string, id: string, what: string) =>
      eventually(
        async () => {
          const stream = await openOn(cappedBase, user, id);
          if (stream.status !== 200) stream.close();
          return stream;
        },
        (stream) => stream.status === 200,
        { what },
      );

    const closeAll = async (streams: EventStreamClient[]) => {
      for (const stream of streams) stream.close();
      await eventually(openStreams, (now) => now === 0, { what: 'every stream counted closed' });
    };

    it("refuse a user's stream past EVENT_STREAM_MAX_PER_USER, and any past EVENT_STREAM_MAX_OPEN", async () => {
      const ada = `ada-${randomUUID().slice(0, 8)}`;
      const bob = `bob-${randomUUID().slice(0, 8)}`;
      const cy = `cy-${randomUUID().slice(0, 8)}`;
      const adaJob = await storedJob('vlog', 'running', ada);
      const streams = [
        await openOn(cappedBase, ada, adaJob),
        await openOn(cappedBase, ada, adaJob),
      ];
      try {
        assert.deepEqual(
          streams.map((stream) => stream.status),
          [200, 200],
        );
        const third = await refusal(ada, adaJob);
        assert.equal(third.status, 429);
        assert.equal(third.code, 'TOO_MANY_STREAMS');
        assert.match(third.message!, /the most allowed \(2\)/);
        assert.equal(third.retryAfter, '15');
        assert.equal((await refusal(ada, adaJob, 'HEAD')).status, 429, 'a HEAD as a GET');
        // Another API process counts its own.
        streams.push(await openOn(base, ada, adaJob));
        assert.equal(streams.at(-1)!.status, 200);

        // Another user is not held back by the first's streams, up to the process's cap.
        streams.push(await openOn(cappedBase, bob, await storedJob('vlog', 'running', bob)));
        assert.equal(streams.at(-1)!.status, 200);
        const full = await refusal(cy, await storedJob('vlog', 'running', cy));
        assert.equal(full.status, 503);
        assert.equal(full.code, 'STREAM_CAPACITY_REACHED');
        assert.match(full.message!, /\(3\)/);
        assert.equal(full.retryAfter, '5');
      } finally {
        await closeAll(streams);
      }
    });

    it('count a stream until it closes, whoever closes it: the client, its job ending, a stopping process', async () => {
      const user = `dee-${randomUUID().slice(0, 8)}`;
      const [first, second] = [
        await storedJob('vlog', 'running', user),
        await storedJob('vlog', 'running', user),
      ];
      const streams = [
        await openOn(cappedBase, user, first),
        await openOn(cappedBase, user, second),
      ];
      try {
        assert.equal((await refusal(user, first)).status, 429, 'the user is at the cap');

        streams.shift()!.close();
        streams.push(
          await openWhenRoom(user, first, 'a stream in place of the one the client closed'),
        );
        assert.equal((await refusal(user, first)).status, 429, 'the user is at the cap again');

        await applyJobUpdate(h.db, {
          jobId: second,
          seq: 1,
          snapshot: jobSnapshot({
            status: 'failed',
            error: { code: 'MEDIA_UNREADABLE', message: 'clip.mp4 cannot be read' },
          }),
        });
        assert.equal((await streams.shift()!.rest()).at(-1)?.event, 'end');
        streams.push(await openWhenRoom(user, first, 'a stream in place of the one its job ended'));
      } finally {
        await closeAll(streams);
      }

      const stopping = await h.startApi({ env: { EVENT_STREAM_MAX_PER_USER: '1' } });
      const stream = await openOn(await stopping.listen(), user, first);
      assert.equal(stream.status, 200);
      assert.equal(await openStreams(), 1);
      const closed = stopping.app.close();
      await stream.rest(10_000);
      await closed;
      await eventually(openStreams, (now) => now === 0, { what: 'the stopped process holds none' });
    });
  });
});

// A stream resumed after the last state of an ended job sends its `end` at once; when that
// end cannot be made (signing the video's links fails, the database does not answer), the
// stream closes, so its client reconnects, rather than sending keep-alives for good.
describe('a progress stream whose end cannot be made', () => {
  class UnsignableLinks extends LocalMediaStorage {
    override url(): Promise<string> {
      return Promise.reject(new Error('the signing service does not answer'));
    }
  }
  let h: Harness;
  let base: string;
  const owner = `unsigned-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness({
      mediaStorage: new UnsignableLinks(path.join(os.tmpdir(), `vlogflow-${randomUUID()}`), {
        publicUrl: 'http://api.test',
        secret: 'media-secret',
      }),
      env: { EVENT_STREAM_KEEPALIVE_MS: '100' },
    });
    base = await h.api.listen();
  });
  after(() => h.stop());

  it('closes the stream and counts it closed', async () => {
    const job = jobRecord({
      id: `vlog-${randomUUID()}`,
      kind: 'vlog',
      type: 'VLOG',
      ownerId: owner,
      input: vlogInput(),
    });
    await insertJob(h.db, job, 'completed');
    await h.db
      .updateTable('jobs')
      .set({
        result: JSON.stringify({
          videoKey: `vlogs/${job.id}/video.mp4`,
          thumbnailKey: null,
          durationSeconds: 8,
          mimeType: 'video/mp4',
          sizeBytes: 1,
        }),
      })
      .where('id', '=', job.id)
      .execute();
    const response = await fetch(`${base}/api/vlogs/${job.id}/events`, {
      headers: { authorization: await h.user(owner).authorization(), 'last-event-id': '0' },
      signal: AbortSignal.timeout(5_000),
    });
    const body = await response.text();
    assert.doesNotMatch(body, /event: end/);
    const open = await h.api.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(parseMetrics(open.body).value('vlogflow_sse_streams_open'), 0);
  });
});

// A client whose TCP peer vanished without a FIN (or that stopped reading) is still connected
// as far as the API can tell: only the keep-alive events tell the client the stream is alive,
// and only writes that never drain tell the API the client is gone.
describe('keep-alives of a progress stream', () => {
  let h: Harness;
  let base: string;
  const owner = `quiet-${randomUUID().slice(0, 8)}`;
  const keepAliveMs = 200;

  before(async () => {
    h = await startHarness({ env: { EVENT_STREAM_KEEPALIVE_MS: String(keepAliveMs) } });
    base = await h.api.listen();
  });
  after(() => h.stop());

  const openStreams = async () => {
    const response = await h.api.app.inject({ method: 'GET', url: '/metrics' });
    return parseMetrics(response.body).value('vlogflow_sse_streams_open');
  };

  async function runningAiJob(): Promise<string> {
    const job = jobRecord({
      id: `ai-${randomUUID()}`,
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      ownerId: owner,
      input: { goal: 'Sail', maxItems: 3, language: 'en' },
    });
    await insertJob(h.db, job, 'running');
    return job.id;
  }

  it('are events a client sees, with their interval, at once and then every EVENT_STREAM_KEEPALIVE_MS', async () => {
    const id = await runningAiJob();
    const response = await fetch(`${base}/api/ai/jobs/${id}/events`, {
      headers: { authorization: await h.user(owner).authorization() },
      signal: AbortSignal.timeout(10_000),
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const keepAlive = /event: keepalive\ndata: (.*)\n\n/g;
    while ((text.match(keepAlive) ?? []).length < 2) {
      const chunk = await reader.read();
      assert.ok(!chunk.done, `the stream ended: ${text}`);
      text += chunk.value;
    }
    await reader.cancel();
    // No worker runs here: a keep-alive may also say that the job waits for one
    // (test/e2e/split-workers.test.ts).
    const intervals = [...text.matchAll(keepAlive)].map(
      (match) => (JSON.parse(match[1]!) as { intervalMs: unknown }).intervalMs,
    );
    assert.deepEqual(intervals, [keepAliveMs, keepAliveMs]);
    assert.doesNotMatch(text, /^id:.*\nevent: keepalive/m, 'a keep-alive moves no Last-Event-ID');
    assert.ok(
      text.indexOf('event: keepalive') < text.indexOf('event: status'),
      'the first at once',
    );
  });

  it('drop a stream whose client takes nothing, freeing its slot', async () => {
    const id = await runningAiJob();
    // Far more than the socket buffers of both ends hold, so the API's writes cannot drain.
    const piece = 'x'.repeat(256 * 1024);
    for (let part = 0; part < 40; part += 1) {
      await appendJobOutput(h.db, id, { text: piece, offset: part * piece.length });
    }
    const { port } = new URL(base);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      socket.pause();
      socket.write(
        `GET /api/ai/jobs/${id}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n` +
          `authorization: ${await h.user(owner).authorization()}\r\n\r\n`,
      );
      await eventually(openStreams, (open) => open === 1, { what: 'the stream opened' });
      await eventually(openStreams, (open) => open === 0, {
        what: 'the stream of a client that takes nothing dropped',
        timeoutMs: 20_000,
      });
    } finally {
      socket.destroy();
    }
  });
});
