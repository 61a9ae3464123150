import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Db } from '../../src/db/database.js';
import { createTemporalAccess, type TemporalAccess } from '../../src/temporal-client.js';
import { installWorkerRuntime } from '../../src/worker/runtime.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { startHarness } from '../support/harness.js';
import { captureLogs, testLogger } from '../support/logs.js';
import { freePort } from '../support/ports.js';
import { testTemporal } from '../support/temporal.js';

interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** A Temporal frontend nobody listens on, without the client's retries (they take ~18 s). */
async function unreachableTemporal(): Promise<TemporalAccess> {
  const connection = Connection.lazy({
    address: `127.0.0.1:${await freePort()}`,
    interceptors: [],
  });
  const client = new Client({ connection, namespace: testEnv.temporalNamespace });
  return {
    client,
    eagerStart: false,
    lookups: client,
    ping: () => connection.workflowService.getSystemInfo({}).then(() => undefined),
    close: () => connection.close(),
  };
}

/**
 * The run's Temporal frontend behind a proxy that `freeze()` stops passing bytes through, both
 * ways, on the connections it holds: a server that takes requests and never answers (a paused
 * process, a stuck load balancer).
 */
async function freezableTemporal(): Promise<{ address: string; freeze(): void; close(): void }> {
  const [host, port] = testEnv.temporalAddress.split(':');
  const sockets: net.Socket[] = [];
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    sockets.push(client, upstream);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    freeze: () => {
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

/** A PostgreSQL nobody listens on. */
async function unreachableDatabase(): Promise<Db> {
  return new Kysely({
    dialect: new PostgresDialect({
      pool: new pg.Pool({
        connectionString: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
        connectionTimeoutMillis: 1_000,
      }),
    }),
  });
}

// Each dependency fails in its own way when a job is started; each failure gets its own answer,
// and none leaves a job behind.
describe('a job that cannot be started', () => {
  let test: TestDatabase;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    test = await createTestDatabase();
    cleanups.push(() => test.drop());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function startProbe(db: Db, temporal: TemporalAccess, owner: string) {
    const logs = captureLogs();
    const h = await startHarness({ db, temporal, logger: logs.logger });
    cleanups.push(() => h.stop());
    const response = await h.user(owner).post('/api/probes', { steps: 1, stepDelayMs: 0 });
    return { status: response.statusCode, body: response.json<ErrorBody>(), logs: logs.lines() };
  }

  async function rowsOf(owner: string) {
    return test.db.selectFrom('jobs').select('id').where('owner_id', '=', owner).execute();
  }

  it('is 503 TEMPORAL_UNAVAILABLE when Temporal cannot be reached', async () => {
    const temporal = await unreachableTemporal();
    cleanups.push(() => temporal.close());
    const owner = `no-temporal-${randomUUID().slice(0, 8)}`;
    const { status, body } = await startProbe(test.db, temporal, owner);
    assert.equal(status, 503);
    assert.deepEqual(body, {
      error: {
        code: 'TEMPORAL_UNAVAILABLE',
        message: 'The job could not be started: Temporal is unavailable',
      },
    });
    assert.deepEqual(await rowsOf(owner), []);
  });

  // All in one process the API starts workflows through the worker's native connection
  // (eager start), whose own deadline ends a call CANCELLED, "Timeout expired", not
  // DEADLINE_EXCEEDED; and the answer must come before the API's idle timeout closes the socket.
  it('is 503 TEMPORAL_UNAVAILABLE when Temporal takes the start and never answers', async () => {
    await installWorkerRuntime(testLogger());
    const frozen = await freezableTemporal();
    cleanups.push(async () => frozen.close());
    const connection = await NativeConnection.connect({ address: frozen.address });
    cleanups.push(() => connection.close());
    const temporal = createTemporalAccess(
      { address: frozen.address },
      testEnv.temporalNamespace,
      connection,
    );
    cleanups.push(() => temporal.close());
    frozen.freeze();
    const owner = `frozen-temporal-${randomUUID().slice(0, 8)}`;
    const { status, body } = await startProbe(test.db, temporal, owner);
    assert.equal(status, 503);
    assert.equal(body.error.code, 'TEMPORAL_UNAVAILABLE');
    assert.deepEqual(await rowsOf(owner), []);
  });

  it('is 503 DATABASE_UNAVAILABLE when the database cannot be reached', async () => {
    const db = await unreachableDatabase();
    cleanups.push(() => db.destroy());
    const temporal = testTemporal();
    cleanups.push(() => temporal.close());
    const { status, body } = await startProbe(db, temporal, 'no-database');
    assert.equal(status, 503);
    assert.deepEqual(body, {
      error: {
        code: 'DATABASE_UNAVAILABLE',
        message: 'The job could not be recorded: the database is unavailable',
      },
    });
  });

  // Both used to answer 503, telling the client to retry what no retry can fix.
  it('is 500 INTERNAL_ERROR, the cause logged, when Temporal refuses the start', async () => {
    const temporal = createTemporalAccess(
      { address: testEnv.temporalAddress },
      `no-such-${randomUUID()}`,
    );
    cleanups.push(() => temporal.close());
    const owner = `bad-namespace-${randomUUID().slice(0, 8)}`;
    const { status, body, logs } = await startProbe(test.db, temporal, owner);
    assert.equal(status, 500);
    assert.deepEqual(body, { error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
    const logged = logs.find((line) => line['msg'] === 'could not accept the job');
    assert.match(String((logged?.['err'] as { message?: string })?.message), /Namespace not found/);
    assert.deepEqual(await rowsOf(owner), []);
  });

  it('is 500 INTERNAL_ERROR, the cause logged and the workflow terminated, when the database refuses the row', async () => {
    const broken = await createTestDatabase();
    cleanups.push(() => broken.drop());
    await sql`alter table jobs rename column input to input_elsewhere`.execute(broken.db);
    const temporal = testTemporal();
    cleanups.push(() => temporal.close());
    const { status, body, logs } = await startProbe(broken.db, temporal, 'schema-drift');
    assert.equal(status, 500);
    assert.deepEqual(body, { error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
    const logged = logs.find((line) => line['msg'] === 'could not accept the job');
    assert.match(String((logged?.['err'] as { message?: string })?.message), /input/);
    const jobId = String(logged?.['jobId']);
    const workflow = await temporal.client.workflow.getHandle(jobId).describe();
    assert.equal(workflow.status.name, 'TERMINATED');
  });
});

// The client of a job whose row could not be written is told to send it again; under its
// Idempotency-Key that request was answered 409 IDEMPOTENCY_KEY_IN_USE ("still being
// processed") for as long as Temporal kept the terminated workflow: the key could never
// make its job.
describe('a job sent again with its Idempotency-Key after its row could not be written', () => {
  let test: TestDatabase;
  let temporal: TemporalAccess;

  before(async () => {
    test = await createTestDatabase();
    temporal = testTemporal();
  });
  after(async () => {
    await temporal.close();
    await test.drop();
  });

  it('is accepted as a new job, in a new run of the terminated workflow', async () => {
    const h = await startHarness({ db: test.db, temporal });
    try {
      const owner = h.user(`resent-${randomUUID().slice(0, 8)}`);
      const headers = { 'idempotency-key': 'write-me' };
      const send = () => owner.post('/api/probes', { steps: 1, stepDelayMs: 0 }, headers);
      // The row write alone fails, once its workflow has started.
      await sql`create function refuse_job() returns trigger language plpgsql as
        $$ begin raise exception 'no room for jobs'; end $$`.execute(test.db);
      await sql`create trigger refuse_job before insert on jobs
        for each row execute function refuse_job()`.execute(test.db);
      const failed = await send();
      await sql`drop trigger refuse_job on jobs`.execute(test.db);
      assert.equal(failed.statusCode, 500, failed.body);

      const resent = await send();
      assert.equal(resent.statusCode, 202, resent.body);
      assert.equal(resent.headers['idempotent-replayed'], 'false');
      const { id } = resent.json<{ id: string }>();
      h.terminateOnStop(id);
      const workflow = await temporal.client.workflow.getHandle(id).describe();
      assert.equal(workflow.status.name, 'RUNNING');
      const replayed = await send();
      assert.equal(replayed.statusCode, 202, replayed.body);
      assert.equal(replayed.headers['idempotent-replayed'], 'true');
      assert.equal(replayed.json<{ id: string }>().id, id);
      assert.deepEqual(await test.db.selectFrom('job_reservations').selectAll().execute(), []);
    } finally {
      await h.stop();
    }
  });
});
