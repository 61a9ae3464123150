import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Db } from '../../src/db/database.js';
import { findMediaTools, isNpmFfmpeg } from '../../src/media/tools.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import { createMediaWorkers } from '../../src/api/services/media-workers.js';
import { watchTaskQueues } from '../../src/task-queue-status.js';
import { createReadiness } from '../../src/api/services/readiness.js';
import { createTemporalAccess } from '../../src/temporal-client.js';
import { prepareNamespaceAt } from '../../temporal/namespace.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { startHarness } from '../support/harness.js';
import { testTemporal } from '../support/temporal.js';
import { captureLogs } from '../support/logs.js';
import { startHeadlessDevServer } from '../support/dev-server.js';
import { freePort } from '../support/ports.js';

interface Readiness {
  status?: string;
  checks?: Record<string, { ok: boolean; error?: string; version?: string }>;
  error?: {
    code: string;
    message: string;
    details: { checks: Record<string, { ok: boolean; error?: string }> };
  };
}

describe('/readyz', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('is 200 while Temporal and the database answer, and 503 naming Temporal once its server stops', async () => {
    // A server of its own, so stopping it does not disturb the other test files.
    const server = await startHeadlessDevServer({
      cliPath: testEnv.temporalCliPath,
      namespace: 'readiness',
      logFile: path.resolve('.local/test-logs/readiness-dev-server.log'),
    });
    cleanups.push(() => server.stop());
    // Set up as `npm run temporal:setup` sets up a cluster's: readiness asks for the search attributes.
    await prepareNamespaceAt({ address: server.address }, 'readiness');
    const temporal = createTemporalAccess({ address: server.address }, 'readiness');
    cleanups.push(() => temporal.close());
    // The Google provider does not need ffmpeg: no worker with it is not what is wrong here.
    const controlTimeoutMs = 2_000;
    const h = await startHarness({
      temporal,
      env: { VLOG_PROVIDER: 'google', JOB_CONTROL_TIMEOUT_MS: String(controlTimeoutMs) },
    });
    cleanups.push(() => h.stop());
    const { api } = h;

    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.deepEqual(ready.json<Readiness>().checks, {
      temporal: { ok: true },
      database: { ok: true },
      ffmpeg: { ok: true, error: `no worker polls ${taskQueueNames(h.taskQueue).media}` },
    });

    // A job its workflow runs for, on the connection the API has made: no worker polls here.
    const started = await h.user('canceller').post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(started.statusCode, 202, started.body);
    const jobId = started.json<{ id: string }>().id;

    await server.stop();
    const down = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(down.statusCode, 503);
    const body = down.json<Readiness>();
    assert.equal(body.error?.code, 'NOT_READY');
    assert.match(body.error?.message ?? '', /temporal/);
    assert.equal(body.error?.details.checks['temporal']?.ok, false);
    assert.equal(body.error?.details.checks['database']?.ok, true);
    // Liveness is about the process only.
    assert.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);

    // A cancel while Temporal is gone answers within JOB_CONTROL_TIMEOUT_MS and a 1 s ping (an
    // outside probe saw 15.8 s after a SIGKILL of the server, not seen after a stop here).
    const sent = Date.now();
    const cancel = await h.user('canceller').post(`/api/probes/${jobId}/cancel`, {});
    const tookMs = Date.now() - sent;
    assert.equal(cancel.statusCode, 503, cancel.body);
    assert.equal(cancel.json<{ error: { code: string } }>().error.code, 'TEMPORAL_UNAVAILABLE');
    // The documented bound, with room for a busy machine.
    assert.ok(tookMs < controlTimeoutMs + 1_000 + 3_000, `answered after ${tookMs} ms`);
  });

  it('answers requests that come while a check runs with that check, never one check each', async () => {
    // /readyz asks no token: a flood of it must not become a flood of Temporal calls and
    // database connections.
    const temporal = testTemporal();
    cleanups.push(() => temporal.close());
    let pings = 0;
    const counted = {
      ...temporal,
      ping: (signal: AbortSignal, timeoutMs: number) => {
        pings += 1;
        return temporal.ping(signal, timeoutMs);
      },
    };
    const h = await startHarness({ temporal: counted });
    cleanups.push(() => h.stop());
    const readiness = createReadiness(counted, h.db, {
      workers: createMediaWorkers(watchTaskQueues(temporal.lookups, h.taskQueue), 'media'),
      required: false,
    });

    const answers = await Promise.all(Array.from({ length: 50 }, () => readiness()));
    assert.equal(pings, 1, 'one check for fifty requests made while it ran');
    for (const answer of answers) {
      assert.deepEqual(answer, answers[0]);
    }
    assert.equal(answers[0]?.temporal.ok, true);
    assert.equal(answers[0]?.database.ok, true);
    // A request after the check ended gets a check of its own: answers are never stale.
    await readiness();
    assert.equal(pings, 2);
  });

  it('is 503 naming the database when it cannot be reached', async () => {
    const unreachable: Db = new Kysely({
      dialect: new PostgresDialect({
        pool: new pg.Pool({
          connectionString: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
          connectionTimeoutMillis: 1_000,
        }),
      }),
    });
    cleanups.push(() => unreachable.destroy());
    const h = await startHarness({ db: unreachable, env: { VLOG_PROVIDER: 'google' } });
    cleanups.push(() => h.stop());
    const { api } = h;

    const response = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 503);
    const body = response.json<Readiness>();
    assert.match(body.error?.message ?? '', /database/);
    assert.equal(body.error?.details.checks['database']?.ok, false);
    assert.equal(body.error?.details.checks['temporal']?.ok, true);

    // ffmpeg is not what is wrong.
    assert.equal(body.error?.details.checks['ffmpeg']?.ok, true);

    // A request that fails for want of its database is a 503 to retry, telling nothing of the
    // internals.
    const jobs = await h.user('alice').get('/api/jobs');
    assert.equal(jobs.statusCode, 503);
    assert.equal(jobs.headers['retry-after'], '5');
    assert.deepEqual(jobs.json(), {
      error: {
        code: 'DATABASE_UNAVAILABLE',
        message: 'The database is unavailable; try again shortly',
      },
    });
  });

  // The API runs no ffmpeg: it reads the workers' from the media task queue's pollers.
  it('is ready once a worker with ffmpeg polls the media task queue, naming no build', async () => {
    const tools = await findMediaTools();
    assert.ok(tools);
    const logs = captureLogs();
    const h = await startHarness({
      logger: logs.logger,
      worker: async () => ({ mediaTools: tools }),
    });
    cleanups.push(() => h.stop());

    const ready = await eventually(
      () => h.api.app.inject({ method: 'GET', url: '/readyz' }),
      (response) => response.statusCode === 200,
      { what: 'readiness once the worker polls' },
    );
    const { ffmpeg } = ready.json<Readiness>().checks ?? {};
    // Ready, without the build: the versions are the operators', in the workers' identities.
    assert.deepEqual(ffmpeg, { ok: true });
    assert.doesNotMatch(ready.body, /version/);
    assert.equal(
      logs
        .lines()
        .some((line) => String(line['msg']).startsWith("ffmpeg is npm's static 2018 build")),
      isNpmFfmpeg(tools),
      'a worker on npm ffmpeg warns at start, one on a system ffmpeg does not',
    );
  });

  it('is 503 naming ffmpeg when the local provider is selected and no worker polls', async () => {
    const h = await startHarness();
    cleanups.push(() => h.stop());

    const response = await h.api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 503);
    const body = response.json<Readiness>();
    assert.equal(body.error?.message, 'Not ready: ffmpeg not available');
    assert.deepEqual(body.error?.details.checks['ffmpeg'], {
      ok: false,
      error: `no worker polls ${taskQueueNames(h.taskQueue).media}`,
    });
  });

  it('is 503 naming ffmpeg when the local provider is selected and the workers have none', async () => {
    // The test worker's default: no media tools.
    const h = await startHarness({ worker: true });
    cleanups.push(() => h.stop());

    const body = await eventually(
      async () => (await h.api.app.inject({ method: 'GET', url: '/readyz' })).json<Readiness>(),
      (answer) =>
        answer.error?.details.checks['ffmpeg']?.error !==
        `no worker polls ${taskQueueNames(h.taskQueue).media}`,
      { what: 'readiness once the worker polls' },
    );
    assert.equal(body.error?.message, 'Not ready: ffmpeg not available');
    assert.deepEqual(body.error?.details.checks['ffmpeg'], {
      ok: false,
      error: `no worker polling ${taskQueueNames(h.taskQueue).media} has ffmpeg and ffprobe`,
    });
  });
});
