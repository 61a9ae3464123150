import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../../db/database.js';
import { jobStatusAt, lastJobOutputPart, readJobEvents } from '../../db/job-events.js';
import type { JobStatus } from '../../jobs/model.js';
import type { JobEvent, JobEventPosition } from '../../jobs/job-event.js';

/**
 * Hands what a reader receives; resolves once the reader can take more (its client drained),
 * with false when it wants no more. A reader handles its own failures.
 */
export type JobEventReader = (events: JobEvent[]) => Promise<boolean>;

export interface JobEventFeedSettings {
  /** Pause between reads of the log while streams are open. */
  pollMs: number;
  keepAliveMs: number;
}

interface Subscription {
  jobId: string;
  afterSeq: number;
  afterPart: number;
  read: JobEventReader;
  /** A delivery is under way: the reader's client has not taken the last events yet. */
  busy: boolean;
}

/** Most events one reader gets per round; a longer backlog follows in the next rounds. */
const batchSize = 100;
/** Most readers asked about in one query. */
const cursorsPerQuery = 500;

/**
 * Follows the job event log in the database for every open progress stream of this API
 * process. One query per round serves all streams, and a stream whose client reads slowly is
 * left out of rounds until it drains, so no client slows another or piles up memory. The log,
 * not this process, holds the events: any API process serves any stream, and a reconnecting
 * client resumes from its last event id.
 */
export class JobEventFeed {
  private readonly subscriptions = new Set<Subscription>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private pollAgain = false;

  constructor(
    private readonly db: Db,
    private readonly settings: JobEventFeedSettings,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Pause between the keep-alive events of a stream (they keep it open through proxies too). */
  get keepAliveMs(): number {
    return this.settings.keepAliveMs;
  }

  /** The last part of output logged after state `seq` of the job; 0 for none. */
  lastOutputPart(jobId: string, seq: number): Promise<number> {
    return lastJobOutputPart(this.db, jobId, seq);
  }

  /** The status of state `seq` in the job's log; undefined when no such state was logged. */
  statusAt(jobId: string, seq: number): Promise<JobStatus | undefined> {
    return jobStatusAt(this.db, jobId, seq);
  }

  /** Delivers the job's events after `after`, as they are written, until unsubscribed. */
  subscribe(jobId: string, after: JobEventPosition, read: JobEventReader): () => void {
    const subscription: Subscription = {
      jobId,
      afterSeq: after.seq,
      afterPart: after.part,
      read,
      busy: false,
    };
    this.subscriptions.add(subscription);
    this.wake();
    return () => {
      this.subscriptions.delete(subscription);
    };
  }

  /** Stops polling; what is subscribed stays subscribed (streams end on their own). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.subscriptions.clear();
  }

  /** Polls now rather than at the next tick, so a new stream starts without a wait. */
  private wake(): void {
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.poll();
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const ready = [...this.subscriptions].filter((subscription) => !subscription.busy);
      for (let start = 0; start < ready.length; start += cursorsPerQuery) {
        await this.deliver(ready.slice(start, start + cursorsPerQuery));
      }
    } catch (error) {
      // The database is away; streams stay open and catch up from the log when it is back.
      this.log.warn({ err: error }, 'job event poll failed');
    } finally {
      this.polling = false;
    }
    if (this.subscriptions.size === 0) return;
    const delay = this.pollAgain ? 0 : this.settings.pollMs;
    this.pollAgain = false;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll();
    }, delay);
  }

  private async deliver(subscriptions: Subscription[]): Promise<void> {
    const rows = await readJobEvents(this.db, subscriptions, batchSize);
    const batches = new Map<Subscription, JobEvent[]>();
    for (const { cursor, event } of rows) {
      const subscription = subscriptions[cursor]!;
      const batch = batches.get(subscription) ?? [];
      batch.push(event);
      batches.set(subscription, batch);
    }
    for (const [subscription, events] of batches) {
      if (!this.subscriptions.has(subscription)) continue;
      subscription.busy = true;
      const last = events.at(-1)!;
      subscription.afterSeq = last.seq;
      subscription.afterPart = last.part;
      subscription
        .read(events)
        .then((more) => {
          subscription.busy = false;
          if (!more) this.subscriptions.delete(subscription);
          else if (events.length === batchSize) this.wake();
        })
        .catch(() => this.subscriptions.delete(subscription));
    }
  }
}
