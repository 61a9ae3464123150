import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { watchTaskQueues } from '../../src/task-queue-status.js';
import { createTemporalAccess } from '../../src/temporal-client.js';
import { freePort } from '../support/ports.js';

// The API's readers of the task queues (the queue metrics, the workers' ffmpeg, what a job
// waits for) share one read; with a server, test/e2e/split-workers.test.ts and
// test/api/readiness.test.ts read through it.
describe('the task queues watch', () => {
  it('gives everyone who asks within its freshness the same read, its failure too, and reads again after', async () => {
    const temporal = createTemporalAccess({ address: `127.0.0.1:${await freePort()}` }, 'x');
    try {
      const shared = watchTaskQueues(temporal.lookups, 'vlogflow', { freshForMs: 60_000 });
      const first = shared.statuses();
      assert.equal(shared.statuses(), first, 'one read for two askers');
      await assert.rejects(first, 'nobody answers on that port');
      assert.equal(shared.statuses(), first, 'its failure is shared as well');

      const unshared = watchTaskQueues(temporal.lookups, 'vlogflow', { freshForMs: 0 });
      const one = unshared.statuses();
      const other = unshared.statuses();
      assert.notEqual(one, other, 'a read past its freshness is a new one');
      await Promise.allSettled([one, other]);
    } finally {
      await temporal.close();
    }
  });
});
