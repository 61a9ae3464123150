/**
 * The vlog uploads one API process is reading, counted per user. An upload is no job until it
 * has been read, so the in-flight cap does not count it, yet it may hold VLOG_MAX_FILES ×
 * VLOG_MAX_FILE_BYTES of storage for as long as its client keeps it open. Counted as progress
 * streams are (CountsByUser): each API process holds a user to the cap on its own.
 */
import { ApiError } from '../../../api/errors.js';
import { CountsByUser } from '../../../api/services/counts-by-user.js';

/**
 * Seconds a user at the cap is told to wait: an upload lasts as long as its files take to send,
 * and the page can say so meanwhile.
 */
const retryAfterSeconds = 30;

export class UploadsInProgress {
  private readonly byUser = new CountsByUser();

  constructor(
    /** Most uploads one user may have in progress (429 TOO_MANY_UPLOADS above). */
    private readonly maxPerUser: number,
  ) {}

  /**
   * Counts an upload of the user, or refuses it with 429 TOO_MANY_UPLOADS. Returns what ends
   * it, to be called however the upload ends; only its first call counts.
   */
  hold(userId: string): () => void {
    const held = this.byUser.of(userId);
    if (held >= this.maxPerUser) {
      throw new ApiError(
        'TOO_MANY_UPLOADS',
        `You have ${held} vlog uploads in progress, the most allowed (${this.maxPerUser}); wait for one to finish`,
        { inProgress: held, limit: this.maxPerUser },
        { 'retry-after': String(retryAfterSeconds) },
      );
    }
    return this.byUser.add(userId);
  }
}
