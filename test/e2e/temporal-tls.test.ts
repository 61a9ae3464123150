// The service against a Temporal frontend that speaks TLS: the run's dev server behind a
// TLS-terminating proxy, with certificates made for the test. The API's client, its readiness
// probe and the worker all connect through the one endpoint the configuration describes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NativeConnection } from '@temporalio/worker';
import type { JobView } from '../../src/api/schemas/jobs.js';
import { loadConfig } from '../../src/config.js';
import { temporalEndpoint } from '../../src/temporal-client.js';
import { makeTestCertificates, type TestCertificates } from '../support/certificates.js';
import { testEnv } from '../support/env.js';
import { startHarness } from '../support/harness.js';
import { startService } from '../support/processes.js';
import { TcpProxy } from '../support/tcp-proxy.js';

interface NotReady {
  error: { code: string; details: { checks: Record<string, { ok: boolean; error?: string }> } };
}

describe('Temporal over TLS', () => {
  let certificates: TestCertificates;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async () => {
    certificates = await makeTestCertificates();
    cleanups.push(() => certificates.remove());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A TLS frontend for the dev server; with `clientCa`, it requires a client certificate signed by it. */
  async function tlsProxy(clientCa?: string): Promise<TcpProxy> {
    const { hostname, port } = new URL(`tcp://${testEnv.temporalAddress}`);
    const proxy = await TcpProxy.start(hostname, Number(port), {
      key: await certificates.pem(certificates.serverKeyFile),
      cert: await certificates.pem(certificates.serverCertFile),
      ALPNProtocols: ['h2'],
      ...(clientCa && {
        requestCert: true,
        rejectUnauthorized: true,
        ca: await certificates.pem(clientCa),
      }),
    });
    cleanups.push(() => proxy.stop());
    return proxy;
  }

  /** The configuration of a process pointed at `proxy`, with `env` on top. */
  const configFor = (proxy: TcpProxy, env: Record<string, string>) =>
    loadConfig({
      TEMPORAL_ADDRESS: `${certificates.serverNames.ip}:${proxy.port}`,
      ...env,
    });

  it('with a custom CA: the API is ready and a probe job completes on a worker connected through TLS', async () => {
    const proxy = await tlsProxy();
    const config = configFor(proxy, { TEMPORAL_TLS_CA_FILE: certificates.caFile });
    const h = await startHarness({
      temporalEndpoint: temporalEndpoint(config),
      env: { VLOG_PROVIDER: 'google' },
      worker: true,
    });
    cleanups.push(() => h.stop());

    const ready = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);

    const alice = h.user('alice');
    const job = await alice.startJob<JobView>('probe', { steps: 2, stepDelayMs: 0 });
    const done = await alice.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status !== 'pending' && view.status !== 'running',
      {
        what: 'probe ended',
        timeoutMs: 60_000,
      },
    );
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.result, { stepsCompleted: 2 });
    assert.ok(proxy.accepted >= 2, `only ${proxy.accepted} connections went through the proxy`);
    assert.deepEqual(proxy.handshakeErrors, []);
  });

  it('with mutual TLS: the client certificate is accepted, and a connection without one is refused', async () => {
    const proxy = await tlsProxy(certificates.caFile);
    const withCertificate = configFor(proxy, {
      TEMPORAL_TLS_CA_FILE: certificates.caFile,
      TEMPORAL_TLS_CERT_FILE: certificates.clientCertFile,
      TEMPORAL_TLS_KEY_FILE: certificates.clientKeyFile,
      // The certificate's DNS name rather than the address's IP.
      TEMPORAL_TLS_SERVER_NAME: certificates.serverNames.dns,
    });
    const h = await startHarness({
      temporalEndpoint: temporalEndpoint(withCertificate),
      env: { VLOG_PROVIDER: 'google' },
    });
    cleanups.push(() => h.stop());
    const ready = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    // The worker's connection takes the same options.
    const workerConnection = await NativeConnection.connect(temporalEndpoint(withCertificate));
    await workerConnection.workflowService.getSystemInfo({});
    await workerConnection.close();
    assert.deepEqual(proxy.handshakeErrors, []);

    const withoutCertificate = configFor(proxy, { TEMPORAL_TLS_CA_FILE: certificates.caFile });
    const refused = await startHarness({
      temporalEndpoint: temporalEndpoint(withoutCertificate),
      env: { VLOG_PROVIDER: 'google' },
    });
    cleanups.push(() => refused.stop());
    const notReady = await refused.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(notReady.statusCode, 503, notReady.body);
    assert.equal(notReady.json<NotReady>().error.details.checks['temporal']?.ok, false);
    await assert.rejects(NativeConnection.connect(temporalEndpoint(withoutCertificate)));
    assert.ok(
      proxy.handshakeErrors.some((error) => /peer did not return a certificate/.test(error)),
      `the proxy saw no refused handshake: ${JSON.stringify(proxy.handshakeErrors)}`,
    );
  });

  it('with the wrong CA: readiness fails on Temporal, saying why', async () => {
    const proxy = await tlsProxy();
    const config = configFor(proxy, { TEMPORAL_TLS_CA_FILE: certificates.otherCaFile });
    const h = await startHarness({
      temporalEndpoint: temporalEndpoint(config),
      env: { VLOG_PROVIDER: 'google' },
    });
    cleanups.push(() => h.stop());
    const notReady = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(notReady.statusCode, 503, notReady.body);
    const { checks } = notReady.json<NotReady>().error.details;
    assert.equal(checks['database']?.ok, true);
    assert.equal(checks['temporal']?.ok, false);
    // The client's TLS stack says it could not verify the certificate; runs of this same test
    // have seen both wordings.
    assert.match(
      checks['temporal']?.error ?? '',
      /self-signed certificate in certificate chain|unable to verify the first certificate/,
    );
  });

  it('a worker given a certificate without its key, or an unreadable CA file, refuses to start naming the variable', async () => {
    // Refused before the database or Temporal is reached.
    const shared = {
      DATABASE_URL: testEnv.postgresUrl,
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
    };
    const withoutKey = startService('src/worker/worker-process.ts', {
      ...shared,
      TEMPORAL_TLS_CERT_FILE: certificates.clientCertFile,
    });
    const unreadable = startService('src/worker/worker-process.ts', {
      ...shared,
      TEMPORAL_TLS_CA_FILE: `${certificates.dir}/missing-ca.crt`,
    });
    assert.equal(await withoutKey.exited, 1);
    assert.match(
      withoutKey.output.join('\n'),
      /TEMPORAL_TLS_KEY_FILE: required with TEMPORAL_TLS_CERT_FILE/,
    );
    assert.equal(await unreadable.exited, 1);
    assert.match(
      unreadable.output.join('\n'),
      /TEMPORAL_TLS_CA_FILE: cannot read .*missing-ca\.crt \(ENOENT\)/,
    );
  });
});
