/**
 * The vlog uploads one API process is reading, counted per user. An upload is no job until it
 * has been read, so the in-flight cap does not count it, yet it may hold VLOG_MAX_FILES ×
 * VLOG_MAX_FILE_BYTES of storage for as long as its client keeps it open. Counted in memory,
 * as progress streams are: each API process holds a user to the cap on its own.
 */
import { ApiError } from '../../../api/errors.js';

/**
 * Seconds a user at the cap is told to wait: an upload lasts as long as its files take to send,
 * and the page can say so meanwhile.
 */
const retryAfterSeconds = 30;

export class UploadsInProgress {
  private readonly byUser = new Map<string, number>();

  constructor(
    /** Most uploads one user may have in progress (429 TOO_MANY_UPLOADS above). */
    private readonly maxPerUser: number,
  ) {}

  /**
   * Counts an upload of the user, or refuses it with 429 TOO_MANY_UPLOADS. Returns what ends
   * it, to be called however the upload ends; only its first call counts.
   */
  hold(userId: string): () => void {
    const held = this.inProgress(userId);
    if (held >= this.maxPerUser) {
      throw new ApiError(
        'TOO_MANY_UPLOADS',
        `You have ${held} vlog uploads in progress, the most allowed (${this.maxPerUser}); wait for one to finish`,
        { inProgress: held, limit: this.maxPerUser },
        { 'retry-after': String(retryAfterSeconds) },
      );
    }
    this.byUser.set(userId, held + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = this.inProgress(userId) - 1;
      if (left === 0) this.byUser.delete(userId);
      else this.byUser.set(userId, left);
    };
  }

  /** The user's uploads in progress now. */
  inProgress(userId: string): number {
    return this.byUser.get(userId) ?? 0;
  }
}
