import { createHash, randomUUID } from 'node:crypto';
import type { JobKind } from './model.js';

/** A job's id, which is also its workflow id: the kind prefix tells operators what they look at. */
export function newJobId(kind: JobKind): string {
  return `${kind}-${randomUUID()}`;
}

/**
 * The id of a job asked for with an Idempotency-Key: the same owner and key always name the
 * same job (and so the same workflow), whichever API process receives the request.
 */
export function idempotentJobId(kind: JobKind, ownerId: string, idempotencyKey: string): string {
  const hex = createHash('sha256').update(`${kind}\n${ownerId}\n${idempotencyKey}`).digest('hex');
  return `${kind}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
