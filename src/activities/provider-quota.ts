// The provider-quota governor as activities see it: before a paid call, is the provider cooling
// down after a 429, and is one of its leases free? After a 429, every worker cools down. A
// throttled call is an answer, not a failure: the workflow waits on a durable timer and asks
// again, so waiting for quota never uses up an activity's retry attempts. A provider whose
// requests are paced waits for its request slot right before each request.
import { setTimeout as delay } from 'node:timers/promises';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { msOptionalToNumber } from '@temporalio/common/lib/time.js';
import type { Db } from '../db/database.js';
import {
  acquireProviderLease,
  providerCooldownRemainingMs,
  recordProviderRecheck,
  returnProviderLease,
  startProviderCooldown,
  takeProviderRequestSlot,
} from '../db/provider-quota.js';
import { FailureCode } from '../jobs/failures.js';
import type { ProviderThrottle } from '../jobs/provider-throttle.js';
import type { ProviderQuotas } from '../providers/index.js';
import { ProviderError } from '../providers/types.js';

/** Longest wait a provider's hint may ask for; a larger one (or a wrong one) is cut to this. */
export const maxProviderHintMs = 10 * 60_000;

/**
 * Longest pause of a job waiting for a lease between two asks while the line is short: its
 * place in its phase is never older than this. A long line stretches it (leaseRecheckPauseMs).
 */
export const shortLineRecheckMs = 20 * 60_000;

/**
 * A lease or place in line nobody refreshed for this long, past the time its waiting job said
 * it would ask again, is dropped (its workflow is gone): longer than a provider's longest hint.
 */
export const leaseStaleAfterMs = 30 * 60_000;

/**
 * How long a job waiting for one of `limit` leases pauses before it asks again, from its place
 * (`ahead`) in a line of `waiting`. The jobs a freed lease admits are woken when it is freed,
 * so an ask only refreshes the job's place in its phase and catches a lease freed without a
 * wake-up; what the asks cost together must not grow with the line, since each is a workflow
 * task (ten thousand waiting vlogs each asking every 20 minutes kept a worker's workflow slots
 * from the fresh jobs of other users). The pause grows with the square of the rounds of leases
 * ahead (`recheckMs` × rounds²), so the first rounds together ask about 1.6 × limit ÷ recheckMs
 * times a second however many follow; and it stops growing at `shortLineRecheckMs`, or once
 * the line is long at `recheckMs` × waiting ÷ limit, so the jobs there ask no more than
 * limit ÷ recheckMs times a second together. With 10 leases and 10 s: at most about 2.6 asks a
 * second for any length of line.
 */
export function leaseRecheckPauseMs(place: {
  ahead: number;
  waiting: number;
  limit: number;
  recheckMs: number;
}): number {
  const { ahead, waiting, limit, recheckMs } = place;
  const rounds = 1 + Math.floor(ahead / limit);
  const longest = Math.max(shortLineRecheckMs, Math.ceil((recheckMs * waiting) / limit));
  return Math.min(recheckMs * rounds ** 2, longest);
}

/** Spreads the workers that a cool-down stopped over its last fifth, so they do not return at once. */
function spread(ms: number): number {
  return Math.round(ms * (1 + Math.random() * 0.2));
}

export interface QuotaRequest {
  db: Db;
  quotas: ProviderQuotas;
  provider: string;
  jobId: string;
  ownerId: string;
  /** Most operations at once; null: only the cool-down applies. */
  maxConcurrent: number | null;
}

/**
 * Whether the job may call the provider now: null when it may (holding a lease if the provider
 * has a limit), or the throttle to wait out.
 */
/** The pause the provider's cool-down after a 429 (anyone's) asks of every request; null: none. */
async function cooldownThrottle(db: Db, provider: string): Promise<ProviderThrottle | null> {
  const cooldownMs = await providerCooldownRemainingMs(db, provider);
  if (cooldownMs <= 0) return null;
  return {
    throttled: true,
    reason: 'rate-limited',
    retryAfterMs: Math.min(spread(cooldownMs), maxProviderHintMs),
    ahead: null,
  };
}

export async function admitToProvider(request: QuotaRequest): Promise<ProviderThrottle | null> {
  const { db, quotas, provider, jobId } = request;
  const cooling = await cooldownThrottle(db, provider);
  if (cooling) {
    // A place in line is kept through the cool-down however long it lasts (a day's quota
    // spent): not refreshed, it would be dropped as a terminated job's, and counted nowhere.
    await recordProviderRecheck(db, { provider, jobId, inMs: cooling.retryAfterMs });
    return cooling;
  }
  if (request.maxConcurrent === null) return null;
  const lease = await acquireProviderLease(db, {
    provider,
    jobId,
    ownerId: request.ownerId,
    limit: request.maxConcurrent,
    staleAfterMs: leaseStaleAfterMs,
  });
  if (lease.granted) return null;
  const pauseMs = leaseRecheckPauseMs({
    ahead: lease.ahead,
    waiting: lease.waiting,
    limit: request.maxConcurrent,
    recheckMs: quotas.recheckMs,
  });
  await recordProviderRecheck(db, { provider, jobId, inMs: pauseMs });
  return { throttled: true, reason: 'quota', retryAfterMs: pauseMs, ahead: lease.ahead };
}

/**
 * The provider's 429 / RESOURCE_EXHAUSTED in a failed call, as the provider error or as the
 * activity failure it was turned into (`toFailure`), with the retry delay it asked for; null
 * for any other failure.
 */
function rateLimitOf(error: unknown): { retryDelayMs: number | undefined; message: string } | null {
  if (error instanceof ProviderError && error.code === FailureCode.PROVIDER_RATE_LIMITED)
    return { retryDelayMs: error.retryDelayMs, message: error.message };
  if (error instanceof ApplicationFailure && error.type === FailureCode.PROVIDER_RATE_LIMITED)
    return { retryDelayMs: msOptionalToNumber(error.nextRetryDelay), message: error.message };
  return null;
}

/**
 * Makes a provider call that holds no lease under the governor's cool-down: not made while the
 * provider cools down after anyone's 429, and a 429 to it cools every worker down. Either way
 * the answer is the throttle for the workflow to wait out on a timer, so a rate limit never
 * uses up the activity's attempts. A call cancelled meanwhile fails as it would.
 */
export async function callUnderCooldown<T>(
  request: Omit<QuotaRequest, 'ownerId' | 'maxConcurrent'>,
  call: () => Promise<T>,
): Promise<T | ProviderThrottle> {
  const throttle = await admitToProvider({
    ...request,
    ownerId: request.jobId,
    maxConcurrent: null,
  });
  if (throttle) return throttle;
  try {
    return await call();
  } catch (failure) {
    if (!Context.current().cancellationSignal.aborted) {
      const throttled = await throttleAfterRateLimit({ ...request, error: failure, leased: false });
      if (throttled) return throttled;
    }
    throw failure;
  }
}

/**
 * For a provider call that failed: if the provider said 429 / RESOURCE_EXHAUSTED, every worker
 * leaves it alone for the delay it asked for (or the configured cool-down), a lease the job
 * held goes back to the head of the waiting list, and the throttle to wait out is returned.
 * Any other error: null.
 */
export async function throttleAfterRateLimit(
  request: Omit<QuotaRequest, 'ownerId' | 'maxConcurrent'> & { error: unknown; leased: boolean },
): Promise<ProviderThrottle | null> {
  const { db, quotas, provider, jobId } = request;
  const rateLimit = rateLimitOf(request.error);
  if (!rateLimit) return null;
  const retryAfterMs = Math.min(
    rateLimit.retryDelayMs ?? quotas.rateLimitCooldownMs,
    maxProviderHintMs,
  );
  await startProviderCooldown(db, provider, retryAfterMs);
  if (request.leased) await returnProviderLease(db, provider, jobId);
  log.warn('provider rate limit: every worker cools down', {
    provider,
    jobId,
    retryAfterMs,
    message: rateLimit.message,
  });
  return { throttled: true, reason: 'rate-limited', retryAfterMs, ahead: null };
}

/**
 * Waits for the provider's next request slot when its requests are paced (`requestsPerSecond`;
 * null: not paced): every worker's requests to it go out one interval apart. Answers the pause
 * to take instead of sending when the provider is cooling down by then, else null. The task queue's
 * server-side rate hands out the provider's activities at about that rate but lets bursts
 * through (a queue idle for a second hands out two at 1/s at once); the slot spaces them, so a
 * wait is short: no longer than the burst the queue let through.
 */
export async function awaitProviderRequestSlot(
  db: Db,
  pacing: { provider: string; requestsPerSecond: number | null },
): Promise<ProviderThrottle | null> {
  if (pacing.requestsPerSecond !== null) {
    const asked = Date.now();
    const slot = await takeProviderRequestSlot(
      db,
      pacing.provider,
      1_000 / pacing.requestsPerSecond,
    );
    const answered = Date.now();
    // The wait counted from the answer comes late by the answer's way back, which a loaded
    // worker or pool stretches by a hundred milliseconds and more, bunching the requests; the
    // slot's time is exact wherever the clocks agree. Between the two bounds the round trip
    // sets, a clock that does not agree costs no more than the wait counted from the answer.
    const waitMs = Math.min(
      slot.inMs,
      Math.max(slot.inMs - (answered - asked), slot.at - answered),
    );
    if (waitMs > 0) {
      const { cancellationSignal } = Context.current();
      await delay(waitMs, undefined, { signal: cancellationSignal });
    }
  }
  // A 429 to another request may have started a cool-down while this one waited for its slot:
  // sent anyway, it would draw a 429 of its own and start the cool-down over.
  return cooldownThrottle(db, pacing.provider);
}
