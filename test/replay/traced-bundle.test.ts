// `npm run build` writes two workflow bundles (src/worker/workflow-bundles.ts); a worker with
// tracing on loads the traced one. Its workflows must make the same commands as the plain
// one's, so that turning tracing on (or off) never breaks a running workflow.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { readHistoryFile } from '../../src/replay/histories.js';
import { describeOutcome, replayRuns } from '../../src/replay/replayer.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import { bundleWorkflows } from '../../src/worker/workflow-bundles.js';
import { captureLogs } from '../support/logs.js';

const historiesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../histories');
const historyFiles = readdirSync(historiesDir, { recursive: true, encoding: 'utf8' })
  .filter((entry) => entry.endsWith('.json'))
  .sort();

/** A class of Temporal's OpenTelemetry workflow interceptors, as it appears in a bundle. */
const tracingInterceptor = /class OpenTelemetryInboundInterceptor\b/;

describe('the prebuilt workflow bundles', () => {
  const quiet = new DefaultLogger('ERROR');
  let plain: string;
  let traced: string;
  const logs = captureLogs();
  before(async () => {
    await installWorkerRuntime(logs.logger);
    plain = await bundleWorkflows(false, quiet);
    traced = await bundleWorkflows(true, quiet);
  });

  it('bundle the tracing interceptors into the traced one only', () => {
    assert.match(traced, tracingInterceptor);
    assert.doesNotMatch(plain, tracingInterceptor);
    assert.doesNotMatch(plain, /@opentelemetry\/sdk-trace-base/);
  });

  it('replay every recorded history, recorded without tracing, with the tracing interceptors', async () => {
    const runs = await Promise.all(
      historyFiles.map((file) => readHistoryFile(path.join(historiesDir, file))),
    );
    const failed: string[] = [];
    for await (const outcome of replayRuns(runs, { workflowBundle: { code: traced } })) {
      if (outcome.divergence || outcome.error) failed.push(describeOutcome(outcome));
    }
    assert.equal(runs.length, historyFiles.length);
    assert.deepEqual(failed, []);
    // `npm run replay -- --bundle dist/workflow-bundle-traced.js` prints these lines: an
    // operator reading a deploy's replay must see no error where every run replayed.
    assert.deepEqual(
      logs
        .lines()
        .filter((line) => line['level'] === 'error')
        .map((line) => line['msg']),
      [],
    );
  });
});
