// What a process with tracing on does with its log lines, and when its collector is down. This
// file registers the OpenTelemetry SDK in its own process (node:test runs each file alone).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startTracing } from '../../src/tracing/index.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../support/ports.js';

describe('tracing with its collector down', () => {
  it('puts the span ids on lines written inside a span, warns of lost spans, and stops cleanly', async () => {
    // A port nobody listens on: every export is refused.
    const config = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
    });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger(
      config,
      'test',
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          for (const line of chunk.toString('utf8').split('\n'))
            if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
          callback();
        },
      }),
    );
    const tracing = await startTracing(config, 'test', logger);
    assert.ok(tracing);
    const ids = tracing.tracer.startActiveSpan('work', (span) => {
      logger.info('inside');
      span.end();
      return span.spanContext();
    });
    logger.info('outside');
    assert.deepEqual(
      lines
        .filter((line) => line['msg'] === 'inside' || line['msg'] === 'outside')
        .map((line) => [line['msg'], line['trace_id'], line['span_id']]),
      [
        ['inside', ids.traceId, ids.spanId],
        ['outside', undefined, undefined],
      ],
    );
    // The batch is sent within seconds and refused; the process logs it and carries on.
    const refused = await eventually(
      async () =>
        lines.find(
          (line) => line['level'] === 'warn' && String(line['msg']).startsWith('tracing: '),
        ),
      (line) => line !== undefined,
      { what: 'the refused export logged', timeoutMs: 15_000 },
    );
    assert.match(String(refused!['msg']), /ECONNREFUSED/);
    assert.equal(refused!['trace_id'], undefined, 'not a line of the span it failed to send');

    tracing.tracer.startSpan('last').end();
    await tracing.shutdown();
    assert.ok(lines.some((line) => line['msg'] === 'tracing: spans not sent at shutdown'));
  });
});
