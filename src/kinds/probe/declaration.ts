import type { JobRecord } from '../../jobs/contracts.js';
import { lifecycleFailureCodes } from '../../jobs/failures.js';
import type { JobKindDeclaration } from '../declaration.js';

export interface ProbeInput {
  /** Number of progress steps to record. */
  steps: number;
  /** Durable timer between steps, in milliseconds. */
  stepDelayMs: number;
}

export interface ProbeJobInput {
  job: JobRecord<ProbeInput>;
}

export interface ProbeJobResult {
  stepsCompleted: number;
}

/**
 * A diagnostic job that exercises every layer (API → Temporal → worker → activity → database →
 * API) without calling any provider: a smoke test of a deployment that leaves a job to inspect.
 */
export const probeKind = {
  kind: 'probe',
  workflowType: 'probeJob',
  jobTypes: ['PROBE'],
  noun: 'probe',
  retries: false,
  stages: [{ status: 'running', progress: 0 }],
  taskQueues: ['workflows'],
  activityPolicies: {},
  failureCodes: lifecycleFailureCodes,
  summary: ({ input }) => `Probe: ${input.steps} steps, ${input.stepDelayMs} ms apart`,
} as const satisfies JobKindDeclaration<'PROBE', ProbeInput>;
