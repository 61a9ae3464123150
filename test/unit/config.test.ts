import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compileRetryPolicy } from '@temporalio/common';
import {
  ConfigError,
  errorChain,
  loadConfig,
  mediaProcessLimits,
  providerRetrySettings,
  requireSharedServices,
} from '../../src/config.js';
import { S3MediaStorage } from '../../src/storage/s3-storage.js';
import { providerRetryPolicy } from '../../src/workflows/job-lifecycle.js';
import { temporalEndpoint } from '../../src/temporal-client.js';

function configError(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('configuration', () => {
  it('runs on embedded defaults with no environment at all', () => {
    const config = loadConfig({});
    assert.equal(config.API_PORT, 3000);
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.TEMPORAL_ADDRESS, undefined);
    assert.equal(config.TEMPORAL_NAMESPACE, 'vlogflow');
    assert.ok(config.dataDir.endsWith('.data'));
  });

  it('lets a client poll every job it may have in flight as often as X-Poll-Interval says, and list them, within the read limit', () => {
    const config = loadConfig({});
    const rounds = config.RATE_LIMIT_WINDOW_MS / (config.JOB_POLL_INTERVAL_SECONDS * 1_000);
    // Each round reads every running job once and the list once.
    const reads = rounds * (config.USER_MAX_JOBS_IN_FLIGHT + 1);
    assert.ok(
      reads <= config.USER_READ_RATE_LIMIT_REQUESTS,
      `${reads} reads a window against a limit of ${config.USER_READ_RATE_LIMIT_REQUESTS}`,
    );
  });

  it('names each invalid variable with the value it got', () => {
    const message = configError({
      API_PORT: 'abc',
      LOG_LEVEL: 'loud',
      WORKER_SHUTDOWN_GRACE_MS: '-5',
    });
    assert.match(message, /API_PORT: .*\(got "abc"\)/);
    assert.match(message, /LOG_LEVEL: .*\(got "loud"\)/);
    assert.match(message, /WORKER_SHUTDOWN_GRACE_MS: .*\(got "-5"\)/);
  });

  it('reads numbers as decimal digits only, not whatever Number() takes', () => {
    for (const value of ['0x50', '1e3', 'Infinity', '8_000', '3000.0', '+3000']) {
      const message = configError({ API_PORT: value });
      assert.ok(
        message.includes(`API_PORT: expected a whole number in decimal digits (got "${value}")`),
        message,
      );
    }
    assert.match(
      configError({ QUEUE_TRANSFER_RATE_PER_SECOND: '0x10' }),
      /QUEUE_TRANSFER_RATE_PER_SECOND: expected a number in decimal digits/,
    );
    const config = loadConfig({
      API_PORT: ' 8080 ',
      QUEUE_TRANSFER_RATE_PER_SECOND: '0.5',
    });
    assert.equal(config.API_PORT, 8080);
    assert.equal(config.QUEUE_TRANSFER_RATE_PER_SECOND, 0.5);
  });

  it('never quotes a secret, nor the credentials of a URL, in a refusal', () => {
    const message = configError({
      AUTH_JWT_SECRET: 'this-is-my-real-production-secr',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20supersecret,bad',
      DATABASE_URL: 'mysql://admin:hunter2secret@db.internal/prod',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://key:s3cret@collector.internal',
      OPENAI_BASE_URL: 'http//user:pw-in-garbage@host',
    });
    for (const secret of [
      'production-secr',
      'supersecret',
      'hunter2secret',
      's3cret',
      'pw-in-garbage',
    ])
      assert.ok(!message.includes(secret), `${secret} quoted in:\n${message}`);
    assert.match(message, /AUTH_JWT_SECRET: .*\(value not shown: a secret\)/);
    assert.match(message, /OTEL_EXPORTER_OTLP_HEADERS: .*\(value not shown: a secret\)/);
    assert.match(message, /DATABASE_URL: .*\(got "mysql:\/\/\*\*\*:\*\*\*@db\.internal\/prod"\)/);
    assert.match(
      message,
      /OTEL_EXPORTER_OTLP_ENDPOINT: .*\(got "ftp:\/\/\*\*\*:\*\*\*@collector\.internal\/"\)/,
    );
    assert.match(message, /OPENAI_BASE_URL: .*\(value not shown: it may hold credentials\)/);
  });

  it('refuses an API_HOST that is no host, and an API_PORT the dev server takes', () => {
    assert.match(
      configError({ API_HOST: '999.1.1.1' }),
      /API_HOST: expected a host name or an IP address/,
    );
    assert.match(configError({ API_HOST: 'a b' }), /API_HOST: expected a host name/);
    assert.match(configError({ METRICS_HOST: 'a b' }), /METRICS_HOST: expected a host name/);
    assert.equal(loadConfig({ METRICS_HOST: '::' }).METRICS_HOST, '::');
    const ipv6 = loadConfig({ API_HOST: '::1', API_PORT: '8080' });
    assert.equal(ipv6.API_HOST, '::1');
    assert.equal(ipv6.apiPublicUrl, 'http://[::1]:8080');
    assert.equal(loadConfig({ API_HOST: '0.0.0.0' }).API_HOST, '0.0.0.0');
    assert.match(
      configError({ API_PORT: '7233' }),
      /API_PORT: 7233 is also TEMPORAL_DEV_PORT; the API and the dev server need ports of their own/,
    );
    assert.match(
      configError({ API_PORT: '41000', TEMPORAL_DEV_PORT: '40000', TEMPORAL_DEV_UI_PORT: '41000' }),
      /API_PORT: 41000 is also TEMPORAL_DEV_UI_PORT/,
    );
    assert.equal(
      loadConfig({ API_PORT: '7233', TEMPORAL_ADDRESS: 'temporal:7233' }).API_PORT,
      7233,
    );
  });

  it('takes API_TRUST_PROXY as a count of hops or a list of addresses and ranges, never every sender', () => {
    assert.equal(loadConfig({}).API_TRUST_PROXY, undefined);
    assert.equal(loadConfig({ API_TRUST_PROXY: '1' }).API_TRUST_PROXY, 1);
    assert.deepEqual(
      loadConfig({ API_TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,fd00::/8' }).API_TRUST_PROXY,
      ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'],
    );
    for (const value of ['true', '0', '11', '10.0.0.0/33', 'fd00::/129', '10.0.0.1,', 'lb.local']) {
      assert.match(
        configError({ API_TRUST_PROXY: value }),
        /API_TRUST_PROXY: expected the number of proxies in front of the API, 1 to 10/,
        value,
      );
    }
  });

  it("says why a start failed in one line: an error's message, its causes', every address tried", () => {
    const refused = (address: string) => new Error(`connect ECONNREFUSED ${address}`);
    const error = new Error('Database migration failed', {
      cause: new AggregateError([refused('::1:5432'), refused('127.0.0.1:5432')], ''),
    });
    assert.equal(
      errorChain(error),
      'Database migration failed: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432',
    );
  });

  it('rejects a DATABASE_URL that is not PostgreSQL', () => {
    assert.match(
      configError({ DATABASE_URL: 'mysql://root@localhost/db' }),
      /DATABASE_URL: expected a postgres/,
    );
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    assert.match(
      configError({ API_HEADERS_TIMEOUT_MS: '20000', API_REQUEST_TIMEOUT_MS: '10000' }),
      /API_HEADERS_TIMEOUT_MS: must not exceed API_REQUEST_TIMEOUT_MS \(10000\)/,
    );
  });

  // An empty DATA_DIR meant the current folder: the dev JWT secret was written into the checkout.
  it('refuses an empty data folder', () => {
    assert.match(configError({ DATA_DIR: '' }), /DATA_DIR: /);
    assert.match(configError({ DATA_DIR: '  ' }), /DATA_DIR: /);
  });

  it('refuses an orphan upload age an upload still arriving or starting its job could reach', () => {
    assert.match(
      configError({ UPLOAD_ORPHAN_AGE_MS: '1200000', API_REQUEST_TIMEOUT_MS: '900000' }),
      /UPLOAD_ORPHAN_AGE_MS: must be at least API_REQUEST_TIMEOUT_MS \+ 10 min \(1500000\)/,
    );
    assert.equal(
      loadConfig({ UPLOAD_ORPHAN_AGE_MS: '1500000', API_REQUEST_TIMEOUT_MS: '900000' })
        .UPLOAD_ORPHAN_AGE_MS,
      1_500_000,
    );
  });

  // A stray space made another namespace or task queue, one no worker polls; a Web UI address
  // without its scheme was printed as a link that opens nothing.
  it('trims the Temporal namespace and task queue, and takes only an http(s) Web UI address', () => {
    const config = loadConfig({ TEMPORAL_NAMESPACE: ' prod ', TEMPORAL_TASK_QUEUE: 'jobs\n' });
    assert.equal(config.TEMPORAL_NAMESPACE, 'prod');
    assert.equal(config.TEMPORAL_TASK_QUEUE, 'jobs');
    assert.match(configError({ TEMPORAL_NAMESPACE: '  ' }), /TEMPORAL_NAMESPACE: /);
    assert.match(
      configError({ TEMPORAL_UI_URL: 'localhost:8233' }),
      /TEMPORAL_UI_URL: expected an http:\/\/ or https:\/\/ URL/,
    );
    assert.equal(
      loadConfig({ TEMPORAL_UI_URL: 'https://temporal.example.com' }).TEMPORAL_UI_URL,
      'https://temporal.example.com',
    );
  });

  // With the backend left at its default, the bucket's settings were ignored without a word:
  // media stayed on the disk of the machine that took it.
  it('refuses S3 settings while STORAGE_BACKEND is local, naming each', () => {
    const message = configError({ S3_BUCKET: 'media', S3_ENDPOINT: 'https://r2.example.com' });
    assert.match(message, /S3_ENDPOINT: set, but STORAGE_BACKEND is local/);
    assert.match(message, /S3_BUCKET: set, but STORAGE_BACKEND is local/);
    assert.doesNotThrow(() => loadConfig({ S3_BUCKET: '', S3_REGION: 'auto' }));
  });

  // Every job carries the provider backoff into its workflow, whose activities are scheduled
  // with it: a policy the SDK refuses failed each provider job at its first call.
  it('refuses a provider backoff whose first wait exceeds its longest, which no activity could be scheduled with', () => {
    assert.match(
      configError({ PROVIDER_RETRY_INITIAL_MS: '700000' }),
      /PROVIDER_RETRY_INITIAL_MS: must not exceed PROVIDER_RETRY_MAX_MS \(600000\)/,
    );
    assert.match(
      configError({ PROVIDER_RETRY_INITIAL_MS: '5000', PROVIDER_RETRY_MAX_MS: '2000' }),
      /PROVIDER_RETRY_INITIAL_MS: must not exceed PROVIDER_RETRY_MAX_MS \(2000\)/,
    );
    const equal = loadConfig({ PROVIDER_RETRY_INITIAL_MS: '2000', PROVIDER_RETRY_MAX_MS: '2000' });
    assert.doesNotThrow(() =>
      compileRetryPolicy(providerRetryPolicy(providerRetrySettings(equal))),
    );
  });

  // S3-compatible stores sign links for a week at most: a longer lifetime failed every read of
  // a finished vlog (500) once it had a video to link.
  it('bounds media link lifetimes by what object storage can sign', async () => {
    for (const variable of ['MEDIA_URL_TTL_SECONDS', 'SHARE_URL_TTL_SECONDS']) {
      assert.match(
        configError({ [variable]: '604801' }),
        new RegExp(`${variable}: .*604800.*\\(got "604801"\\)`),
      );
    }
    const config = loadConfig({
      MEDIA_URL_TTL_SECONDS: '604800',
      SHARE_URL_TTL_SECONDS: '604800',
    });
    const storage = new S3MediaStorage({
      endpoint: 'http://127.0.0.1:1',
      region: 'auto',
      bucket: 'media',
      accessKeyId: 'id',
      secretAccessKey: 'secret',
      forcePathStyle: true,
    });
    for (const ttl of [config.MEDIA_URL_TTL_SECONDS, config.SHARE_URL_TTL_SECONDS])
      assert.match(await storage.url('vlogs/v1/video.mp4', ttl), /X-Amz-Expires=604800/);
  });

  // A quiet stream's only bytes are its keep-alive events: an idle timeout that comes first
  // cuts every stream of a job that stays in one stage for long.
  it('refuses a progress-stream keep-alive the idle timeout would cut first', () => {
    assert.match(
      configError({ API_IDLE_TIMEOUT_MS: '4000' }),
      /EVENT_STREAM_KEEPALIVE_MS: must be below API_IDLE_TIMEOUT_MS \(4000\)/,
    );
    assert.match(
      configError({ EVENT_STREAM_KEEPALIVE_MS: '30000' }),
      /EVENT_STREAM_KEEPALIVE_MS: must be below API_IDLE_TIMEOUT_MS \(30000\)/,
    );
  });

  // The SDK turns the slots into a tuner before its own check, so it never lowers them to the
  // cache: a worker would take more workflow tasks at once than it keeps runs for.
  it('refuses a workflow cache smaller than the workflow slots', () => {
    assert.match(
      configError({ WORKER_MAX_CACHED_WORKFLOWS: '4' }),
      /WORKER_MAX_CACHED_WORKFLOWS: must be at least QUEUE_WORKFLOWS_SLOTS \(8\)/,
    );
    assert.equal(
      loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '4', QUEUE_WORKFLOWS_SLOTS: '4' })
        .WORKER_MAX_CACHED_WORKFLOWS,
      4,
    );
    assert.match(configError({ QUEUE_WORKFLOWS_SLOTS: '1' }), /QUEUE_WORKFLOWS_SLOTS: .*2/);
  });

  it('refuses a URL limit the header limit would reach first', () => {
    assert.match(
      configError({ API_MAX_URL_BYTES: '8192', API_MAX_HEADER_BYTES: '8192' }),
      /API_MAX_URL_BYTES: must be below API_MAX_HEADER_BYTES \(8192\)/,
    );
    assert.equal(loadConfig({ API_MAX_HEADER_BYTES: '8193' }).API_MAX_URL_BYTES, 8_192);
  });

  it('reads budgets and prices as decimal text, and names a malformed one', () => {
    const config = loadConfig({
      USER_DAILY_BUDGET: '12.50',
      COST_PRICES: '{"veo:*":{"videoSeconds":"0.35"}}',
    });
    assert.equal(config.USER_DAILY_BUDGET, '12.50');
    assert.equal(config.USER_MONTHLY_BUDGET, undefined);
    assert.deepEqual(config.COST_PRICES, { 'veo:*': { videoSeconds: '0.35' } });
    assert.match(configError({ USER_MONTHLY_BUDGET: '1e3' }), /USER_MONTHLY_BUDGET.*decimal/);
    assert.match(configError({ COST_PRICES: '{"veo":{}}' }), /COST_PRICES.*provider:model/);
    assert.match(configError({ COST_PRICES: '{"veo:*":{"seconds":"1"}}' }), /COST_PRICES/);
    assert.match(configError({ COST_PRICES: 'not json' }), /COST_PRICES.*JSON/);
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ DATABASE_URL: '', TEMPORAL_ADDRESS: ' ' });
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.TEMPORAL_ADDRESS, undefined);
  });

  it('requires a real JWT secret in production', () => {
    assert.match(
      configError({ NODE_ENV: 'production' }),
      /AUTH_JWT_SECRET: required when NODE_ENV=production/,
    );
    assert.match(
      configError({ AUTH_JWT_SECRET: 'short' }),
      /AUTH_JWT_SECRET: must be at least 32 characters/,
    );
  });

  it('refuses a Veo output prefix that is not a storage key, since every backend would', () => {
    for (const uri of ['gs://bucket', 'gs://bucket/', 'gs://bucket/out/', 'gs://bucket/a/b']) {
      assert.equal(loadConfig({ VEO_OUTPUT_GCS_URI: uri }).VEO_OUTPUT_GCS_URI, uri);
    }
    for (const uri of ['gs://bucket/../out/', 'gs://bucket//out', 'gs://bucket/my outputs/']) {
      assert.match(
        configError({ VEO_OUTPUT_GCS_URI: uri }),
        /VEO_OUTPUT_GCS_URI: the prefix must be a storage key/,
      );
    }
  });

  it('bounds token lifetimes and the clock skew', () => {
    const config = loadConfig({});
    assert.equal(config.AUTH_MAX_TOKEN_LIFETIME_SECONDS, 86_400);
    assert.equal(config.AUTH_CLOCK_SKEW_SECONDS, 60);
    const message = configError({
      AUTH_MAX_TOKEN_LIFETIME_SECONDS: '0',
      AUTH_CLOCK_SKEW_SECONDS: '301',
    });
    assert.match(message, /AUTH_MAX_TOKEN_LIFETIME_SECONDS: .*\(got "0"\)/);
    assert.match(message, /AUTH_CLOCK_SKEW_SECONDS: .*\(got "301"\)/);
  });

  it('bounds the media retention and the sweep interval', () => {
    const config = loadConfig({ MEDIA_RETENTION_MS: '0' });
    assert.equal(config.MEDIA_RETENTION_MS, 0);
    assert.equal(config.MEDIA_SWEEP_INTERVAL_MS, 3_600_000);
    const message = configError({ MEDIA_RETENTION_MS: '-1', MEDIA_SWEEP_INTERVAL_MS: '999' });
    assert.match(message, /MEDIA_RETENTION_MS: .*\(got "-1"\)/);
    assert.match(message, /MEDIA_SWEEP_INTERVAL_MS: .*\(got "999"\)/);
  });

  it('pins every dev server port, moving the unset ones with TEMPORAL_DEV_PORT', () => {
    assert.deepEqual(loadConfig({}).temporalDevPorts, {
      grpc: 7233,
      ui: 8233,
      http: 7243,
      metrics: 9233,
    });
    assert.deepEqual(
      loadConfig({ TEMPORAL_DEV_PORT: '17233', TEMPORAL_DEV_METRICS_PORT: '9100' })
        .temporalDevPorts,
      { grpc: 17233, ui: 18233, http: 17243, metrics: 9100 },
    );
    assert.equal(loadConfig({ TEMPORAL_DEV_UI_PORT: '' }).temporalDevPorts.ui, 8233);
    assert.match(
      configError({ TEMPORAL_DEV_HTTP_PORT: '70000' }),
      /TEMPORAL_DEV_HTTP_PORT: .*\(got "70000"\)/,
    );
    const tooHigh = configError({ TEMPORAL_DEV_PORT: '64000', TEMPORAL_DEV_UI_PORT: '1234' });
    assert.match(tooHigh, /TEMPORAL_DEV_METRICS_PORT: TEMPORAL_DEV_PORT \+ 2000 is above 65535/);
    assert.doesNotMatch(tooHigh, /TEMPORAL_DEV_UI_PORT/);
    assert.match(
      configError({ TEMPORAL_DEV_HTTP_PORT: '8233' }),
      /TEMPORAL_DEV_HTTP_PORT: 8233 is also TEMPORAL_DEV_UI_PORT; each dev server port must differ/,
    );
  });

  it('bounds media processes by the CPUs by default, at a lower priority, within limits', () => {
    assert.deepEqual(mediaProcessLimits(loadConfig({})), {
      maxConcurrent: Math.max(1, os.availableParallelism() - 1),
      nice: 10,
    });
    assert.deepEqual(
      mediaProcessLimits(loadConfig({ MEDIA_MAX_CONCURRENT_FFMPEG: '', MEDIA_FFMPEG_NICE: '0' })),
      { maxConcurrent: Math.max(1, os.availableParallelism() - 1), nice: 0 },
    );
    const message = configError({ MEDIA_MAX_CONCURRENT_FFMPEG: '0', MEDIA_FFMPEG_NICE: '20' });
    assert.match(message, /MEDIA_MAX_CONCURRENT_FFMPEG: .*\(got "0"\)/);
    assert.match(message, /MEDIA_FFMPEG_NICE: .*\(got "20"\)/);
    assert.match(
      configError({ MEDIA_MAX_CONCURRENT_FFMPEG: '257' }),
      /MEDIA_MAX_CONCURRENT_FFMPEG/,
    );
  });

  it('requires shared services for the split API and worker processes', () => {
    assert.throws(
      () => requireSharedServices(loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7233' }), 'worker'),
      (error: Error) =>
        error instanceof ConfigError &&
        /DATABASE_URL: required when the worker/.test(error.message),
    );
    assert.doesNotThrow(() =>
      requireSharedServices(
        loadConfig({ TEMPORAL_ADDRESS: '127.0.0.1:7233', DATABASE_URL: 'postgres://u@h/db' }),
        'API',
      ),
    );
  });

  it('turns the TEMPORAL_TLS_* variables and TEMPORAL_API_KEY into one endpoint, files read at load', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-config-tls-'));
    try {
      const pem = (name: string) => path.join(dir, name);
      for (const name of ['ca.pem', 'client.pem', 'client.key'])
        await writeFile(pem(name), `${name} bytes`);
      const address = 'temporal.example:7233';
      assert.deepEqual(temporalEndpoint(loadConfig({ TEMPORAL_ADDRESS: address })), { address });
      assert.deepEqual(
        temporalEndpoint(loadConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS: 'true' })),
        { address, tls: {} },
      );
      assert.deepEqual(
        temporalEndpoint(
          loadConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_API_KEY: 'key-from-cloud' }),
        ),
        { address, tls: {}, apiKey: 'key-from-cloud' },
      );
      assert.deepEqual(
        temporalEndpoint(
          loadConfig({
            TEMPORAL_ADDRESS: address,
            TEMPORAL_TLS_CA_FILE: pem('ca.pem'),
            TEMPORAL_TLS_CERT_FILE: pem('client.pem'),
            TEMPORAL_TLS_KEY_FILE: pem('client.key'),
            TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
          }),
        ),
        {
          address,
          tls: {
            serverNameOverride: 'frontend.internal',
            serverRootCACertificate: Buffer.from('ca.pem bytes'),
            clientCertPair: {
              crt: Buffer.from('client.pem bytes'),
              key: Buffer.from('client.key bytes'),
            },
          },
        },
      );

      assert.match(
        configError({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CERT_FILE: pem('client.pem') }),
        /TEMPORAL_TLS_KEY_FILE: required with TEMPORAL_TLS_CERT_FILE/,
      );
      assert.match(
        configError({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_KEY_FILE: pem('client.key') }),
        /TEMPORAL_TLS_CERT_FILE: required with TEMPORAL_TLS_KEY_FILE/,
      );
      assert.match(
        configError({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CA_FILE: pem('missing.pem') }),
        /TEMPORAL_TLS_CA_FILE: cannot read .*missing\.pem \(ENOENT\)/,
      );
      assert.match(
        configError({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CA_FILE: dir }),
        /TEMPORAL_TLS_CA_FILE: cannot read .* \(EISDIR\)/,
      );
      assert.match(
        configError({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' }),
        /TEMPORAL_TLS: false, but TEMPORAL_TLS_\* or TEMPORAL_API_KEY is set/,
      );
      assert.match(
        configError({
          DATABASE_URL: `postgres://u@db.internal/app?sslmode=verify-full&sslrootcert=${pem('none.pem')}`,
        }),
        /DATABASE_URL \(sslrootcert\): cannot read .*none\.pem \(ENOENT\)/,
      );
      assert.match(configError({ TEMPORAL_TLS: 'maybe' }), /TEMPORAL_TLS: expected true or false/);
      assert.match(
        configError({ TEMPORAL_API_KEY: 'k' }),
        /TEMPORAL_ADDRESS: required with TLS to Temporal/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
