// What a failed Veo submission says of Veo's side: an error Veo answered, or a connection that
// never opened, means it took nothing (the retry sends again at once); a request that got no
// answer may have been taken (the retry looks for its video first).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createProviders } from '../../src/providers/index.js';
import { ProviderError, UnansweredRequestError } from '../../src/providers/types.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { testJwtSecret } from '../support/harness.js';
import { freePort } from '../support/ports.js';

const requestTimeoutMs = 1_000;

function veoAt(baseUrl: string) {
  const config = loadConfig({
    AUTH_JWT_SECRET: testJwtSecret,
    VERTEX_PROJECT: 'test-project',
    VERTEX_LOCATION: 'us-central1',
    VERTEX_BASE_URL: baseUrl,
    VERTEX_ACCESS_TOKEN: 'test-token',
    VEO_OUTPUT_GCS_URI: 'gs://veo-output/generated/',
    GCS_API_ENDPOINT: 'http://127.0.0.1:9',
    PROVIDER_REQUEST_TIMEOUT_MS: String(requestTimeoutMs),
  });
  const providers = createProviders(config, {
    mediaStorage: createMediaStorage(config, testJwtSecret),
    mediaTools: null,
  });
  return providers.videoGenerator!;
}

/** What starting a generation at `baseUrl` fails with. */
async function submissionFailure(baseUrl: string): Promise<unknown> {
  return veoAt(baseUrl)
    .start(
      {
        prompt: 'A day at the beach',
        aspectRatio: '16:9',
        durationSeconds: 8,
        outputUri: 'gs://veo-output/generated/job/attempt-1/',
        title: 'Beach',
        media: [],
        analysis: null,
      },
      {
        signal: new AbortController().signal,
        openMedia: () => Promise.reject(new Error('no media is read')),
        progress: () => undefined,
      },
    )
    .then(
      () => assert.fail('the submission succeeded'),
      (error: unknown) => error,
    );
}

describe('a failed Veo submission', () => {
  let google: FakeGoogle;
  const servers: net.Server[] = [];

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
  });
  afterEach(() => google.resetScenario());
  after(async () => {
    await google.stop();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });

  it('took nothing when Veo answered it with an error', async () => {
    google.scenario.startFailures = [{ status: 503 }];
    const failure = await submissionFailure(google.url);
    assert.ok(failure instanceof ProviderError, String(failure));
    assert.ok(!(failure instanceof UnansweredRequestError), String(failure));
  });

  it('took nothing when its connection was refused', async () => {
    const failure = await submissionFailure(`http://127.0.0.1:${await freePort()}`);
    assert.ok(failure instanceof ProviderError, String(failure));
    assert.ok(!(failure instanceof UnansweredRequestError), String(failure));
  });

  it('may have been taken when its answer came too late', async () => {
    google.scenario.startAnswerDelayMs = requestTimeoutMs + 2_000;
    const failure = await submissionFailure(google.url);
    assert.ok(failure instanceof UnansweredRequestError, String(failure));
    assert.match(String((failure as Error).message), /did not end within 1000 ms/);
  });

  it('may have been taken when its connection broke after the request went out', async () => {
    const dropsAfterRequest = net.createServer((socket) => {
      socket.once('data', () => socket.destroy());
    });
    servers.push(dropsAfterRequest);
    await new Promise<void>((resolve) => dropsAfterRequest.listen(0, '127.0.0.1', resolve));
    const { port } = dropsAfterRequest.address() as net.AddressInfo;
    const failure = await submissionFailure(`http://127.0.0.1:${port}`);
    assert.ok(failure instanceof UnansweredRequestError, String(failure));
  });
});
