import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { jobStartRoutes } from '../../src/api/routes/job-starts.js';
import type { JobActions } from '../../src/api/services/job-actions.js';
import type { StartJob } from '../../src/api/services/job-starter.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import type { Db } from '../../src/db/database.js';
import type { JobRecord } from '../../src/jobs/contracts.js';
import type { jobKindRegistry } from '../../src/kinds/index.js';
import { probeStartRoute } from '../../src/kinds/probe/api.js';
import { probeKind } from '../../src/kinds/probe/declaration.js';
import type { JobRunSettings } from '../../src/kinds/registration.js';

// A kind served by the generic start route got only its job record: its activities ran on the
// workflow queue, whatever their policy's domain, with no provider backoff.
describe('the generic start route of a plain-JSON kind', () => {
  it("builds the workflow's arguments with each domain's queue and the provider backoff", async () => {
    const runSettings: JobRunSettings = {
      providerRetry: { initialIntervalMs: 250, maximumIntervalMs: 4_000, maximumAttempts: 7 },
      taskQueues: taskQueueNames('base-queue'),
    };
    const given: JobRunSettings[] = [];
    const registration = {
      declaration: probeKind,
      startRoute: {
        ...probeStartRoute,
        workflowArgs: (job: JobRecord<unknown>, settings: JobRunSettings) => {
          given.push(settings);
          return [{ job }];
        },
      },
    };
    const startJob: StartJob = async (request) => {
      request.workflowArgs({ id: 'probe-1' } as JobRecord<never>);
      throw new Error('no job is made here');
    };
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    await app.register(
      jobStartRoutes([registration] as unknown as typeof jobKindRegistry, {
        db: {} as Db,
        startJob,
        actions: {} as JobActions,
        runSettings,
      }),
    );
    const response = await app.inject({ method: 'POST', url: '/probes', payload: {} });
    assert.equal(response.statusCode, 500);
    assert.deepEqual(given, [runSettings]);
    assert.equal(given[0]!.taskQueues.storage, 'base-queue-storage');
    await app.close();
  });
});
