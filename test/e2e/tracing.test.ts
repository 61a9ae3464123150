import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '../../src/auth.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { OtlpReceiver, type ReceivedSpan } from '../fakes/otlp-receiver.js';
import { createTestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { testJwtSecret } from '../support/harness.js';
import { onFreePorts } from '../support/ports.js';
import { startReadyService, type ServiceProcess } from '../support/processes.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

interface View {
  id: string;
  status: string;
}

describe('tracing with an OTLP endpoint configured', () => {
  const receiver = new OtlpReceiver();
  const google = new FakeGoogle(async () => undefined);
  const running: ServiceProcess[] = [];
  let api: ServiceProcess;
  let worker: ServiceProcess;
  const cleanups: (() => Promise<unknown>)[] = [];
  let baseUrl: string;

  before(async () => {
    await receiver.start();
    await google.start();
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const port = await onFreePorts(1, async ([port]) => {
      const env = {
        DATABASE_URL: database.url,
        TEMPORAL_ADDRESS: testEnv.temporalAddress,
        TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
        TEMPORAL_TASK_QUEUE: uniqueTaskQueue('tracing'),
        AUTH_JWT_SECRET: testJwtSecret,
        API_PORT: String(port),
        GEMINI_API_KEY: 'test-key',
        GEMINI_BASE_URL: google.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'vlogflow-test',
      };
      // The production entry points, each its own process: the trace crosses them through
      // Temporal's headers only.
      api = await startReadyService('api', env, running);
      worker = await startReadyService('worker', env, running);
      return port!;
    });
    baseUrl = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    for (const service of running) await service.stop('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup();
    await google.stop();
    await receiver.stop();
  });

  it('follows a job in one trace from its HTTP request through the workflow and activities to the provider call, and its log lines carry the trace id', async () => {
    const authorization = `Bearer ${await mintToken(testJwtSecret, 'tracer')}`;
    const response = await fetch(`${baseUrl}/api/ai/jobs`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'SUBGOAL_GENERATION', input: { goal: 'Climb a mountain' } }),
    });
    assert.equal(response.status, 202);
    const job = (await response.json()) as View;
    await eventually(
      async () =>
        (await (
          await fetch(`${baseUrl}/api/ai/jobs/${job.id}`, { headers: { authorization } })
        ).json()) as View,
      (view) => view.status === 'completed',
      { what: 'the AI job completed', timeoutMs: 60_000 },
    );

    const request = await eventually(
      async () => receiver.spans.find((span) => span.name === 'POST /api/ai/jobs'),
      (span) => span !== undefined,
      { what: 'the request span exported', timeoutMs: 30_000 },
    );
    const traceId = request!.traceId;
    const inTrace = () => receiver.spans.filter((span) => span.traceId === traceId);
    const expected = [
      'StartWorkflow:aiGenerationJob',
      'RunWorkflow:aiGenerationJob',
      'StartActivity:generateAiItems',
      'RunActivity:generateAiItems',
      'gemini generate_text',
    ];
    const spans = await eventually(
      async () => inTrace(),
      (found) => expected.every((name) => found.some((span) => span.name === name)),
      { what: `spans ${expected.join(', ')} in trace ${traceId}`, timeoutMs: 30_000 },
    );
    const named = (name: string) => spans.find((span) => span.name === name)!;

    // One tree: the request is the root, each span's parent is the one before it.
    assert.equal(request!.parentSpanId, '');
    assert.equal(request!.attributes['http.route'], '/api/ai/jobs');
    assert.equal(request!.attributes['http.response.status_code'], '202');
    assert.equal(request!.resource['vlogflow.process'], 'api');
    assert.equal(request!.resource['service.name'], 'vlogflow-test');
    const chain = ['POST /api/ai/jobs', ...expected].map(named);
    for (let index = 1; index < chain.length; index += 1) {
      assert.equal(
        chain[index]!.parentSpanId,
        chain[index - 1]!.spanId,
        `${chain[index]!.name} is a child of ${chain[index - 1]!.name}`,
      );
    }
    // The workflow's span names its run, without the search attributes (the owner's UserId)
    // the SDK's sink would add; its activities carry their ids.
    const workflow = named('RunWorkflow:aiGenerationJob');
    assert.deepEqual(
      [workflow.attributes['workflowId'], workflow.attributes['workflowType']],
      [job.id, 'aiGenerationJob'],
    );
    assert.deepEqual(
      Object.keys(workflow.attributes).filter((key) => /search|memo|user/i.test(key)),
      [],
    );
    assert.equal(named('RunActivity:generateAiItems').attributes['temporalWorkflowId'], job.id);
    assert.equal(named('RunWorkflow:aiGenerationJob').resource['vlogflow.process'], 'worker');
    const providerCall = named('gemini generate_text');
    assert.deepEqual(
      [
        providerCall.attributes['vlogflow.provider'],
        providerCall.attributes['vlogflow.operation'],
        providerCall.attributes['vlogflow.outcome'],
      ],
      ['gemini', 'generate_text', 'ok'],
    );
    // The job's projection (local activities) is in the same trace.
    assert.ok(spans.some((span) => span.name === 'RunActivity:recordJobUpdates'));

    // Log lines of the job, in both processes, carry the trace id.
    const accepted = api.logs().find((line) => line['msg'] === 'job accepted');
    assert.equal(accepted?.['jobId'], job.id);
    assert.equal(accepted?.['trace_id'], traceId);
    assert.equal(typeof accepted?.['span_id'], 'string', 'the span of the request that logged it');
    const recorded = worker
      .logs()
      .filter((line) => line['msg'] === 'job update recorded' && line['jobId'] === job.id);
    assert.ok(recorded.length > 0, 'the worker logged the job');
    assert.ok(recorded.every((line) => line['trace_id'] === traceId));
    // The trace travels in the headers of what the job started (tracing-off.test.ts: absent).
    const temporal = testTemporal();
    try {
      const events = (await temporal.client.workflow.getHandle(job.id).fetchHistory()).events ?? [];
      const started = events[0]?.workflowExecutionStartedEventAttributes?.header?.fields ?? {};
      assert.ok('_tracer-data' in started);
    } finally {
      await temporal.close();
    }
    // Probes and scrapes make no traces; everything the receiver got was a protobuf export.
    assert.ok(
      !receiver.spans.some((span: ReceivedSpan) => /\/(healthz|readyz|metrics)$/.test(span.name)),
    );
    assert.deepEqual(receiver.refused, []);
  });

  it('sends the spans still buffered when a process stops', async () => {
    const before = receiver.spans.length;
    const authorization = `Bearer ${await mintToken(testJwtSecret, 'tracer')}`;
    const response = await fetch(`${baseUrl}/api/jobs/no-such-job`, { headers: { authorization } });
    assert.equal(response.status, 404);
    assert.equal(await api.stop('SIGTERM'), 0);
    assert.ok(
      receiver.spans
        .slice(before)
        .some(
          (span) =>
            span.name === 'GET /api/jobs/:id' &&
            span.attributes['http.response.status_code'] === '404',
        ),
      'the last request exported at shutdown, before the batch delay',
    );
  });
});
