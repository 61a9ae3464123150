import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cancelBodySchema } from '../../src/api/schemas/job-actions.js';

describe("a cancel's reason", () => {
  it('is none when a reader would see nothing in it, so no message quotes invisible text', () => {
    for (const reason of ['', '   ', '\u200b\u200b', '\u202e\u0301', '\u2066\u00a0']) {
      assert.deepEqual(cancelBodySchema.parse({ reason }), { reason: undefined }, reason);
    }
  });

  it('is kept, trimmed, when it has something to read', () => {
    for (const [reason, kept] of [
      [' done testing ', 'done testing'],
      ['\u202bמרתון\u202c', '\u202bמרתון\u202c'],
      ['\u{1F3C3}', '\u{1F3C3}'],
    ] as const) {
      assert.deepEqual(cancelBodySchema.parse({ reason }), { reason: kept }, reason);
    }
  });
});
