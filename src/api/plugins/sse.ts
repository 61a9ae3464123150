import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../../db/database.js';
import type { JobRow } from '../../db/schema.js';
import {
  endEventId,
  jobEventId,
  type JobEvent,
  type StreamResumePoint,
} from '../../jobs/job-event.js';
import { isTerminalStatus, type JobStatus } from '../../jobs/model.js';
import { openSseStreams, sseStreamsMax } from '../../metrics/metrics.js';
import { ApiError } from '../errors.js';
import { CountsByUser } from '../services/counts-by-user.js';
import { JobEventFeed, type JobEventFeedSettings } from '../services/job-event-feed.js';
import type { WorkerWaits } from '../services/worker-waits.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Opens a job's progress stream on a reply (Server-Sent Events). */
    jobEventStreams: JobEventStreams;
  }
}

/** What a client that lost the stream waits before reconnecting (the SSE `retry` field). */
const reconnectDelayMs = 2_000;

/**
 * Keep-alive intervals a stream's client may take nothing while writes wait for it before the
 * stream is dropped.
 */
const stalledKeepAlives = 2;

/**
 * Seconds a user at their cap of streams is told to wait: theirs close as their jobs end, as a
 * job in flight does (TOO_MANY_JOBS_IN_FLIGHT waits as long), and polling loses nothing meanwhile.
 */
const userCapRetryAfterSeconds = 15;
/** Seconds a client refused by a full API process is told to wait: the retry may reach another. */
const processCapRetryAfterSeconds = 5;

/** Caps on the progress streams of one API process: each holds a socket (a file descriptor). */
export interface JobEventStreamLimits {
  /** Most streams one user may hold open (429 TOO_MANY_STREAMS above). */
  maxPerUser: number;
  /** Most streams in all (503 STREAM_CAPACITY_REACHED above). */
  maxOpen: number;
}

export interface JobEventStreamRequest {
  /** The user the stream is counted against. */
  userId: string;
  row: JobRow;
  /** The stream starts after this event (the client's `Last-Event-ID`), or from the first. */
  after: StreamResumePoint;
  /** The job as it is now (its row read again). */
  reload: () => Promise<JobRow>;
  /** The job as its own GET route shows it: the data of the final `end` event. */
  view: (row: JobRow) => Promise<unknown>;
  log: FastifyBaseLogger;
}

/**
 * The progress streams of this API process: each follows the job's durable event log through
 * the shared feed. When the job ends (`completed`, `failed`, `timeout`, `cancelled`) an `end`
 * event follows and the stream closes. A client that reconnects after the `end` (as an
 * EventSource does when the server closes) is answered 204, which stops an EventSource for
 * good, while that end is still the job's last state. A job that went on after it (a retry,
 * or an end superseded by what really happened, which the projection logs as the next event)
 * goes on in the resumed stream instead, up to its next `end`.
 */
export class JobEventStreams {
  /** Each open stream, with what counts it closed against its user. */
  private readonly open = new Map<ServerResponse, () => void>();
  private readonly openByUser = new CountsByUser();

  constructor(
    private readonly feed: JobEventFeed,
    private readonly limits: JobEventStreamLimits,
    private readonly waits: WorkerWaits,
  ) {}

  /** The last part of output logged after state `seq` of the job; 0 for none. */
  lastOutputPart(jobId: string, seq: number): Promise<number> {
    return this.feed.lastOutputPart(jobId, seq);
  }

  /** The status of state `seq` in the job's log; undefined when no such state was logged. */
  statusAt(jobId: string, seq: number): Promise<JobStatus | undefined> {
    return this.feed.statusAt(jobId, seq);
  }

  /** Takes the reply over and streams the job's events on it until the job ends or the client goes. */
  async stream(reply: FastifyReply, job: JobEventStreamRequest): Promise<void> {
    const { row, after } = job;
    if (after.ended && isTerminalStatus(row.status) && row.projection_seq <= after.seq) {
      // Written whole here: Fastify gives a HEAD's empty answer a Content-Length, which a 204
      // must not carry (RFC 9110, 8.6), and a GET's has none.
      reply.hijack();
      reply.raw.writeHead(204, reply.getHeaders() as OutgoingHttpHeaders).end();
      return;
    }
    this.refuseOverCap(job.userId);
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      ...(reply.getHeaders() as OutgoingHttpHeaders),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Node sends a HEAD no body, and so not the headers either until the answer ends: a stream
    // would leave it waiting for good. It gets the headers a GET gets, and no stream.
    if (reply.request.method === 'HEAD') {
      response.end();
      return;
    }
    this.hold(job.userId, response);
    const keepAliveMs = this.feed.keepAliveMs;
    const write = streamWriter(response, stalledKeepAlives * keepAliveMs);
    /** The job's status as the stream last told it: what the keep-alive's waiting is read for. */
    let status: string = row.status;
    // A job that waits for a worker sends no events: its keep-alives say why it does not move.
    const keepAliveEvent = () => {
      const waitingForWorker = this.waits.of({ status, workflowId: row.workflow_id });
      const data = { intervalMs: keepAliveMs, ...(waitingForWorker && { waitingForWorker }) };
      return `event: keepalive\ndata: ${JSON.stringify(data)}\n\n`;
    };
    // The first keep-alive at once tells the client the interval its silence is measured in.
    void write(`retry: ${reconnectDelayMs}\n\n${keepAliveEvent()}`);
    const keepAlive = setInterval(() => {
      // A client behind on the events needs no keep-alive; the writer's stall timer watches it.
      if (!write.blocked()) void write(keepAliveEvent());
    }, keepAliveMs);
    let unsubscribe = () => undefined as void;
    const finish = () => {
      clearInterval(keepAlive);
      unsubscribe();
      this.release(response);
      if (!response.writableEnded) response.end();
    };
    response.on('close', finish);

    /** Sends the `end` event if the job has nothing after `seq` and has ended; says whether it did. */
    const endIfOver = async (seq: number): Promise<boolean> => {
      const current = await job.reload();
      if (current.projection_seq > seq || !isTerminalStatus(current.status)) return false;
      const view = JSON.stringify(await job.view(current));
      await write(`id: ${endEventId(current.projection_seq)}\nevent: end\ndata: ${view}\n\n`);
      finish();
      return true;
    };

    // An ended job takes no more output, so nothing follows its last state.
    if (isTerminalStatus(row.status) && row.projection_seq <= after.seq) {
      try {
        if (await endIfOver(after.seq)) return;
      } catch (error) {
        // The headers are sent: the stream is closed, so its client reconnects and resumes.
        job.log.error({ err: error }, 'progress stream failed');
        finish();
        return;
      }
    }
    unsubscribe = this.feed.subscribe(row.id, after, async (events) => {
      try {
        for (const event of events) {
          if (!(await write(formatEvent(event)))) return false;
          if (event.type !== 'output') status = event.status;
        }
        const last = events.at(-1)!;
        return !(
          last.type !== 'output' &&
          isTerminalStatus(last.status) &&
          (await endIfOver(last.seq))
        );
      } catch (error) {
        // A stream that cannot go on is closed, so its client reconnects and resumes.
        job.log.error({ err: error }, 'progress stream failed');
        finish();
        return false;
      }
    });
    if (response.destroyed) finish();
  }

  /**
   * Refuses a stream the user or this process has no room for. Nothing is awaited between this
   * and `hold`, so concurrent requests cannot all pass it.
   */
  private refuseOverCap(userId: string): void {
    const { maxPerUser, maxOpen } = this.limits;
    const held = this.openByUser.of(userId);
    if (held >= maxPerUser) {
      throw new ApiError(
        'TOO_MANY_STREAMS',
        `You have ${held} progress streams open, the most allowed (${maxPerUser}); close one, or poll the job`,
        { open: held, limit: maxPerUser },
        { 'retry-after': String(userCapRetryAfterSeconds) },
      );
    }
    if (this.open.size >= maxOpen) {
      throw new ApiError(
        'STREAM_CAPACITY_REACHED',
        `This API process holds as many progress streams open as it may (${maxOpen}); try again, or poll the job`,
        { limit: maxOpen },
        { 'retry-after': String(processCapRetryAfterSeconds) },
      );
    }
  }

  private hold(userId: string, response: ServerResponse): void {
    this.open.set(response, this.openByUser.add(userId));
    openSseStreams.inc();
  }

  /** Counts the stream closed, once, however it closed. */
  private release(response: ServerResponse): void {
    const close = this.open.get(response);
    if (!close) return;
    this.open.delete(response);
    close();
    openSseStreams.dec();
  }

  /** Ends every open stream: they never finish on their own, and their clients reconnect to another process. */
  endAll(): void {
    for (const response of this.open.keys()) response.end();
  }
}

/**
 * One event in SSE framing. The data is JSON on one line: a model's text in it, newlines and
 * all, is an escaped string, never a line of the stream.
 */
function formatEvent(event: JobEvent): string {
  return `id: ${jobEventId(event)}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Writes a chunk and waits for the client to take it if it is behind; false once it has gone. */
interface StreamWrite {
  (chunk: string): Promise<boolean>;
  /** A write is waiting for the client to take what was sent before it. */
  blocked(): boolean;
}

/**
 * The writes of one stream. A client that takes nothing for `stallMs` while writes wait for it
 * is dropped, freeing its stream's slot: its peer vanished without closing the connection (a
 * laptop gone from the network, a frozen tab, a proxy that lost its client), or it reads too
 * little to follow the job anyway, and it reconnects with Last-Event-ID if it is still there.
 */
function streamWriter(response: ServerResponse, stallMs: number): StreamWrite {
  let stall: NodeJS.Timeout | null = null;
  const drained = () => {
    if (stall) clearTimeout(stall);
    stall = null;
  };
  response.on('drain', drained);
  response.on('close', drained);
  const write = async (chunk: string): Promise<boolean> => {
    if (response.destroyed || response.writableEnded) return false;
    if (response.write(chunk)) return true;
    stall ??= setTimeout(() => response.destroy(), stallMs);
    return new Promise((resolve) => {
      const done = (took: boolean) => {
        response.off('drain', onDrain);
        response.off('close', onClose);
        resolve(took);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      response.on('drain', onDrain);
      response.on('close', onClose);
    });
  };
  return Object.assign(write, { blocked: () => stall !== null });
}

/** Progress streams (Server-Sent Events) for the whole app, over one feed of the job event log. */
export const jobEventStreams = fp(
  async (
    app: FastifyInstance,
    {
      db,
      limits,
      waits,
      ...settings
    }: JobEventFeedSettings & { db: Db; limits: JobEventStreamLimits; waits: WorkerWaits },
  ) => {
    const feed = new JobEventFeed(db, settings, app.log);
    const streams = new JobEventStreams(feed, limits, waits);
    sseStreamsMax.set(limits.maxOpen);
    app.decorate('jobEventStreams', streams);
    app.addHook('preClose', async () => streams.endAll());
    app.addHook('onClose', async () => feed.close());
  },
  { name: 'job-event-streams' },
);
