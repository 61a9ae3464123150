// One user's submissions must not queue behind each other's workflow starts: the per-user lock
// covers admission only. The cap and the idempotency keys must hold all the same.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  Client,
  Connection,
  type WorkflowClientInterceptor,
  type WorkflowStartInput,
} from '@temporalio/client';
import type { TemporalAccess } from '../../src/temporal-client.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type ApiResponse, type Harness } from '../support/harness.js';

/** Workflow starts the test holds before they reach Temporal, until it lets them go. */
class StartGate implements WorkflowClientInterceptor {
  /** Ids of the workflows whose start is held now. */
  readonly held: string[] = [];
  private holdNext = false;
  private release: () => void = () => undefined;

  /** Holds the next workflow start, until `letGo()`. */
  holdNextStart(): void {
    this.holdNext = true;
  }

  letGo(): void {
    this.release();
  }

  async startWithDetails(
    input: WorkflowStartInput,
    next: Parameters<NonNullable<WorkflowClientInterceptor['startWithDetails']>>[1],
  ) {
    if (this.holdNext) {
      this.holdNext = false;
      this.held.push(input.options.workflowId);
      await new Promise<void>((resolve) => (this.release = resolve));
      this.held.splice(this.held.indexOf(input.options.workflowId), 1);
    }
    return next(input);
  }
}

describe('job admission', { timeout: 30_000 }, () => {
  let h: Harness;
  const gate = new StartGate();
  let connection: Connection;

  before(async () => {
    connection = Connection.lazy({ address: testEnv.temporalAddress });
    const temporal: TemporalAccess = {
      client: new Client({
        connection,
        namespace: testEnv.temporalNamespace,
        interceptors: { workflow: [gate] },
      }),
      eagerStart: false,
      lookups: new Client({ connection, namespace: testEnv.temporalNamespace }),
      ping: async () => undefined,
      close: () => connection.close(),
    };
    h = await startHarness({
      temporal,
      env: { GEMINI_API_KEY: 'k', USER_MAX_JOBS_IN_FLIGHT: '2' },
    });
  });
  after(async () => {
    gate.letGo();
    await h.stop();
    await connection.close();
  });

  const start = (user: string, headers: Record<string, string> = {}) =>
    h
      .user(user)
      .post('/api/ai/jobs', { type: 'SUBGOAL_GENERATION', input: { goal: 'Sail' } }, headers);

  const idOf = (response: ApiResponse) => response.json<{ id: string }>().id;

  it("accepts a user's second job while the first one's workflow start is held, within the cap", async () => {
    const user = `busy-${randomUUID().slice(0, 8)}`;
    gate.holdNextStart();
    const first = start(user);
    await eventually(
      async () => gate.held.length,
      (held) => held === 1,
      { what: 'the first start held' },
    );

    // Under a lock held across the start, these would wait for `first`, which waits for us.
    const second = await start(user);
    assert.equal(second.statusCode, 202, second.body);
    h.terminateOnStop(idOf(second));
    // The held job has its place: the cap (2) counts it before its row exists.
    const third = await start(user);
    assert.equal(third.statusCode, 429, third.body);
    assert.equal(third.json<{ error: { code: string } }>().error.code, 'TOO_MANY_JOBS_IN_FLIGHT');
    assert.equal(gate.held.length, 1, 'the first start is still held');

    gate.letGo();
    const accepted = await first;
    assert.equal(accepted.statusCode, 202, accepted.body);
    h.terminateOnStop(idOf(accepted));
    const rows = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.deepEqual(rows.map((row) => row.id).sort(), [idOf(accepted), idOf(second)].sort());
    assert.deepEqual(await h.db.selectFrom('job_reservations').selectAll().execute(), []);
  });

  it('answers a repeat of a key being started with its job once the start is done', async () => {
    const user = `eager-${randomUUID().slice(0, 8)}`;
    const key = { 'idempotency-key': 'sail-once' };
    gate.holdNextStart();
    const first = start(user, key);
    await eventually(
      async () => gate.held.length,
      (held) => held === 1,
      { what: 'the first start held' },
    );
    const repeat = start(user, key);
    // Another key of the same user goes ahead meanwhile.
    const other = await start(user, { 'idempotency-key': 'sail-twice' });
    assert.equal(other.statusCode, 202, other.body);
    h.terminateOnStop(idOf(other));

    gate.letGo();
    const [accepted, repeated] = await Promise.all([first, repeat]);
    assert.equal(accepted.statusCode, 202, accepted.body);
    assert.equal(repeated.statusCode, 202, repeated.body);
    h.terminateOnStop(idOf(accepted));
    assert.equal(idOf(repeated), idOf(accepted));
    assert.equal(accepted.headers['idempotent-replayed'], 'false');
    assert.equal(repeated.headers['idempotent-replayed'], 'true');
  });
});
