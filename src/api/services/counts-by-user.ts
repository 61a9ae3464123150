/**
 * What one API process holds open for each user (progress streams, uploads in progress),
 * counted in memory: each process holds a user to a cap on its own, with no round trip.
 */
export class CountsByUser {
  private readonly counts = new Map<string, number>();

  /** What the user holds open now. */
  of(userId: string): number {
    return this.counts.get(userId) ?? 0;
  }

  /** Counts one more for the user; returns what counts it closed, once however often called. */
  add(userId: string): () => void {
    this.counts.set(userId, this.of(userId) + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = this.of(userId) - 1;
      if (left === 0) this.counts.delete(userId);
      else this.counts.set(userId, left);
    };
  }
}
