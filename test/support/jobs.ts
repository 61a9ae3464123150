import { randomUUID } from 'node:crypto';
import type { JobRecord } from '../../src/jobs/messages.js';

/** A job record as the API would accept it, with overridable fields. */
export function jobRecord<Input = unknown>(
  overrides: Partial<JobRecord<Input>> = {},
): JobRecord<Input> {
  return {
    id: `probe-${randomUUID()}`,
    kind: 'probe',
    type: 'PROBE',
    ownerId: 'alice',
    input: { steps: 1, stepDelayMs: 0 } as Input,
    idempotencyKey: null,
    requestFingerprint: null,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}
