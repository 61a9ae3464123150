import { z } from 'zod';
import type { JsonStartRoute } from '../registration.js';
import type { ProbeInput } from './declaration.js';

/** `POST /api/probes`: the probe's input is plain JSON, so the generic start route serves it. */
export const probeStartRoute: JsonStartRoute<ProbeInput> = {
  path: '/probes',
  operationId: 'startProbe',
  tag: 'probes',
  summary: 'Start a probe job',
  body: z.strictObject({
    steps: z.number().int().min(1).max(100).default(5).describe('Progress steps to record'),
    stepDelayMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(1_000)
      .describe('Durable timer between steps'),
  }),
  workflowArgs: (job) => [{ job }],
};
