// Tracing is off without an OTLP endpoint, and then costs nothing: this file runs in a process
// of its own (node:test), so what it finds loaded is what the service loaded.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { loadConfig } from '../../src/config.js';
import { startTracing } from '../../src/tracing/index.js';
import { startHarness, type Harness } from '../support/harness.js';
import { captureLogs } from '../support/logs.js';

const loadedModules = () => Object.keys(createRequire(import.meta.url).cache);

/**
 * The tracing SDK, its exporter and Temporal's interceptors. `@opentelemetry/api` alone is not
 * among them: prom-client loads it for its exemplars, and without a registered provider it is
 * a no-op.
 */
const tracingModule =
  /node_modules\/@opentelemetry\/(sdk-|exporter-|resources|context-async-hooks|otlp-)|node_modules\/@temporalio\/interceptors-opentelemetry\//;

interface View {
  status: string;
}

describe('tracing without an OTLP endpoint', () => {
  const logs = captureLogs();
  let h: Harness;

  before(async () => {
    h = await startHarness({ worker: true, logger: logs.logger });
  });
  after(async () => {
    await h.stop();
  });

  it('loads nothing of tracing, installs no interceptor and adds nothing to the logs', async () => {
    const config = loadConfig({});
    assert.equal(await startTracing(config, 'api', logs.logger), null);

    const ada = h.user('ada');
    const job = await ada.startJob('probe', { steps: 2, stepDelayMs: 0 });
    await ada.awaitJob<View>('probe', job.id, (view) => view.status === 'completed');

    assert.deepEqual(
      loadedModules().filter((file) => tracingModule.test(file)),
      [],
      'no tracing module loaded by the API, the worker and a job run',
    );
    assert.equal(
      trace.getTracerProvider().getTracer('check').startSpan('check').isRecording(),
      false,
      'no tracer provider registered: spans are no-ops',
    );
    // Interceptors would have put the trace into the headers of what the job started.
    const events = (await h.temporal.client.workflow.getHandle(job.id).fetchHistory()).events ?? [];
    const headers = events.flatMap((event) => [
      event.workflowExecutionStartedEventAttributes?.header?.fields ?? {},
      event.activityTaskScheduledEventAttributes?.header?.fields ?? {},
    ]);
    assert.ok(events[0]?.workflowExecutionStartedEventAttributes, 'the history was read');
    assert.ok(headers.every((fields) => !('_tracer-data' in fields)));
    const jobLines = logs.lines().filter((line) => line['jobId'] === job.id);
    assert.ok(jobLines.length > 0, 'the job was logged');
    assert.ok(jobLines.every((line) => !('trace_id' in line) && !('span_id' in line)));
  });

  it('loads the tracing modules once an endpoint is set (the check above can see them)', async () => {
    const tracing = await startTracing(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }),
      'api',
      logs.logger,
    );
    try {
      assert.ok(tracing);
      const loaded = loadedModules();
      for (const name of [
        'sdk-trace-node',
        'exporter-trace-otlp-proto',
        'interceptors-opentelemetry',
      ])
        assert.ok(
          loaded.some((file) => tracingModule.test(file) && file.includes(name)),
          `${name} loaded`,
        );
    } finally {
      await tracing?.shutdown();
    }
  });
});
