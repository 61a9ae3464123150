/**
 * Calls that share one run while it runs: a call for a key whose run is under way gets that
 * run's answer, and the first call after it ends starts a new one, so answers are never stale.
 * For reads a client may flood (`/readyz`, a job's live view) whose cost falls on Temporal or
 * the database: one run a key at a time, not one a request.
 */
export function sharedWhileRunning<Key, Answer>(): (
  key: Key,
  run: () => Promise<Answer>,
) => Promise<Answer> {
  const running = new Map<Key, Promise<Answer>>();
  return (key, run) => {
    const underWay = running.get(key);
    if (underWay) return underWay;
    const started = run().finally(() => running.delete(key));
    running.set(key, started);
    return started;
  };
}
