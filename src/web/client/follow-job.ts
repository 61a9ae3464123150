/**
 * Follows one job live: its progress stream (Server-Sent Events through a signed link, since an
 * EventSource cannot send the token), and polling every 3 s whenever the stream is down or
 * unavailable. Events are applied once each, in order: after a network drop or an API restart
 * the EventSource reconnects with Last-Event-ID by itself; when it cannot (its link expired, the
 * API answered an error), a new link opens a new stream after the last event applied
 * (`?lastEventId=`, since an EventSource cannot set the header).
 *
 * An end is shown at once but confirmed before the following stops, since the API can log a
 * correction after it: a workflow task that Temporal refused may have projected an end that the
 * task replacing it superseded. After the `end` event the stream stays open, so the browser
 * reconnects with the end's id (2 s later, as the API's `retry` asks): a correction comes as
 * further events, followed as before, up to a new end confirmed in turn; a 204 closes the
 * EventSource, and one read of the job finding the same end confirms it (a link that expired
 * during a long job closes it too, and the read finds what the refused reconnect would have).
 * An end found by polling is confirmed by the next poll finding the same end (the same
 * `updatedAt`). An end still unconfirmed after 15 s (the network is down) stands as shown, and
 * the following stops.
 *
 * A connection that died without closing (the network dropped under a sleeping laptop, a proxy
 * lost it) leaves an EventSource open and silent, with no error. The API sends a `keepalive`
 * event every interval it names in it: a stream silent for three of them is closed, the page
 * polls, and a new stream follows from the last event applied.
 */
import type { JobEvent } from '../../jobs/job-event.js';
import { ApiFailure } from './api.js';
import { isAfter, parsePosition, positionId, type StreamPosition } from './stream-position.js';

/** One event of the stream, as src/jobs/job-event.ts defines it. */
export type JobEventData = JobEvent;

/**
 * How the page hears of the job now: `stream` (live), `polling` (every 3 s), `connecting`, or
 * `unreachable` (polls fail: the network or the API is down; it keeps trying).
 */
export type Transport = 'connecting' | 'stream' | 'polling' | 'unreachable';

export interface FollowOptions<View extends FollowedView> {
  /** A signed link to the job's stream. */
  link: () => Promise<{ url: string }>;
  /** The job now (what polling reads). */
  read: () => Promise<View>;
  ended: (view: View) => boolean;
  onEvent: (event: JobEventData) => void;
  /** A polled view of the job in flight. */
  onView: (view: View) => void;
  /** The view of an end; another may follow it if the end was superseded (a correction). */
  onEnd: (view: View) => void;
  onTransport: (transport: Transport) => void;
  /**
   * Why the job does not move when no worker serves the queue its next task waits in, as the
   * stream's keep-alives and the polled views tell it; null once nothing says so.
   */
  onWaitingForWorker: (waiting: WaitingForWorker | null) => void;
  /** A failure that stops the following (the job is gone, the token refused). */
  onFailure: (failure: ApiFailure) => void;
  /** Only poll (no stream): `?live=poll` on the page's address, or no EventSource. */
  pollOnly?: boolean;
  pollMs?: number;
  /**
   * How long an end shown waits for its confirmation before the following stops anyway
   * (default 15 s): `?confirm-end-ms=` on the page's address, for the browser tests.
   */
  confirmEndMs?: number | undefined;
  /** Where an earlier following stopped: events up to it are not applied again (after a retry). */
  after?: StreamPosition;
  /**
   * The attempt followed (default 1). Right after a retry is accepted the job may still read as
   * the attempt that failed, its new state not yet recorded: the events and views of earlier
   * attempts, polled or in an `end` event, are passed over and the page asks again.
   */
  attempt?: number;
}

const streamRetryMs = { first: 1_000, most: 30_000 };
const defaultConfirmEndMs = 15_000;
/** Keep-alive intervals of silence after which an open stream is taken for dead. */
const silentKeepAlives = 3;
/** The API's keep-alive interval by default: until a stream's first keep-alive names its own. */
const defaultKeepAliveMs = 15_000;

/** What a job that waits for a missing worker says of it (the API's `waitingForWorker`). */
export interface WaitingForWorker {
  queue: string;
  taskQueue: string;
  message: string;
}

/**
 * What the following reads of a view: its attempt, `updatedAt` to tell two ends apart, and
 * what it waits for.
 */
interface FollowedView {
  attempt: number;
  updatedAt: string;
  waitingForWorker?: WaitingForWorker;
}

export interface Following {
  stop(): void;
  /** The last event applied. */
  position(): StreamPosition | null;
}

export function followJob<View extends FollowedView>(options: FollowOptions<View>): Following {
  const pollMs = options.pollMs ?? 3_000;
  const confirmEndMs = options.confirmEndMs ?? defaultConfirmEndMs;
  const stale = (item: { attempt: number }) => item.attempt < (options.attempt ?? 1);
  let last: StreamPosition | null = options.after ?? null;
  let source: EventSource | null = null;
  let pollTimer: ReturnType<typeof setTimeout> | null = null;
  let streamTimer: ReturnType<typeof setTimeout> | null = null;
  let confirmTimer: ReturnType<typeof setTimeout> | null = null;
  let silenceTimer: ReturnType<typeof setTimeout> | null = null;
  // The end shown, until it is confirmed or the job goes on after it.
  let endShown: View | null = null;
  let streamDelay = streamRetryMs.first;
  let stopped = false;
  let polling = false;
  // A link is being asked for: a second stream must not be opened meanwhile.
  let opening = false;

  const stop = () => {
    stopped = true;
    source?.close();
    source = null;
    if (pollTimer) clearTimeout(pollTimer);
    if (streamTimer) clearTimeout(streamTimer);
    if (confirmTimer) clearTimeout(confirmTimer);
    if (silenceTimer) clearTimeout(silenceTimer);
    removeEventListener('offline', wentOffline);
    removeEventListener('online', cameBackOnline);
  };
  const showEnd = (view: View) => {
    endShown = view;
    options.onWaitingForWorker(null);
    if (confirmTimer) clearTimeout(confirmTimer);
    confirmTimer = setTimeout(stop, confirmEndMs);
    options.onEnd(view);
  };
  /** The job went on after the end shown (retried, or the end superseded by a state in flight). */
  const wentOn = () => {
    endShown = null;
    if (confirmTimer) clearTimeout(confirmTimer);
  };
  const fail = (failure: ApiFailure) => {
    stop();
    options.onFailure(failure);
  };

  function startPolling() {
    if (polling || stopped) return;
    polling = true;
    if (!endShown) options.onTransport('polling');
    const tick = async () => {
      if (!polling || stopped) return;
      try {
        const view = await options.read();
        if (stopped) return;
        if (stale(view)) {
          pollTimer = setTimeout(() => void tick(), pollMs);
          return;
        }
        if (options.ended(view)) {
          if (view.updatedAt === endShown?.updatedAt) return stop();
          // Confirmed by polling: a stream opened meanwhile would show the end again.
          source?.close();
          source = null;
          if (streamTimer) clearTimeout(streamTimer);
          showEnd(view);
        } else {
          wentOn();
          if (polling) options.onTransport('polling');
          options.onView(view);
          options.onWaitingForWorker(view.waitingForWorker ?? null);
        }
      } catch (error) {
        // A network error or an API restarting: keep polling, the page says it is retrying
        // (unless an end is shown, which stands while its confirmation is awaited).
        if (error instanceof ApiFailure && (error.status === 401 || error.status === 404)) {
          return fail(error);
        }
        if (polling && !endShown) options.onTransport('unreachable');
      }
      if (polling && !stopped) pollTimer = setTimeout(() => void tick(), pollMs);
    };
    void tick();
  }

  function stopPolling() {
    polling = false;
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function retryStreamLater() {
    if (stopped) return;
    startPolling();
    streamTimer = setTimeout(() => void openStream(), streamDelay);
    streamDelay = Math.min(streamDelay * 2, streamRetryMs.most);
  }

  function apply(event: MessageEvent<string>) {
    const position = parsePosition(event.lastEventId);
    if (!position || !isAfter(position, last)) return;
    last = position;
    const data = JSON.parse(event.data) as JobEventData;
    if (!stale(data)) options.onEvent(data);
  }

  async function openStream() {
    if (stopped || opening || endShown) return;
    options.onTransport('connecting');
    let url: string;
    opening = true;
    try {
      ({ url } = await options.link());
    } catch (error) {
      if (error instanceof ApiFailure && (error.status === 401 || error.status === 404)) {
        return fail(error);
      }
      return retryStreamLater();
    } finally {
      opening = false;
    }
    if (stopped || endShown) return;
    // A new stream starts after the last event applied, as the browser's own reconnect does.
    if (last) url += `${url.includes('?') ? '&' : '?'}lastEventId=${positionId(last)}`;
    const stream = new EventSource(url);
    source = stream;
    let keepAliveMs = defaultKeepAliveMs;
    const heard = () => {
      if (silenceTimer) clearTimeout(silenceTimer);
      silenceTimer = setTimeout(() => wentSilent(stream), silentKeepAlives * keepAliveMs);
    };
    stream.addEventListener('open', () => {
      heard();
      // Opened after an end, the stream has what came after it: the job went on.
      wentOn();
      streamDelay = streamRetryMs.first;
      stopPolling();
      options.onTransport('stream');
    });
    stream.addEventListener('keepalive', (event: MessageEvent<string>) => {
      const data = JSON.parse(event.data) as {
        intervalMs: number;
        waitingForWorker?: WaitingForWorker;
      };
      keepAliveMs = data.intervalMs;
      heard();
      if (!endShown) options.onWaitingForWorker(data.waitingForWorker ?? null);
    });
    for (const type of ['status', 'progress', 'output'] as const) {
      stream.addEventListener(type, (event: MessageEvent<string>) => {
        heard();
        apply(event);
      });
    }
    stream.addEventListener('end', (event: MessageEvent<string>) => {
      heard();
      const view = JSON.parse(event.data) as View;
      if (stale(view)) {
        // The end of the attempt before: the new one has not begun yet.
        stream.close();
        source = null;
        return retryStreamLater();
      }
      const position = parsePosition(event.lastEventId);
      if (position) last = position;
      // The stream stays open: the browser reconnects with this end's id to confirm it.
      showEnd(view);
    });
    stream.addEventListener('error', () => {
      if (stopped || source !== stream) return;
      // The browser reconnects by itself, or the stream is closed: either way, not silent.
      if (silenceTimer) clearTimeout(silenceTimer);
      if (endShown) {
        // A reconnect that failed on the network is tried again by the browser until the
        // confirmation's deadline; closed, it was answered 204 (the end stands) or refused (its
        // link expired during a long job), which an EventSource cannot tell apart.
        if (stream.readyState === EventSource.CLOSED) {
          source = null;
          void confirmByRead();
        }
      } else if (stream.readyState === EventSource.CLOSED) {
        // Refused (an expired link, the API answering an error): a new link, a new stream.
        source = null;
        retryStreamLater();
      } else {
        // The browser reconnects with Last-Event-ID by itself; meanwhile, poll.
        startPolling();
      }
    });
  }

  /** Closes a stream that has said nothing for too long; after an end, a read confirms it. */
  function wentSilent(stream: EventSource) {
    if (stopped || source !== stream) return;
    stream.close();
    source = null;
    if (endShown) void confirmByRead();
    else retryStreamLater();
  }

  /** Reads the job once after its stream closed on an end: the same end stops the following. */
  async function confirmByRead() {
    let view: View;
    try {
      view = await options.read();
    } catch (error) {
      if (error instanceof ApiFailure && (error.status === 401 || error.status === 404)) {
        return fail(error);
      }
      // Unreachable: the end shown stands until the confirmation's deadline.
      return;
    }
    if (stopped) return;
    if (options.ended(view) && view.updatedAt === endShown?.updatedAt) return stop();
    // The job went on after the end shown: a new stream sends what followed it.
    wentOn();
    void openStream();
  }

  // A dropped network can leave the stream's connection open and silent, with no error: when
  // the browser says it is offline, the page stops trusting the stream and polls (saying the
  // service cannot be reached); back online, it opens a new stream at once rather than after
  // the next retry delay, which starts after the last event applied.
  function wentOffline() {
    if (stopped || !source) return;
    source.close();
    source = null;
    startPolling();
  }
  function cameBackOnline() {
    if (stopped || source || endShown) return;
    if (streamTimer) clearTimeout(streamTimer);
    streamDelay = streamRetryMs.first;
    // The stream, which sends every event after the last applied, tells the rest; a poll that
    // found the end first would cut it short. Should the stream fail, polling starts again.
    stopPolling();
    void openStream();
  }

  if (options.pollOnly || typeof EventSource === 'undefined') startPolling();
  else {
    addEventListener('offline', wentOffline);
    addEventListener('online', cameBackOnline);
    void openStream();
  }
  return { stop, position: () => last };
}
