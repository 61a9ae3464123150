import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { temporalEndpoint } from '../../src/temporal-client.js';
import { workerSettings } from '../../src/worker/worker.js';
import { repositoryRoot } from '../support/docs.js';

it('a scheduled reconciler run checks the batches docs/operations.md names: the worker passes its own, not the workflow’s default', async () => {
  const config = loadConfig({});
  const { jobReconcile } = workerSettings(config, temporalEndpoint(config, '127.0.0.1:7233'));
  assert.ok(jobReconcile, 'workers schedule no reconciler');
  const operations = await readFile(path.join(repositoryRoot, 'docs/operations.md'), 'utf8');
  const stated = /a run checks at most (\d+) batches of (\d+) \(([\d,]+) jobs\)/.exec(operations);
  assert.ok(stated, 'docs/operations.md no longer says how many jobs a reconciler run checks');
  const [batches, batchSize, jobs] = stated
    .slice(1)
    .map((figure) => Number(figure.replace(/,/g, '')));
  assert.deepEqual(
    { batches: jobReconcile.maxBatchesPerRun, batchSize: jobReconcile.batchSize },
    { batches, batchSize },
  );
  assert.equal(jobs, batches! * batchSize!);
});
