/**
 * What a provider activity answers instead of calling the provider when the provider-quota
 * governor holds it back: no lease is free, or the provider is cooling down after a 429. The
 * workflow waits `retryAfterMs` on a durable timer and calls the activity again. Pure, so
 * workflows may import it.
 */
export interface ProviderThrottle {
  throttled: true;
  /**
   * `quota`: every lease is taken; `rate-limited`: the provider answered 429 (to anyone);
   * `unanswered`: the job's own submission got no answer, and what the provider may have made
   * of it is being looked for.
   */
  reason: 'quota' | 'rate-limited' | 'unanswered';
  /** When to ask again: the provider's own retry delay, the cool-down left, or the lease backoff. */
  retryAfterMs: number;
  /** Jobs ahead in the provider's waiting list; null when the wait is a cool-down. */
  ahead: number | null;
}

/** Whether an activity's answer is a throttle to wait out rather than its result. */
export function isThrottled<T extends object>(
  answer: T | ProviderThrottle,
): answer is ProviderThrottle {
  return 'throttled' in answer;
}

/**
 * A wait as a person reads it: seconds up to two minutes, then minutes up to two hours, then
 * hours (a job far back in a long line asks again hours later).
 */
export function waitInWords(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.round(minutes / 60)} h`;
}

/** The job's phase while it waits: "waiting for video generation quota (3 ahead, retry in 20 s)". */
export function throttlePhase(what: string, throttle: ProviderThrottle): string {
  if (throttle.reason === 'unanswered')
    return `waiting for the ${what} an unanswered submission may have started (look again in ${waitInWords(throttle.retryAfterMs)})`;
  const where =
    throttle.reason === 'rate-limited'
      ? 'the provider is rate limiting'
      : `${throttle.ahead ?? 0} ahead`;
  return `waiting for ${what} quota (${where}, retry in ${waitInWords(throttle.retryAfterMs)})`;
}

/** Any phase throttlePhase writes. */
const throttlePhasePattern =
  /^waiting for (?:[\w ]+ quota \((?:\d+ ahead|the provider is rate limiting), retry|the [\w ]+ an unanswered submission may have started \(look again) in \d+ (?:s|min|h)\)$/;

/** Whether a job's phase says it waits for a provider's quota (throttlePhase). */
export function isThrottlePhase(phase: string | null): boolean {
  return phase !== null && throttlePhasePattern.test(phase);
}
