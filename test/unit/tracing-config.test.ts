import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, tracingSettings } from '../../src/config.js';

const settingsOf = (env: NodeJS.ProcessEnv) => tracingSettings(loadConfig(env));

describe('tracing configuration', () => {
  it('is off without an endpoint, and with empty ones', () => {
    assert.equal(settingsOf({}), null);
    assert.equal(
      settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ' ' }),
      null,
    );
  });

  it('sends to /v1/traces under the base endpoint, or to the traces endpoint as given', () => {
    assert.deepEqual(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), {
      tracesUrl: 'http://collector:4318/v1/traces',
      headers: {},
      serviceName: 'vlogflow',
    });
    assert.equal(
      settingsOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp/v1/traces',
      })?.tracesUrl,
      'https://traces.example/otlp/v1/traces',
    );
  });

  it('decodes the export headers and takes the service name', () => {
    const settings = settingsOf({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/v1/traces',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc%3D%3D, x-team = media',
      OTEL_SERVICE_NAME: 'vlogflow-eu',
    });
    assert.deepEqual(settings?.headers, { 'x-api-key': 'abc==', 'x-team': 'media' });
    assert.equal(settings?.serviceName, 'vlogflow-eu');
  });

  it('names a bad endpoint or header list', () => {
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }),
      (error: Error) =>
        error instanceof ConfigError && /OTEL_EXPORTER_OTLP_ENDPOINT: /.test(error.message),
    );
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' }),
      /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: /,
    );
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key' }),
      /OTEL_EXPORTER_OTLP_HEADERS: expected name=value pairs/,
    );
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=%E0%A4%A' }),
      /OTEL_EXPORTER_OTLP_HEADERS: a value is not URL-encoded/,
    );
  });
});
