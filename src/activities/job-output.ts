import { log } from '@temporalio/activity';
import type { Db } from '../db/database.js';
import { appendJobOutput } from '../db/job-events.js';

/** Pieces of output that arrive within this long of each other go into one event. */
export const outputFlushMs = 250;

/**
 * A model's answer as it streams, written to the job's event log (and so to its progress
 * streams) in coalesced pieces: at most one event every `outputFlushMs`, so a thousand tokens
 * make a few dozen events, not a thousand. Writes go one after another, each with the offset of
 * its text in the answer; a write that fails keeps its text for the next one, so a reader never
 * sees a gap or a piece twice.
 */
export class JobOutputStream {
  private pending = '';
  private written = 0;
  private timer: NodeJS.Timeout | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly jobId: string,
    private readonly flushMs = outputFlushMs,
  ) {}

  /** Ends the answer so far; what is added next starts a new one, from offset 0. */
  async startAnswer(): Promise<void> {
    await this.flush();
    this.pending = '';
    this.written = 0;
  }

  add(piece: string): void {
    this.pending += piece;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.flushMs);
  }

  /** Writes what is pending now. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.writes = this.writes.then(() => this.writePending());
    return this.writes;
  }

  private async writePending(): Promise<void> {
    const text = this.pending;
    if (text === '') return;
    try {
      await appendJobOutput(this.db, this.jobId, { text, offset: this.written });
      this.pending = this.pending.slice(text.length);
      this.written += text.length;
    } catch (error) {
      log.warn('streamed output not written; kept for the next write', {
        jobId: this.jobId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
