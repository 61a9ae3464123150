import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { loadConfig } from '../../src/config.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import { jobEventId } from '../../src/jobs/job-event.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import {
  startHarness,
  testJwtSecret,
  type Harness,
  type TestApi,
  type UserClient,
} from '../support/harness.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';
import { openEventStream, type ServerSentEvent } from '../support/sse.js';

interface StreamedEvent {
  jobId: string;
  seq: number;
  part: number;
  type: string;
  status: string;
  progress: number;
}

// Progress streams read the durable event log: two API processes over one database stand in
// for a fleet, and closing one mid-stream stands in for a restart.
describe('job progress streams (Server-Sent Events)', () => {
  let google: FakeGoogle;
  let h: Harness;
  let first: TestApi;
  let second: TestApi;
  let firstUrl: string;
  let secondUrl: string;
  let streamer: UserClient;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-events-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      EVENT_STREAM_POLL_MS: '50',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
    first = h.api;
    second = await h.startApi({ env });
    firstUrl = await first.listen();
    secondUrl = await second.listen();
    streamer = first.user('streamer');
  });
  after(async () => {
    await h.stop();
    await google.stop();
  });

  /** A pending vlog of the streamer's, its row written directly (no workflow runs it). */
  async function streamerVlog(title: string) {
    const vlog = jobRecord({
      id: `vlog-${randomUUID()}`,
      kind: 'vlog',
      type: 'VLOG',
      ownerId: 'streamer',
      input: {
        title,
        prompt: null,
        style: null,
        aspectRatio: '16:9',
        durationSeconds: 8,
        media: [],
      },
    });
    await insertJob(h.db, vlog, 'pending');
    return vlog;
  }

  /** Starts an AI job whose model call waits for the returned release. */
  async function heldJob(): Promise<{ id: string; release: () => void }> {
    let release = () => undefined as void;
    const until = new Promise<void>((resolve) => (release = resolve));
    google.scenario.analysisAnswers.push({ kind: 'held', until, then: { kind: 'valid' } });
    const { id } = await streamer.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn the cello' },
    });
    return { id, release };
  }

  const stream = async (base: string, id: string, lastEventId?: string) =>
    openEventStream(`${base}/api/ai/jobs/${id}/events`, {
      authorization: await streamer.authorization(),
      ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
    });

  /** The ids of the job's logged events: its states, and the model's streamed output between them. */
  async function loggedIds(id: string): Promise<string[]> {
    const log = await readJobEvents(h.db, [{ jobId: id, afterSeq: -1 }], 1000);
    return log.map(({ event }) => jobEventId(event));
  }

  /**
   * Reconnects to the second API process after the last event `seen` and reads to the end:
   * together they must be the whole log, nothing lost, nothing repeated.
   */
  async function resumeToEnd(id: string, seen: ServerSentEvent[]): Promise<ServerSentEvent[]> {
    const rest = await (await stream(secondUrl, id, seen.at(-1)!.id!)).rest();
    assert.equal(rest.at(-1)?.event, 'end');
    assert.deepEqual(
      [...seen, ...rest.slice(0, -1)].map((event) => event.id),
      await loggedIds(id),
      'nothing lost, nothing repeated',
    );
    return rest;
  }

  /** A job whose stream a client left after two events, completed while nobody listened. */
  async function leftAfterTwoEvents(): Promise<{ job: { id: string }; seen: ServerSentEvent[] }> {
    const job = await heldJob();
    const before = await stream(firstUrl, job.id);
    const seen = [await before.next(), await before.next()];
    before.close();
    job.release();
    await eventually(
      () => second.user('streamer').get(`/api/ai/jobs/${job.id}`),
      (response) => response.json<{ status: string }>().status === 'completed',
      { what: 'the job to complete while nobody listens' },
    );
    return { job, seen };
  }

  const data = (event: ServerSentEvent) => JSON.parse(event.data) as StreamedEvent;

  it('streams every state live, in order, then an end event with the job', async () => {
    const job = await heldJob();
    const client = await stream(firstUrl, job.id);
    assert.equal(client.status, 200);
    assert.match(client.headers.get('content-type') ?? '', /^text\/event-stream/);

    const received: ServerSentEvent[] = [];
    // The job is held in its model call: these arrive live, before it can finish.
    do received.push(await client.next());
    while (data(received.at(-1)!).status !== 'processing');
    job.release();
    received.push(...(await client.rest()));

    const end = received.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(end.id, `${data(received.at(-2)!).seq}-end`);
    const view = JSON.parse(end.data) as { id: string; status: string; result: unknown };
    assert.equal(view.id, job.id);
    assert.equal(view.status, 'completed');
    assert.ok(view.result);

    const events = received.slice(0, -1);
    assert.deepEqual(
      events.map((event) => event.id),
      await loggedIds(job.id),
      'every logged event, once, in order',
    );
    assert.deepEqual(
      events.map((event) => event.id),
      events.map((event) => jobEventId(data(event))),
    );
    assert.equal(data(events[0]!).status, 'pending');
    assert.equal(events[0]!.event, 'status');
    assert.equal(data(events.at(-1)!).status, 'completed');
    assert.equal(data(events.at(-1)!).progress, 100);
    for (const event of events) assert.equal(data(event).jobId, job.id);
  });

  it("answers ?live=true with the workflow's own state while the job runs", async () => {
    const job = await heldJob();
    await eventually(
      () => streamer.get(`/api/ai/jobs/${job.id}?live=true`),
      (response) =>
        response.json<{ live: { status: string } | null }>().live?.status === 'processing',
      { what: 'the workflow to answer that the model is writing' },
    );
    job.release();
  });

  it('resumes on another API process after Last-Event-ID with exactly the missed events', async () => {
    const { job, seen } = await leftAfterTwoEvents();

    const rest = await resumeToEnd(job.id, seen);

    // Reconnecting after the last event of an ended job gives only the end event.
    const atEnd = await stream(secondUrl, job.id, rest.at(-2)!.id!);
    const only = await atEnd.rest();
    assert.deepEqual(
      only.map((event) => event.event),
      ['end'],
    );
  });

  it('resumes a new stream after ?lastEventId=, as a page opening a new link does; the header wins', async () => {
    const { job, seen } = await leftAfterTwoEvents();
    const logged = await loggedIds(job.id);
    const { url } = (await streamer.post(`/api/ai/jobs/${job.id}/events/link`)).json<{
      url: string;
    }>();

    const resumed = await (
      await openEventStream(`${secondUrl}${url}&lastEventId=${seen.at(-1)!.id!}`, {})
    ).rest();
    assert.deepEqual(
      [...seen, ...resumed.slice(0, -1)].map((event) => event.id),
      logged,
      'nothing lost, nothing repeated',
    );
    assert.equal(resumed.at(-1)?.event, 'end');

    // An EventSource's own reconnect keeps its URL and sends its latest event in the header.
    const reconnected = await (
      await openEventStream(`${secondUrl}${url}&lastEventId=${seen[0]!.id!}`, {
        'last-event-id': logged.at(-1)!,
      })
    ).rest();
    assert.deepEqual(
      reconnected.map((event) => event.event),
      ['end'],
    );

    for (const [lastEventId, message] of [
      ['yesterday', /must be the id of an event this stream sent/],
      ['50', /'s last is \d+\)$/],
    ] as const) {
      const refused = await streamer.get(
        `/api/ai/jobs/${job.id}/events?lastEventId=${lastEventId}`,
      );
      assert.equal(refused.statusCode, 400, refused.body);
      const [issue] = refused.json<{
        error: { code: string; details: { issues: { field: string; message: string }[] } };
      }>().error.details.issues;
      assert.equal(issue?.field, 'querystring.lastEventId');
      assert.match(issue?.message ?? '', message);
    }
  });

  it('ends open streams when its API process stops, for the client to resume elsewhere', async () => {
    const stopping = await h.startApi({ env: { EVENT_STREAM_POLL_MS: '50' } });
    const url = await stopping.listen();
    const job = await heldJob();
    const client = await stream(url, job.id);
    const seen = [await client.next()];
    const closed = stopping.app.close();
    seen.push(...(await client.rest(10_000)));
    await closed;
    assert.ok(
      seen.every((event) => event.event !== 'end'),
      'the job has not ended',
    );

    job.release();
    await resumeToEnd(job.id, seen);
  });

  it('streams a vlog the same way, ending with the vlog as GET shows it', async () => {
    const vlog = await streamerVlog('Harbour walk');
    await applyJobUpdate(h.db, {
      jobId: vlog.id,
      seq: 1,
      snapshot: jobSnapshot({
        status: 'failed',
        progress: 10,
        error: { code: 'MEDIA_UNREADABLE', message: 'clip.mp4 cannot be read' },
      }),
    });
    const authorization = await streamer.authorization();
    const client = await openEventStream(`${firstUrl}/api/vlogs/${vlog.id}/events`, {
      authorization,
    });
    assert.equal(client.status, 200);
    const events = await client.rest();
    assert.deepEqual(
      events.map((event) => [event.event, event.id]),
      [
        ['status', '0'],
        ['status', '1'],
        ['end', '1-end'],
      ],
    );
    const get = await streamer.get(`/api/vlogs/${vlog.id}`);
    assert.deepEqual(JSON.parse(events[2]!.data), get.json());

    // After the end, a reconnect is told to stop, until the job is retried: then it follows on.
    const reconnect = () =>
      openEventStream(`${firstUrl}/api/vlogs/${vlog.id}/events`, {
        authorization,
        'last-event-id': '1-end',
      });
    assert.equal((await reconnect()).status, 204);
    await applyJobUpdate(h.db, {
      jobId: vlog.id,
      seq: 2,
      snapshot: jobSnapshot({ status: 'pending', progress: 0, attempt: 2 }),
    });
    const retried = await reconnect();
    assert.equal(retried.status, 200);
    const next = await retried.next();
    retried.close();
    assert.deepEqual([next.event, next.id], ['status', '2']);
  });

  it('follows a phantom end to the state that superseded it: a reconnect after that end resumes', async () => {
    const vlog = await streamerVlog('Night market');
    const project = (historyLength: number, change: Parameters<typeof jobSnapshot>[0]) =>
      applyJobUpdate(h.db, {
        jobId: vlog.id,
        seq: 2,
        historyLength,
        snapshot: jobSnapshot(change),
      });
    await applyJobUpdate(h.db, {
      jobId: vlog.id,
      seq: 1,
      historyLength: 5,
      snapshot: jobSnapshot({ status: 'generating', progress: 40 }),
    });
    // A workflow task that the server then refused projected a cancel that never happened.
    await project(11, {
      status: 'cancelled',
      progress: 40,
      error: { code: 'CANCELLED', message: 'The vlog was cancelled' },
    });
    const authorization = await streamer.authorization();
    const open = (lastEventId?: string) =>
      openEventStream(`${firstUrl}/api/vlogs/${vlog.id}/events`, {
        authorization,
        ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
      });
    const phantom = await (await open()).rest();
    assert.deepEqual(
      phantom.map((event) => [event.event, event.id]),
      [
        ['status', '0'],
        ['status', '1'],
        ['status', '2'],
        ['end', '2-end'],
      ],
    );
    assert.equal((JSON.parse(phantom[3]!.data) as { status: string }).status, 'cancelled');

    // The task that replaced it saw the render fail first: that is what happened.
    await project(15, {
      status: 'failed',
      progress: 40,
      error: { code: 'SAFETY_BLOCKED', message: 'The render was blocked' },
    });
    const resumed = await open('2-end');
    assert.equal(resumed.status, 200, 'a reconnect after the superseded end resumes');
    const correction = await resumed.rest();
    assert.deepEqual(
      correction.map((event) => [event.event, event.id]),
      [
        ['status', '3'],
        ['end', '3-end'],
      ],
    );
    assert.equal(data(correction[0]!).status, 'failed');
    const get = await streamer.get(`/api/vlogs/${vlog.id}`);
    assert.equal(get.json<{ status: string }>().status, 'failed');
    assert.deepEqual(JSON.parse(correction[1]!.data), get.json());
    // The true end stops the client for good.
    assert.equal((await open('3-end')).status, 204);
  });

  it('stops a standard EventSource after the end: a reconnect with the end id is answered 204', async () => {
    const job = await heldJob();
    job.release();
    await eventually(
      () => streamer.get(`/api/ai/jobs/${job.id}`),
      (response) => response.json<{ status: string }>().status === 'completed',
      { what: 'the job to complete' },
    );
    const authorization = await streamer.authorization();
    const opened: (string | null)[] = [];
    // The `eventsource` package follows the browser's reconnection rules; only its requests'
    // headers are ours (a browser's would carry a signed stream link instead).
    const source = new EventSource(`${secondUrl}/api/ai/jobs/${job.id}/events`, {
      fetch: (url, init) => {
        const headers = new Headers(init.headers);
        opened.push(headers.get('last-event-id'));
        headers.set('authorization', authorization);
        return fetch(url, { ...init, headers });
      },
    });
    const ends: string[] = [];
    source.addEventListener('end', (event) => ends.push(event.lastEventId));
    try {
      await eventually(
        async () => source.readyState,
        (state) => state === EventSource.CLOSED,
        { what: 'the EventSource to stop after the end' },
      );
    } finally {
      source.close();
    }
    assert.equal(ends.length, 1, 'the end arrives once');
    assert.match(ends[0]!, /^\d+-end$/);
    assert.deepEqual(opened, [null, ends[0]], 'one reconnect, after the end, answered 204');

    const after = await streamer.get(`/api/ai/jobs/${job.id}/events`, {
      'last-event-id': ends[0]!,
    });
    assert.equal(after.statusCode, 204);
    assert.equal(after.body, '');
  });

  it('opens a stream for a browser EventSource, which cannot send a token, by a signed link', async () => {
    const job = await heldJob();
    const link = await streamer.post(`/api/ai/jobs/${job.id}/events/link`);
    assert.equal(link.statusCode, 201, link.body);
    const { url, expiresAt } = link.json<{ url: string; expiresAt: string }>();
    assert.match(url, new RegExp(`^/api/ai/jobs/${job.id}/events\\?access=`));
    assert.ok(Date.parse(expiresAt) > Date.now());

    const source = new EventSource(`${secondUrl}${url}`);
    const types: string[] = [];
    for (const type of ['status', 'progress', 'end']) {
      source.addEventListener(type, () => types.push(type));
    }
    try {
      await eventually(
        async () => types,
        (seen) => seen.includes('status'),
        { what: 'the first event through the link' },
      );
      job.release();
      await eventually(
        async () => source.readyState,
        (state) => state === EventSource.CLOSED,
        { what: 'the EventSource to stop after the end' },
      );
    } finally {
      source.close();
    }
    assert.equal(types.filter((type) => type === 'end').length, 1);

    // The link opens that stream and nothing else.
    const other = await heldJob();
    const access = new URL(url, secondUrl).searchParams.get('access')!;
    const elsewhere = await fetch(`${secondUrl}/api/ai/jobs/${other.id}/events?access=${access}`);
    assert.equal(elsewhere.status, 403);
    assert.equal(
      ((await elsewhere.json()) as { error: { code: string } }).error.code,
      'STREAM_LINK_INVALID',
    );
    const view = await fetch(`${secondUrl}/api/ai/jobs/${job.id}?access=${access}`);
    assert.equal(view.status, 403);
    const tampered = await fetch(`${secondUrl}${url.slice(0, -2)}xx`);
    assert.equal(tampered.status, 403);
    const stranger = await first.user('stranger').post(`/api/ai/jobs/${job.id}/events/link`);
    assert.equal(stranger.statusCode, 404);
    other.release();
  });

  it('refuses a malformed Last-Event-ID and streams of unknown or other users’ jobs', async () => {
    const job = await heldJob();
    const bad = await streamer.get(`/api/ai/jobs/${job.id}/events`, {
      'last-event-id': 'yesterday',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ error: { code: string } }>().error.code, 'VALIDATION_FAILED');
    assert.match(bad.body, /last-event-id/);
    // An empty one is no id at all (SSE resets the last event id with an empty `id:`): the
    // stream starts from the first event.
    const empty = await streamer.request({
      method: 'HEAD',
      url: `/api/ai/jobs/${job.id}/events`,
      headers: { 'last-event-id': '' },
    });
    assert.equal(empty.statusCode, 200, empty.body);
    // An id past the job's log was never sent: a stream resumed after it would wait for good.
    const ahead = await streamer.get(`/api/ai/jobs/${job.id}/events`, { 'last-event-id': '50' });
    assert.equal(ahead.statusCode, 400, ahead.body);
    const [issue] = ahead.json<{
      error: { details: { issues: { field: string; message: string }[] } };
    }>().error.details.issues;
    assert.equal(issue?.field, 'headers.last-event-id');
    assert.match(
      issue?.message ?? '',
      /^must be the id of an event this stream sent \(the .+'s last is \d+\)$/,
    );
    // So is a piece of output past those logged: a stream resumed after it would pass over the
    // pieces the job streams up to it.
    const lastState = (await loggedIds(job.id)).at(-1)!;
    const outputAhead = await streamer.get(`/api/ai/jobs/${job.id}/events`, {
      'last-event-id': `${lastState}-3`,
    });
    assert.equal(outputAhead.statusCode, 400, outputAhead.body);
    assert.match(outputAhead.body, new RegExp(`state ${lastState} has no output`));
    // An `end` follows only the state that ended the job, and this one runs.
    const endAhead = await streamer.get(`/api/ai/jobs/${job.id}/events`, {
      'last-event-id': `${lastState}-end`,
    });
    assert.equal(endAhead.statusCode, 400, endAhead.body);
    assert.match(endAhead.body, new RegExp(`did not end at state ${lastState}`));
    // Ids are written one way: no leading zero, no part 0.
    for (const unwritten of [`0${lastState}`, `${lastState}-0`, `${lastState}-01`]) {
      const refused = await streamer.get(`/api/ai/jobs/${job.id}/events`, {
        'last-event-id': unwritten,
      });
      assert.equal(refused.statusCode, 400, `${unwritten}: ${refused.body}`);
    }

    const stranger = await first.user('stranger').get(`/api/ai/jobs/${job.id}/events`);
    const unknown = await streamer.get('/api/ai/jobs/no-such-job/events');
    assert.equal(stranger.statusCode, 404);
    assert.equal(unknown.statusCode, 404);
    assert.equal(
      stranger.json<{ error: { code: string } }>().error.code,
      unknown.json<{ error: { code: string } }>().error.code,
    );
    job.release();
  });
});
