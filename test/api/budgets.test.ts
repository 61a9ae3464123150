// Budgets hold under concurrency: a user's submissions are admitted one at a time under their
// lock, each reading what is spent and held and holding its own estimate in the same
// transaction. Refused ones leave nothing: no row, no hold, no reservation, no workflow.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatMoney, parseMoney } from '../../src/costs/money.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { expectOwnerWorkflows } from '../support/temporal.js';
import { assertOnlyControlJobOf } from '../support/jobs.js';
import { assertStoredOnlyUploadOf, storedFiles } from '../support/stored-files.js';
import { startHarness, type ApiResponse, type Harness } from '../support/harness.js';
import { testLogger } from '../support/logs.js';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { createJobActions } from '../../src/api/services/job-actions.js';
import { createRedrives } from '../../src/api/services/redrives.js';
import type { TemporalAccess } from '../../src/temporal-client.js';

interface Money {
  currency: string;
  amount: string;
}
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

describe('budgets', { timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      // Gemini answers AI jobs: they have a price. No worker: accepted jobs stay pending.
      env: {
        GEMINI_API_KEY: 'k',
        USER_MAX_JOBS_IN_FLIGHT: '100',
        USER_RATE_LIMIT_REQUESTS: '1000',
        USER_DAILY_BUDGET: '1000',
      },
    });
  });
  after(() => h.stop());

  const body = { type: 'SUBGOAL_GENERATION', input: { goal: 'Sail around the island' } };
  const start = (user: string) => h.user(user).post('/api/ai/jobs', body);
  const idOf = (response: ApiResponse) => response.json<{ id: string }>().id;

  /** The estimate of `body`, read from one accepted submission of a user with the default budget. */
  async function estimateOfBody(): Promise<bigint> {
    const response = await start(`estimator-${randomUUID().slice(0, 8)}`);
    assert.equal(response.statusCode, 202, response.body);
    h.terminateOnStop(idOf(response));
    const view = response.json<{ estimatedCost: Money; actualCost: Money }>();
    assert.equal(view.estimatedCost.currency, 'USD');
    assert.deepEqual(view.actualCost, { currency: 'USD', amount: '0.00' });
    const estimate = parseMoney(view.estimatedCost.amount);
    assert.ok(estimate > 0n, 'a Gemini job has a price');
    return estimate;
  }

  it('admits exactly what 50 concurrent submissions can afford, and leaves nothing of the others', async () => {
    const estimate = await estimateOfBody();
    const user = `spender-${randomUUID().slice(0, 8)}`;
    const affordable = 10;
    // Room for 10 jobs and half of an eleventh.
    const budget = formatMoney(estimate * BigInt(affordable) + estimate / 2n);
    const set = await h.admin('operator').request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily: budget, monthly: null },
    });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json<{ daily: Money; source: string }>().daily, {
      currency: 'USD',
      amount: budget,
    });

    const responses = await Promise.all(Array.from({ length: 50 }, () => start(user)));
    const accepted = responses.filter((response) => response.statusCode === 202);
    const refused = responses.filter((response) => response.statusCode !== 202);
    h.terminateOnStop(...accepted.map(idOf));
    assert.equal(accepted.length, affordable);
    const spent = accepted.reduce(
      (total, response) =>
        total + parseMoney(response.json<{ estimatedCost: Money }>().estimatedCost.amount),
      0n,
    );
    assert.ok(spent <= parseMoney(budget), `accepted ${formatMoney(spent)} of ${budget}`);
    for (const response of refused) {
      assert.equal(response.statusCode, 402, response.body);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'BUDGET_EXCEEDED');
      assert.match(error.message, /only \d+\.\d+ USD of your daily budget of \d+\.\d+ USD remains/);
      assert.deepEqual(error.details?.['remaining'], {
        daily: { currency: 'USD', amount: formatMoney(estimate / 2n) },
        // The user's own budgets replace the defaults: no monthly limit.
        monthly: null,
      });
    }

    const jobs = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.deepEqual(jobs.map((job) => job.id).sort(), accepted.map(idOf).sort());
    const holds = await h.db
      .selectFrom('cost_holds')
      .select(['job_id', 'state'])
      .where('owner_id', '=', user)
      .execute();
    assert.deepEqual(holds.map((hold) => hold.job_id).sort(), accepted.map(idOf).sort());
    assert.ok(holds.every((hold) => hold.state === 'held'));
    assert.deepEqual(
      await h.db
        .selectFrom('job_reservations')
        .select('job_id')
        .where('owner_id', '=', user)
        .execute(),
      [],
    );
    await expectOwnerWorkflows(h.temporal.client, user, affordable);

    const usage = await h.user(user).get('/api/usage');
    assert.equal(usage.statusCode, 200, usage.body);
    const [mine] = usage.json<{
      users: { userId: string; reserved: Money; total: Money; budget: Record<string, unknown> }[];
    }>().users;
    assert.equal(mine?.userId, user);
    assert.deepEqual(mine.reserved, { currency: 'USD', amount: formatMoney(spent) });
    assert.deepEqual(mine.total, { currency: 'USD', amount: '0.00' });
    assert.equal(mine.budget['source'], 'user');
    assert.deepEqual(mine.budget['remainingToday'], {
      currency: 'USD',
      amount: formatMoney(estimate / 2n),
    });
  });

  it("shows an admin any user's usage and budgets, and refuses that to others", async () => {
    const user = `reader-${randomUUID().slice(0, 8)}`;
    const accepted = await start(user);
    assert.equal(accepted.statusCode, 202, accepted.body);
    h.terminateOnStop(idOf(accepted));
    const estimate = accepted.json<{ estimatedCost: Money }>().estimatedCost;

    const other = await h.user('someone-else').get(`/api/usage?userId=${user}`);
    assert.equal(other.statusCode, 403, other.body);
    assert.equal(other.json<ErrorBody>().error.code, 'ADMIN_REQUIRED');

    const one = await h.admin('operator').get(`/api/usage?userId=${user}`);
    assert.equal(one.statusCode, 200, one.body);
    const users = one.json<{ users: { userId: string; reserved: Money }[] }>().users;
    assert.deepEqual(
      users.map((entry) => [entry.userId, entry.reserved]),
      [[user, estimate]],
    );

    const all = await h.admin('operator').get('/api/usage');
    assert.equal(all.statusCode, 200, all.body);
    const everyone = all.json<{ users: { userId: string }[] }>().users.map((entry) => entry.userId);
    assert.ok(everyone.includes(user), `${user} among ${everyone.join(', ')}`);

    const defaults = await h.admin('operator').get(`/api/admin/budgets/${user}`);
    assert.equal(defaults.statusCode, 200, defaults.body);
    assert.deepEqual(defaults.json(), {
      userId: user,
      daily: { currency: 'USD', amount: '1000.00' },
      monthly: null,
      source: 'default',
      updatedBy: null,
      updatedAt: null,
    });
    const notAdmin = await h.user(user).request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily: null, monthly: null },
    });
    assert.equal(notAdmin.statusCode, 403, notAdmin.body);
    const invalid = await h.admin('operator').request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily: '1.5e3', monthly: null },
    });
    assert.equal(invalid.statusCode, 400, invalid.body);
    assert.match(invalid.json<ErrorBody>().error.message, /daily/);
    const removed = await h.admin('operator').request({
      method: 'DELETE',
      url: `/api/admin/budgets/${user}`,
    });
    assert.equal(removed.statusCode, 404, removed.body);
  });

  it('keeps the hold of a retried attempt when an owner retry and a re-drive of the job race, whichever the workflow takes', async () => {
    const owner = `racer-${randomUUID().slice(0, 8)}`;
    const response = await start(owner);
    assert.equal(response.statusCode, 202, response.body);
    const id = idOf(response);
    h.terminateOnStop(id);
    // The job failed in its first attempt, whose hold was released; its run stays open for a retry.
    await h.db
      .updateTable('jobs')
      .set({ status: 'failed', error_code: 'PROVIDER_ERROR', error_message: 'it broke' })
      .where('id', '=', id)
      .execute();
    await h.db
      .updateTable('cost_holds')
      .set({ state: 'released' })
      .where('job_id', '=', id)
      .execute();
    const row = await h.db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

    // A Temporal whose workflow answers each retry Update when the test says, in the order the
    // test chooses: the interleaving that loses a hold, forced.
    const updates: { accept(): void; refuse(): void }[] = [];
    let updateSent: () => void = () => undefined;
    const client = {
      withDeadline: <T>(_deadline: number, call: () => Promise<T>) => call(),
      workflow: {
        getHandle: () => ({
          describe: async () => ({ status: { name: 'RUNNING' }, runId: 'failed-run' }),
          executeUpdate: () =>
            new Promise((resolve, reject) => {
              updates.push({
                accept: () => resolve({ attempt: 2 }),
                refuse: () =>
                  reject(
                    new WorkflowUpdateFailedError(
                      'refused',
                      new Error(
                        'Only a failed or timed-out AI job can be retried; this one is being retried',
                      ),
                    ),
                  ),
              });
              updateSent();
            }),
        }),
      },
    } as unknown as Client;
    const nextUpdate = () => new Promise<void>((resolve) => (updateSent = resolve));
    const budgets = { daily: '1000', monthly: null };
    const actions = createJobActions(
      { client } as TemporalAccess,
      { timeoutMs: 5_000 },
      { db: h.db, budgets, maxJobsInFlight: 100 },
    );
    const redrives = createRedrives({
      db: h.db,
      temporal: { client } as TemporalAccess,
      actions,
      budgets,
      maxJobsInFlight: 100,
      timeoutMs: 5_000,
      logger: testLogger(),
    });

    // The owner's retry holds attempt 2 and sends its Update; the re-drive runs meanwhile and
    // its Update, if it sends one, is taken first; the owner's is then refused.
    const firstUpdate = nextUpdate();
    const retried = actions.retry(row, { requestedBy: owner }, 'AI job', testLogger()).then(
      () => 'accepted' as const,
      (error: unknown) => error,
    );
    await firstUpdate;
    const secondUpdate = nextUpdate();
    const redriven = redrives.redrive({ jobIds: [id] }, { dryRun: false, requestedBy: 'operator' });
    const raced = await Promise.race([secondUpdate.then(() => 'sent' as const), redriven]);
    if (raced === 'sent') {
      updates[1]!.accept();
      updates[0]!.refuse();
    } else {
      updates[0]!.accept();
    }
    const [ownerRetry, redrive] = await Promise.all([retried, redriven]);
    const accepted = [ownerRetry === 'accepted', redrive.redriven.length === 1].filter(Boolean);
    assert.equal(accepted.length, 1, 'the workflow took one retry');
    assert.deepEqual(
      await h.db
        .selectFrom('cost_holds')
        .select(['attempt', 'state'])
        .where('job_id', '=', id)
        .orderBy('attempt')
        .execute(),
      [
        { attempt: 1, state: 'released' },
        { attempt: 2, state: 'held' },
      ],
      'the attempt the workflow took holds its estimate, once',
    );
  });

  it('refuses a user with no budget left before reading a byte of an upload', async () => {
    const user = `broke-${randomUUID().slice(0, 8)}`;
    const set = await h.admin('operator').request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily: '0', monthly: '0' },
    });
    assert.equal(set.statusCode, 200, set.body);
    const response = await start(user);
    assert.equal(response.statusCode, 402, response.body);
    assert.equal(response.json<ErrorBody>().error.code, 'BUDGET_EXCEEDED');
    const removed = await h.admin('operator').request({
      method: 'DELETE',
      url: `/api/admin/budgets/${user}`,
    });
    assert.equal(removed.statusCode, 204, removed.body);
    const again = await start(user);
    assert.equal(again.statusCode, 202, again.body);
    h.terminateOnStop(idOf(again));
  });
});

describe('a vlog over budget', { timeout: 120_000 }, () => {
  let h: Harness;
  const storageRoot = path.join(os.tmpdir(), `vlogflow-budget-uploads-${randomUUID()}`);
  before(async () => {
    h = await startHarness({
      // Veo renders vlogs: a vlog has a price.
      env: { VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://bucket/out/', GEMINI_API_KEY: 'k' },
      mediaStorage: new LocalMediaStorage(storageRoot, {
        publicUrl: 'http://api.test',
        secret: 's',
      }),
    });
  });
  after(() => h.stop());

  const setDaily = async (user: string, daily: string) => {
    const response = await h.admin('operator').request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily, monthly: null },
    });
    assert.equal(response.statusCode, 200, response.body);
  };

  it('is refused once its upload shows what it costs, and leaves no job, workflow or stored file', async () => {
    const user = `filmmaker-${randomUUID().slice(0, 8)}`;
    // Enough for the cheapest vlog (4 s), so the upload is read; not for an 8 s one.
    await setDaily(user, '1');
    const response = await h
      .user(user)
      .postForm(
        '/api/vlogs',
        multipartBody({ title: 'Too long', durationSeconds: '8' }, [
          { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
        ]),
      );
    assert.equal(response.statusCode, 402, response.body);
    const { error } = response.json<ErrorBody>();
    assert.equal(error.code, 'BUDGET_EXCEEDED');
    assert.match(error.message, /only 1\.00 USD of your daily budget of 1\.00 USD remains/);
    const estimate = error.details?.['estimatedCost'] as Money;
    assert.ok(parseMoney(estimate.amount) > parseMoney('1'), estimate.amount);

    await setDaily(user, '100');
    const control = await assertOnlyControlJobOf(h, user, 'vlog');
    await assertStoredOnlyUploadOf(storageRoot, h.db, control);
  });

  it('is refused before its upload is read when not even the cheapest vlog fits', async () => {
    const user = `broke-filmmaker-${randomUUID().slice(0, 8)}`;
    await setDaily(user, '0.10');
    const response = await h
      .user(user)
      .postForm(
        '/api/vlogs',
        multipartBody({ title: 'Nothing left' }, [
          { field: 'media', filename: 'a.png', contentType: 'image/png', bytes: pngBytes() },
        ]),
      );
    assert.equal(response.statusCode, 402, response.body);
    assert.equal(response.json<ErrorBody>().error.code, 'BUDGET_EXCEEDED');
    assert.deepEqual(await storedFiles(storageRoot), []);
  });
});
