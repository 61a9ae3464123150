import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { writtenText } from '../../src/api/schemas/common.js';
import { startHarness, type Harness, type TestApi } from '../support/harness.js';
import { assertOnlyControlJobOf } from '../support/jobs.js';

interface ErrorBody {
  error: { code: string; message: string; details?: { issues?: { field: string }[] } };
}

// No worker polls this API's task queue: every request here must be refused before a job exists.
describe('AI job requests that are refused', () => {
  let h: Harness;
  let unconfigured: TestApi;
  const user = `ai-refused-${randomUUID().slice(0, 8)}`;

  before(async () => {
    h = await startHarness({ env: { GEMINI_API_KEY: 'k' } });
    unconfigured = await h.startApi({ env: { AI_PROVIDER: 'none' } });
  });
  after(() => h.stop());

  async function refused(payload: string, contentType = 'application/json', on = h.api) {
    const response = await on
      .user(user)
      .post('/api/ai/jobs', payload, { 'content-type': contentType });
    assert.notEqual(response.statusCode, 202, response.body);
    return { status: response.statusCode, error: response.json<ErrorBody>().error };
  }
  const json = (body: unknown) => JSON.stringify(body);
  const fields = (error: ErrorBody['error']) =>
    error.details?.issues?.map((issue) => issue.field).sort();

  it('answers 400 naming `type` for an unknown type', async () => {
    const { status, error } = await refused(
      json({ type: 'POEM_GENERATION', input: { goal: 'x' } }),
    );
    assert.equal(status, 400);
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.match(
      error.message,
      /body\.type: must be one of SUBGOAL_GENERATION, ACTION_GENERATION, TASK_GENERATION/,
    );
  });

  it('says a missing type is required, and a body that is no object so', async () => {
    for (const [body, message] of [
      [json({ input: { goal: 'x' } }), 'body.type: required'],
      [json([]), 'body: expected an object'],
    ] as const) {
      const { status, error } = await refused(body);
      assert.equal(status, 400, body);
      assert.equal(error.message, message, body);
    }
  });

  it("answers 400 naming each field when the input does not match the type's schema", async () => {
    const { status, error } = await refused(
      json({ type: 'TASK_GENERATION', input: { goal: 'x', subGoal: '', maxItems: 50 } }),
    );
    assert.equal(status, 400);
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.deepEqual(fields(error), [
      'body.input.action',
      'body.input.maxItems',
      'body.input.subGoal',
    ]);
  });

  it('answers 400 naming the field for oversized text', async () => {
    const { status, error } = await refused(
      json({ type: 'SUBGOAL_GENERATION', input: { goal: 'x'.repeat(501) } }),
    );
    assert.equal(status, 400);
    assert.deepEqual(fields(error), ['body.input.goal']);
    assert.match(error.message, /body\.input\.goal: .*500/);
  });

  it('answers 400 for unknown properties, at the top and in the input', async () => {
    const top = await refused(
      json({ type: 'SUBGOAL_GENERATION', input: { goal: 'x' }, priority: 1 }),
    );
    assert.equal(top.status, 400);
    assert.deepEqual(fields(top.error), ['body.priority']);
    assert.match(top.error.message, /^body\.priority: unknown field/);
    const inner = await refused(
      json({ type: 'SUBGOAL_GENERATION', input: { goal: 'x', subGoal: 'y' } }),
    );
    assert.equal(inner.status, 400);
    assert.deepEqual(fields(inner.error), ['body.input.subGoal']);
    assert.match(inner.error.message, /^body\.input\.subGoal: unknown field/);
  });

  it('answers 400 INVALID_JSON for a body that is not JSON, and 415 for another content type', async () => {
    const malformed = await refused('{"type": "SUBGOAL_GENERATION", ');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.error.code, 'INVALID_JSON');
    const form = await refused('type=SUBGOAL_GENERATION', 'application/x-www-form-urlencoded');
    assert.equal(form.status, 415);
    assert.equal(form.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 413 for a body over the limit', async () => {
    const { status, error } = await refused(
      json({ type: 'SUBGOAL_GENERATION', input: { goal: 'x', context: 'y'.repeat(70 * 1024) } }),
    );
    assert.equal(status, 413);
    assert.equal(error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('answers 503 AI_PROVIDER_NOT_CONFIGURED where AI jobs are turned off', async () => {
    const { status, error } = await refused(
      json({ type: 'SUBGOAL_GENERATION', input: { goal: 'x' } }),
      'application/json',
      unconfigured,
    );
    assert.equal(status, 503);
    assert.equal(error.code, 'AI_PROVIDER_NOT_CONFIGURED');
    assert.match(error.message, /AI_PROVIDER=none/);
  });

  // PostgreSQL's jsonb refuses both; they used to start a workflow, fail to record the job
  // and answer 503 DATABASE_UNAVAILABLE.
  it('answers 400 naming the field for text the database cannot store', async () => {
    for (const [payload, field] of [
      ['{"type":"SUBGOAL_GENERATION","input":{"goal":"sail\\u0000"}}', 'body.input.goal'],
      [
        '{"type":"SUBGOAL_GENERATION","input":{"goal":"sail","context":"\\udc00 alone"}}',
        'body.input.context',
      ],
    ] as const) {
      const { status, error } = await refused(payload);
      assert.equal(status, 400, payload);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(fields(error), [field]);
      assert.match(error.message, /must not contain NUL characters or unpaired surrogates/);
    }
  });

  it('answers 400 naming the field for text with nothing to read, and takes text that has some', async () => {
    for (const [input, field] of [
      [{ goal: '\u200b\u200b' }, 'body.input.goal'],
      [{ goal: 'sail', context: '\u202e\u2066\u00a0' }, 'body.input.context'],
      [{ goal: '\u0301\u0301' }, 'body.input.goal'],
    ] as const) {
      const { status, error } = await refused(json({ type: 'SUBGOAL_GENERATION', input }));
      assert.equal(status, 400, JSON.stringify(input));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(fields(error), [field]);
      assert.match(error.message, /must have something to read/);
    }
    // Right-to-left text, combining marks on a letter and emoji alone are all something to read.
    for (const goal of ['\u202bמרתון\u202c', 'e\u0301te\u0301', '\u{1F3C3}']) {
      assert.ok(writtenText(500).safeParse(goal).success, goal);
    }
  });

  it('answers 400 naming the field for text with control characters or direction overrides', async () => {
    for (const [input, field] of [
      [{ goal: 'sail \u001b[2J' }, 'body.input.goal'],
      [{ goal: 'sail', context: 'around \u202ethe cape' }, 'body.input.context'],
    ] as const) {
      const { status, error } = await refused(json({ type: 'SUBGOAL_GENERATION', input }));
      assert.equal(status, 400, JSON.stringify(input));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(fields(error), [field]);
      assert.match(error.message, /must not contain control characters/);
    }
  });

  it('leaves no job row and no workflow behind', async () => {
    await assertOnlyControlJobOf(h, user, 'ai');
  });
});
