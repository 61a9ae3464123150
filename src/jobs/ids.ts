import { randomUUID } from 'node:crypto';
import type { JobKind } from './model.js';

/** A job's id, which is also its workflow id: the kind prefix tells operators what they look at. */
export function newJobId(kind: JobKind): string {
  return `${kind}-${randomUUID()}`;
}
