import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWorkerWaits } from '../../src/api/services/worker-waits.js';
import { createTemporalAccess } from '../../src/temporal-client.js';
import { watchTaskQueues } from '../../src/task-queue-status.js';
import { eventually } from '../support/eventually.js';
import { captureLogs } from '../support/logs.js';
import { freePort } from '../support/ports.js';

// The rest, with a dev server and workers, is in test/e2e/split-workers.test.ts.
describe('what a job waits for, while Temporal does not answer', () => {
  it('is not known: reads answer at once without it, and the failure is logged once, not per lookup', async () => {
    const temporal = createTemporalAccess({ address: `127.0.0.1:${await freePort()}` }, 'vlogflow');
    const { logger, lines } = captureLogs();
    const waits = createWorkerWaits({
      client: temporal.lookups,
      queues: watchTaskQueues(temporal.lookups, 'vlogflow', { freshForMs: 10 }),
      logger,
      freshForMs: 10,
    });
    const job = { status: 'running', workflowId: 'ai-1' };
    const failures = () =>
      lines().filter((line) => String(line['msg']).startsWith('worker waits:'));
    const read = async () => {
      assert.equal(waits.of(job), undefined);
      return failures();
    };
    try {
      const [first] = await eventually(read, (logged) => logged.length > 0, {
        what: 'the failed lookup logged',
        intervalMs: 5,
      });
      assert.equal(first!['msg'], 'worker waits: task queues not read');
      // Thirty more lookup periods of reads: each period's lookup fails again, unlogged.
      let reads = 0;
      await eventually(read, () => (reads += 1) > 60, { what: 'more reads', intervalMs: 5 });
      assert.equal(failures().length, 1, JSON.stringify(failures()));
    } finally {
      waits.close();
      await temporal.close();
    }
    assert.equal(waits.of(job), undefined, 'closed, it looks nothing up');
  });
});
