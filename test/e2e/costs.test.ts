// What jobs cost, end to end against the fakes: each Gemini answer is charged the tokens its
// usageMetadata reports (the last chunk of a streamed one), each Veo generation the seconds it
// was asked for, once, and only when it returned a video; the job's hold is settled or
// released when it ends, and its user's usage shows it.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { formatMoney, parseMoney } from '../../src/costs/money.js';
import { priceTable, type PriceUnit } from '../../src/costs/price-table.js';
import { providerCost, providerCostVoided, providerUsage } from '../../src/metrics/metrics.js';
import { jpegBytes, mp4Bytes, multipartBody, pngBytes } from '../fixtures/media.js';
import type { UsageMetadata } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';
import { CloudFakes, generationBucket } from '../support/cloud-fakes.js';

interface Money {
  currency: string;
  amount: string;
}
interface JobView {
  id: string;
  status: string;
  attempt: number;
  error: { code: string } | null;
  estimatedCost: Money | null;
  actualCost: Money;
}

/** A price of the table, in nano-dollars per its unit size (the table is the figures' source). */
function listed(provider: string, model: string, unit: PriceUnit): bigint {
  const entry = priceTable.find((row) => row.provider === provider && row.model === model);
  assert.ok(entry?.prices[unit], `${provider}:${model} has a ${unit} price`);
  return parseMoney(entry.prices[unit]);
}

/** What Gemini bills an answer: its prompt tokens, and its answer's with thinking. */
function geminiCost(usage: UsageMetadata): bigint {
  const input =
    BigInt(usage.promptTokenCount) * listed('gemini', 'gemini-2.5-flash', 'inputTokens');
  const output =
    BigInt((usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0)) *
    listed('gemini', 'gemini-2.5-flash', 'outputTokens');
  return (input + output) / 1_000_000n;
}

/** The name of the one generation a vlog submitted, once it has. */
async function submittedOperation(h: Harness, jobId: string): Promise<string> {
  const [submitted] = await eventually(
    () =>
      h.db
        .selectFrom('provider_operations')
        .select('operation_name')
        .where('job_id', '=', jobId)
        .execute(),
    (rows) => rows.length === 1,
    { what: 'the generation submitted', timeoutMs: 30_000 },
  );
  return submitted!.operation_name;
}

const vlogForm = () =>
  multipartBody({ title: 'Beach day', durationSeconds: '6' }, [
    { field: 'media', filename: 'sunrise.png', contentType: 'image/png', bytes: pngBytes() },
    { field: 'media', filename: 'friends.jpg', contentType: 'image/jpeg', bytes: jpegBytes() },
    { field: 'media', filename: 'waves.mp4', contentType: 'video/mp4', bytes: mp4Bytes(64 * 1024) },
  ]);

/** A counter's value for exactly these labels (the harness's worker runs in this process). */
async function counted(
  counter: typeof providerCost | typeof providerUsage,
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await counter.get();
  const match = values.find((value) =>
    Object.entries(labels).every(
      ([name, label]) => (value.labels as Record<string, unknown>)[name] === label,
    ),
  );
  return match?.value ?? 0;
}

describe('costs end to end', { timeout: 300_000 }, () => {
  let fakes: CloudFakes;
  let h: Harness;
  let payer: UserClient;

  before(async () => {
    fakes = await CloudFakes.start();
    fakes.google.scenario.videoBytes = 1024;
    h = await startHarness({ env: fakes.env, worker: (db) => fakes.activityDependencies(db) });
    payer = h.user('payer');
  });
  afterEach(() => {
    fakes.google.resetScenario();
    fakes.google.scenario.videoBytes = 1024;
  });
  after(async () => {
    await h.stop();
    await fakes.stop();
  });

  const ledgerOf = (jobId: string) =>
    h.db
      .selectFrom('cost_ledger')
      .select(['kind', 'provider', 'model', 'input_tokens', 'output_tokens', 'video_seconds'])
      .select((eb) => [eb.ref('cost').as('cost'), eb.ref('price_version').as('version')])
      .where('job_id', '=', jobId)
      .orderBy('created_at')
      .execute();
  /** The state of the hold of the job's latest attempt. */
  const holdOf = async (jobId: string) =>
    (
      await h.db
        .selectFrom('cost_holds')
        .select('state')
        .where('job_id', '=', jobId)
        .orderBy('attempt', 'desc')
        .executeTakeFirstOrThrow()
    ).state;
  const holdsOf = (jobId: string) =>
    h.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state', 'amount'])
      .where('job_id', '=', jobId)
      .orderBy('attempt')
      .execute();
  /** The hold closes right after the job's end is projected, in a statement of its own. */
  const holdBecomes = (jobId: string, state: 'settled' | 'released') =>
    eventually(
      () => holdOf(jobId),
      (current) => current === state,
      { what: `the hold of ${jobId} ${state}`, timeoutMs: 10_000 },
    );

  async function vlogEnded(form = vlogForm(), user = payer): Promise<JobView> {
    const response = await user.postForm('/api/vlogs', form);
    assert.equal(response.statusCode, 202, response.body);
    const accepted = response.json<JobView>();
    assert.ok(accepted.estimatedCost && parseMoney(accepted.estimatedCost.amount) > 0n);
    return user.awaitJob<JobView>('vlog', accepted.id, (view) =>
      ['completed', 'failed', 'cancelled'].includes(view.status),
    );
  }

  it('charges a vlog its analysis tokens and its seconds of video, settles its hold and shows it in usage', async () => {
    const usageBefore = fakes.google.reportedUsage.length;
    const done = await vlogEnded();
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const [analysisUsage] = fakes.google.reportedUsage.slice(usageBefore);
    assert.ok(analysisUsage, 'Gemini reported the analysis usage');
    const operation = [...fakes.google.operations.values()].find((op) =>
      op.storageUri.includes(done.id),
    );
    assert.equal(operation?.durationSeconds, 6);

    const ledger = await ledgerOf(done.id);
    assert.deepEqual(
      ledger.map((row) => [row.kind, row.provider, row.model]),
      [
        ['analysis', 'gemini', 'gemini-2.5-flash'],
        ['video', 'veo', 'veo-3.1-fast-generate-001'],
      ],
    );
    const [analysis, video] = ledger;
    assert.equal(Number(analysis!.input_tokens), analysisUsage.promptTokenCount);
    assert.equal(
      Number(analysis!.output_tokens),
      analysisUsage.candidatesTokenCount! + analysisUsage.thoughtsTokenCount!,
    );
    assert.equal(parseMoney(analysis!.cost), geminiCost(analysisUsage));
    assert.equal(Number(video!.video_seconds), 6);
    const videoCost = 6n * listed('veo', 'veo-3.1-fast-generate-001', 'videoSeconds');
    assert.equal(parseMoney(video!.cost), videoCost);

    const total = geminiCost(analysisUsage) + videoCost;
    assert.equal(parseMoney(done.actualCost.amount), total);
    await holdBecomes(done.id, 'settled');

    const usage = await payer.get('/api/usage');
    assert.equal(usage.statusCode, 200, usage.body);
    const [mine] = usage.json<{
      users: { days: { byKind: { kind: string; cost: Money }[] }[]; reserved: Money }[];
    }>().users;
    const kinds = mine!.days.flatMap((day) => day.byKind.map((entry) => entry.kind));
    assert.ok(kinds.includes('analysis') && kinds.includes('video'), kinds.join(', '));
    assert.equal(parseMoney(mine!.reserved.amount), 0n, 'nothing held once the job ended');
  });

  it('charges a generation once when a retry re-uses it, and releases the hold of the failed attempt', async () => {
    fakes.google.scenario.writeVideo = false;
    const failed = await vlogEnded();
    assert.equal(failed.error?.code, 'TRANSFER_FAILED');
    await holdBecomes(failed.id, 'released');
    const charged = (await ledgerOf(failed.id)).filter((row) => row.kind === 'video');
    assert.equal(charged.length, 1, 'the generation returned a video: it is paid');

    const [operationName, operation] =
      [...fakes.google.operations.entries()].find(([, op]) => op.storageUri.includes(failed.id)) ??
      [];
    assert.ok(operationName && operation?.videoUri);
    await fakes.gcsClient
      .bucket(generationBucket)
      .file(operation.videoUri.replace(`gs://${generationBucket}/`, ''))
      .save(Buffer.alloc(1024, 7), { resumable: false });
    const submissions = fakes.google.calls.predictLongRunning;
    assert.equal((await payer.retry('vlog', failed.id)).statusCode, 202);
    const done = await payer.awaitJob<JobView>(
      'vlog',
      failed.id,
      (view) => view.status === 'completed',
    );
    assert.equal(done.attempt, 2);
    assert.equal(fakes.google.calls.predictLongRunning, submissions, 'no second generation');
    const ledger = await ledgerOf(failed.id);
    assert.equal(ledger.filter((row) => row.kind === 'video').length, 1, 'charged once');
    assert.equal(
      parseMoney(done.actualCost.amount),
      ledger.reduce((sum, row) => sum + parseMoney(row.cost), 0n),
    );
    // The retry held the estimate again for its attempt, settled when that attempt completed.
    await holdBecomes(failed.id, 'settled');
    assert.deepEqual(
      (await holdsOf(failed.id)).map((hold) => [hold.attempt, hold.state, parseMoney(hold.amount)]),
      [
        [1, 'released', parseMoney(failed.estimatedCost!.amount)],
        [2, 'settled', parseMoney(failed.estimatedCost!.amount)],
      ],
    );
  });

  /** A failed vlog of `user` whose generated video is in place, so a retry of it completes. */
  async function failedVlogOf(user: UserClient): Promise<JobView> {
    fakes.google.scenario.writeVideo = false;
    const failed = await vlogEnded(vlogForm(), user);
    assert.equal(failed.error?.code, 'TRANSFER_FAILED');
    await holdBecomes(failed.id, 'released');
    const operation = [...fakes.google.operations.values()].find((op) =>
      op.storageUri.includes(failed.id),
    );
    assert.ok(operation?.videoUri);
    await fakes.gcsClient
      .bucket(generationBucket)
      .file(operation.videoUri.replace(`gs://${generationBucket}/`, ''))
      .save(Buffer.alloc(1024, 7), { resumable: false });
    return failed;
  }

  /** Sets a user's daily budget to what they spent plus `room`. */
  async function budgetWithRoom(user: string, room: bigint): Promise<void> {
    const { spent } = await h.db
      .selectFrom('cost_ledger')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('cost'), eb.val('0')).as('spent'))
      .where('owner_id', '=', user)
      .executeTakeFirstOrThrow();
    const set = await h.admin('operator').request({
      method: 'PUT',
      url: `/api/admin/budgets/${user}`,
      payload: { daily: formatMoney(parseMoney(String(spent)) + room), monthly: null },
    });
    assert.equal(set.statusCode, 200, set.body);
  }

  it('refuses a retry over budget with 402, leaving the job failed and retryable once there is room', async () => {
    const user = h.user('retrier');
    const failed = await failedVlogOf(user);
    const estimate = parseMoney(failed.estimatedCost!.amount);
    await budgetWithRoom('retrier', estimate - 1n);

    const refused = await user.retry('vlog', failed.id);
    assert.equal(refused.statusCode, 402, refused.body);
    const { error } = refused.json<{ error: { code: string; message: string } }>();
    assert.equal(error.code, 'BUDGET_EXCEEDED');
    assert.match(error.message, /only \d+\.\d+ USD of your daily budget of \d+\.\d+ USD remains/);
    const still = await user.get(`/api/vlogs/${failed.id}`);
    assert.equal(still.json<JobView>().status, 'failed');
    assert.equal(still.json<JobView>().attempt, 1);
    assert.deepEqual(
      (await holdsOf(failed.id)).map((hold) => [hold.attempt, hold.state]),
      [[1, 'released']],
      'no hold for an attempt that was refused',
    );

    await budgetWithRoom('retrier', estimate);
    assert.equal((await user.retry('vlog', failed.id)).statusCode, 202);
    const done = await user.awaitJob<JobView>(
      'vlog',
      failed.id,
      (view) => view.attempt === 2 && ['completed', 'failed'].includes(view.status),
    );
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 2);
    await holdBecomes(failed.id, 'settled');
  });

  it('admits only the retries a budget can hold when they are sent together', async () => {
    const user = h.user('concurrent-retrier');
    const failed = [];
    for (let i = 0; i < 3; i += 1) failed.push(await failedVlogOf(user));
    const estimate = parseMoney(failed[0]!.estimatedCost!.amount);
    // Room for one retry and half of another.
    await budgetWithRoom('concurrent-retrier', estimate + estimate / 2n);

    const responses = await Promise.all(failed.map((job) => user.retry('vlog', job.id)));
    const accepted = failed.filter((_, i) => responses[i]!.statusCode === 202);
    assert.equal(accepted.length, 1, responses.map((response) => response.body).join('\n'));
    for (const response of responses.filter((response) => response.statusCode !== 202)) {
      assert.equal(response.statusCode, 402, response.body);
    }
    const held = await h.db
      .selectFrom('cost_holds')
      .select(['job_id', 'attempt'])
      .where('owner_id', '=', 'concurrent-retrier')
      .where('attempt', '=', 2)
      .execute();
    assert.deepEqual(
      held.map((hold) => hold.job_id),
      [accepted[0]!.id],
    );
    await user.awaitJob<JobView>('vlog', accepted[0]!.id, (view) => view.status === 'completed');
    await holdBecomes(accepted[0]!.id, 'settled');
  });

  it('does not charge a generation the safety filters removed', async () => {
    fakes.google.scenario.generationOutcomes = [{ kind: 'filtered', reasons: ['unsafe'] }];
    const failed = await vlogEnded();
    assert.equal(failed.error?.code, 'CONTENT_FILTERED');
    const ledger = await ledgerOf(failed.id);
    assert.deepEqual(
      ledger.map((row) => row.kind),
      ['analysis'],
    );
    await holdBecomes(failed.id, 'released');
    assert.equal(parseMoney(failed.actualCost.amount), parseMoney(ledger[0]!.cost));
  });

  it('charges a generation submitted before its vlog was cancelled, as Veo bills it when it finishes, under the key a check would use', async () => {
    fakes.google.scenario.generationMs = 10 * 60_000;
    const response = await payer.postForm('/api/vlogs', vlogForm());
    assert.equal(response.statusCode, 202, response.body);
    const { id } = response.json<JobView>();
    const operationName = await submittedOperation(h, id);
    assert.equal((await payer.cancel('vlog', id, { reason: 'too slow' })).statusCode, 202);
    const cancelled = await payer.awaitJob<JobView>(
      'vlog',
      id,
      (view) => view.status === 'cancelled',
    );
    await holdBecomes(id, 'released');

    const video = await h.db
      .selectFrom('cost_ledger')
      .select(['idempotency_key', 'video_seconds', 'prices', 'cost', 'created_at'])
      .where('job_id', '=', id)
      .where('kind', '=', 'video')
      .execute();
    assert.equal(video.length, 1, 'the submitted generation is charged once');
    // Charged before the cancel was applied: no reader saw the job ended with its cost to come.
    const { updated_at: cancelApplied } = await h.db
      .selectFrom('jobs')
      .select('updated_at')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const [chargedAt, appliedAt] = [video[0]!.created_at, cancelApplied].map((at) => new Date(at));
    assert.ok(
      chargedAt! <= appliedAt!,
      `charged at ${chargedAt!.toISOString()}, cancel applied at ${appliedAt!.toISOString()}`,
    );
    assert.equal(video[0]!.idempotency_key, `${id}:video:${operationName}`);
    assert.equal(Number(video[0]!.video_seconds), 6);
    assert.match(String((video[0]!.prices as { note?: string }).note), /end of its job/);
    assert.equal(
      parseMoney(String(video[0]!.cost)),
      6n * listed('veo', 'veo-3.1-fast-generate-001', 'videoSeconds'),
    );
    const ledger = await ledgerOf(id);
    assert.equal(
      parseMoney(cancelled.actualCost.amount),
      ledger.reduce((sum, row) => sum + parseMoney(row.cost), 0n),
    );
  });

  it('charges a generation Veo accepted while its vlog was cancelled mid-submission, waiting for its answer', async () => {
    // Veo takes the request at once and answers it a while later: a cancel lands in between.
    fakes.google.scenario.startAnswerDelayMs = 3_000;
    fakes.google.scenario.generationMs = 10 * 60_000;
    const submittedBefore = fakes.google.calls.predictLongRunning;
    const response = await payer.postForm('/api/vlogs', vlogForm());
    assert.equal(response.statusCode, 202, response.body);
    const { id } = response.json<JobView>();
    await eventually(
      async () => fakes.google.calls.predictLongRunning - submittedBefore,
      (submitted) => submitted === 1,
      { what: `Veo to accept the generation of ${id}`, timeoutMs: 60_000, intervalMs: 20 },
    );
    assert.equal((await payer.cancel('vlog', id, { reason: 'too slow' })).statusCode, 202);
    const cancelled = await payer.awaitJob<JobView>(
      'vlog',
      id,
      (view) => view.status === 'cancelled',
    );

    const operationName = await submittedOperation(h, id);
    const video = await h.db
      .selectFrom('cost_ledger')
      .select(['idempotency_key', 'cost'])
      .where('job_id', '=', id)
      .where('kind', '=', 'video')
      .execute();
    assert.deepEqual(
      video.map((row) => row.idempotency_key),
      [`${id}:video:${operationName}`],
      'the generation Veo accepted is charged once',
    );
    const ledger = await ledgerOf(id);
    assert.equal(
      parseMoney(cancelled.actualCost.amount),
      ledger.reduce((sum, row) => sum + parseMoney(row.cost), 0n),
    );
    assert.equal(fakes.google.calls.predictLongRunning - submittedBefore, 1);
  });

  it("holds a running job's estimate, and releases it when the job is cancelled", async () => {
    fakes.google.scenario.analysisAnswers.push({ kind: 'stall', text: '{"items": [' });
    const pieces = fakes.google.calls.streamedPieces;
    const { id } = await payer.startJob('ai');
    await payer.awaitJob<JobView>('ai', id, () => fakes.google.calls.streamedPieces > pieces, {
      what: 'the answer streaming',
    });
    const reserved = async () => {
      const response = await payer.get('/api/usage');
      assert.equal(response.statusCode, 200, response.body);
      return parseMoney(
        response.json<{ users: { reserved: Money }[] }>().users[0]!.reserved.amount,
      );
    };
    assert.equal(await holdOf(id), 'held');
    assert.ok((await reserved()) > 0n, 'the running job holds its estimate');

    assert.equal((await payer.cancel('ai', id, { reason: 'changed my mind' })).statusCode, 202);
    await payer.awaitJob<JobView>('ai', id, (view) => view.status === 'cancelled');
    await holdBecomes(id, 'released');
    assert.equal(await reserved(), 0n);
  });

  it("charges an AI job the tokens of the streamed answer's last chunk, and counts it in the metrics", async () => {
    const usageBefore = fakes.google.reportedUsage.length;
    const text = { provider: 'gemini', kind: 'text' };
    const costBefore = await counted(providerCost, text);
    const tokensBefore = await counted(providerUsage, { ...text, unit: 'input_tokens' });
    const { id } = await payer.startJob('ai');
    const done = await payer.awaitJob<JobView>('ai', id, (view) => view.status === 'completed');
    const [answerUsage] = fakes.google.reportedUsage.slice(usageBefore);
    assert.ok(answerUsage);
    const ledger = await ledgerOf(id);
    assert.equal(ledger.length, 1);
    assert.equal(ledger[0]!.kind, 'text');
    assert.equal(Number(ledger[0]!.input_tokens), answerUsage.promptTokenCount);
    assert.equal(
      Number(ledger[0]!.output_tokens),
      answerUsage.candidatesTokenCount! + answerUsage.thoughtsTokenCount!,
    );
    assert.equal(parseMoney(done.actualCost.amount), geminiCost(answerUsage));
    assert.equal(
      (await counted(providerUsage, { ...text, unit: 'input_tokens' })) - tokensBefore,
      answerUsage.promptTokenCount,
    );
    const costCounted = (await counted(providerCost, text)) - costBefore;
    assert.ok(
      Math.abs(costCounted - Number(geminiCost(answerUsage)) / 1e9) < 1e-12,
      `counted ${costCounted} USD`,
    );
    assert.ok(done.estimatedCost && parseMoney(done.estimatedCost.amount) > 0n);
    await holdBecomes(id, 'settled');
  });
});

// Veo bills a submitted generation when it finishes, whoever still looks at it: a vlog that ends
// while it runs (its attempt's deadline, a cancel, a workflow closed outside its code) is charged
// it once, under the key a check would use, whatever ends or re-attaches to it after.
describe('costs of generations a vlog stopped looking at', { timeout: 300_000 }, () => {
  const deadlineMs = 8_000;
  let fakes: CloudFakes;
  let h: Harness;
  let payer: UserClient;

  before(async () => {
    fakes = await CloudFakes.start();
    fakes.google.scenario.videoBytes = 1024;
    fakes.google.scenario.generationMs = 10 * 60_000;
    h = await startHarness({
      env: { ...fakes.env, VLOG_DEADLINE_MS: String(deadlineMs) },
      worker: (db) => fakes.activityDependencies(db),
      jobReconcile: { intervalMs: 1_000, staleMs: 1_000, reopenWindowMs: 60_000, batchSize: 100 },
    });
    payer = h.user('left-running');
  });
  after(async () => {
    await h.stop();
    await fakes.stop();
  });

  /** Submits a vlog and returns it once its generation is submitted, with the operation's name. */
  async function generating(): Promise<{ id: string; operationName: string }> {
    const response = await payer.postForm('/api/vlogs', vlogForm());
    assert.equal(response.statusCode, 202, response.body);
    const { id } = response.json<JobView>();
    h.terminateOnStop(id);
    return { id, operationName: await submittedOperation(h, id) };
  }

  const videoCharges = (jobId: string) =>
    h.db
      .selectFrom('cost_ledger')
      .select(['idempotency_key', 'video_seconds', 'cost'])
      .where('job_id', '=', jobId)
      .where('kind', '=', 'video')
      .execute();

  /** Waits for the generation's charge: one, for its 6 s, under the key a completed check uses. */
  async function chargedOnceAsACheckWould(id: string, operationName: string): Promise<void> {
    const video = await eventually(
      () => videoCharges(id),
      (rows) => rows.length > 0,
      { what: 'the generation charged', timeoutMs: 10_000 },
    );
    assert.deepEqual(
      video.map((row) => [row.idempotency_key, Number(row.video_seconds)]),
      [[`${id}:video:${operationName}`, 6]],
      'charged once, under the key a check would use',
    );
  }

  it('charges once a generation its deadline left running, which a retry re-attached to and a cancel then stopped looking at', async () => {
    const { id, operationName } = await generating();
    const submissions = fakes.google.calls.predictLongRunning;
    const timedOut = await payer.awaitJob<JobView>('vlog', id, (view) => view.status === 'failed', {
      timeoutMs: deadlineMs + 30_000,
    });
    assert.equal(timedOut.error?.code, 'VLOG_DEADLINE_EXCEEDED');

    assert.equal((await payer.retry('vlog', id)).statusCode, 202);
    await payer.awaitJob<JobView>(
      'vlog',
      id,
      (view) => view.attempt === 2 && view.status === 'generating',
    );
    assert.equal((await payer.cancel('vlog', id, { reason: 'still too slow' })).statusCode, 202);
    const cancelled = await payer.awaitJob<JobView>(
      'vlog',
      id,
      (view) => view.status === 'cancelled',
    );
    assert.equal(cancelled.attempt, 2);
    assert.equal(fakes.google.calls.predictLongRunning, submissions, 'the retry re-attached');

    await chargedOnceAsACheckWould(id, operationName);
    const ledger = await h.db
      .selectFrom('cost_ledger')
      .select('cost')
      .where('job_id', '=', id)
      .execute();
    const final = await payer.get(`/api/vlogs/${id}`);
    assert.equal(
      parseMoney(final.json<JobView>().actualCost.amount),
      ledger.reduce((sum, row) => sum + parseMoney(String(row.cost)), 0n),
    );
  });

  it('takes back the charge of a generation its deadline left running once a look sees Veo filtered it', async () => {
    fakes.google.scenario.generationOutcomes = [{ kind: 'filtered', reasons: ['unsafe'] }];
    const { id, operationName } = await generating();
    await payer.awaitJob<JobView>('vlog', id, (view) => view.status === 'failed', {
      timeoutMs: deadlineMs + 30_000,
    });
    await chargedOnceAsACheckWould(id, operationName);
    const charged = String((await videoCharges(id))[0]!.cost);
    assert.ok(parseMoney(charged) > 0n);
    const video = { provider: 'veo', kind: 'video' };
    const voidedBefore = await counted(providerCostVoided, video);

    // Veo ends it now: the reconciler (its lease) or the retry re-attached to it sees it filtered.
    fakes.google.scenario.generationMs = 0;
    try {
      assert.equal((await payer.retry('vlog', id)).statusCode, 202);
      const filtered = await payer.awaitJob<JobView>(
        'vlog',
        id,
        (view) => view.attempt === 2 && view.status === 'failed',
      );
      assert.equal(filtered.error?.code, 'CONTENT_FILTERED');
    } finally {
      fakes.google.scenario.generationMs = 10 * 60_000;
    }

    const [row] = await h.db
      .selectFrom('cost_ledger')
      .select(['idempotency_key', 'cost', 'prices'])
      .where('job_id', '=', id)
      .where('kind', '=', 'video')
      .execute();
    assert.equal(row?.idempotency_key, `${id}:video:${operationName}`);
    assert.equal(parseMoney(String(row.cost)), 0n, 'the charge is taken back');
    assert.match(String((row.prices as { voided?: string }).voided), /filtered/);
    assert.equal(
      (await counted(providerCostVoided, video)) - voidedBefore,
      Number(charged),
      'and counted as taken back',
    );
    const ledger = await h.db
      .selectFrom('cost_ledger')
      .select('cost')
      .where('job_id', '=', id)
      .execute();
    const final = (await payer.get(`/api/vlogs/${id}`)).json<JobView>();
    assert.equal(
      parseMoney(final.actualCost.amount),
      ledger.reduce((sum, row) => sum + parseMoney(String(row.cost)), 0n),
    );
  });

  it('charges the generation of a vlog whose workflow was terminated, when the reconciler ends the job', async () => {
    const { id, operationName } = await generating();
    await h.temporal.client.workflow.getHandle(id).terminate('an operator stopped it');
    const ended = await payer.awaitJob<JobView>('vlog', id, (view) => view.status === 'failed', {
      timeoutMs: 30_000,
    });
    assert.equal(ended.error?.code, 'WORKFLOW_TERMINATED');
    await chargedOnceAsACheckWould(id, operationName);
  });
});
