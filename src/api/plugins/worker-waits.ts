import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { WorkerWaits } from '../services/worker-waits.js';

/**
 * Adds `waitingForWorker` to every job view (routes with `config.jobView`: a job's read and its
 * start's 202) whose job waits in a queue no worker polls.
 */
export const workerWaits = fp(
  async (scope: FastifyInstance, { waits }: { waits: WorkerWaits }) => {
    scope.addHook('preSerialization', async (request, reply, payload) => {
      if (!request.routeOptions.config.jobView || reply.statusCode >= 300) return payload;
      const view = payload as { status: string; workflowId: string };
      const waiting = waits.of(view);
      return waiting ? { ...view, waitingForWorker: waiting } : payload;
    });
  },
  { name: 'worker-waits' },
);
