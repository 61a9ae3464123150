import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cancelBodySchema } from '../../src/api/schemas/job-actions.js';
import { vlogFieldsSchema } from '../../src/kinds/vlog/api/schemas.js';
import { optionalWrittenText, writtenText } from '../../src/api/schemas/common.js';

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

describe("a vlog's prompt and style", () => {
  it('are none when left empty or blank to a reader, as a form sends an input left empty', () => {
    for (const blank of ['', '   ', '\u200b', '\u200b\u200e']) {
      const parsed = vlogFieldsSchema.parse({ title: 'Beach day', prompt: blank, style: blank });
      assert.equal(parsed.prompt, undefined, JSON.stringify(blank));
      assert.equal(parsed.style, undefined, JSON.stringify(blank));
    }
  });
});

describe('text written for a job', () => {
  const unshowable = [
    ['a terminal escape', 'Beach \u001b[2J day'],
    ['a backspace', 'Beach\bday'],
    ['a C1 control', 'Beach\u0085day'],
    ['a line separator', 'Beach\u2028day'],
    ['a right-to-left override', 'invoice\u202efdp.exe'],
    ['a left-to-right override', '\u202dBeach day'],
  ] as const;

  it('is refused with control characters, line separators or direction overrides, saying so', () => {
    for (const [what, text] of unshowable) {
      for (const [name, schema] of [
        ['written', writtenText(200)],
        ['optional', optionalWrittenText(200)],
        ['a reason', cancelBodySchema],
      ] as const) {
        const parsed = schema.safeParse(name === 'a reason' ? { reason: text } : text);
        assert.equal(parsed.success, false, `${what} in ${name} text`);
        assert.match(
          parsed.error.issues[0]!.message,
          /^must not contain control characters \(but tabs and line breaks\), line or paragraph separators, or direction overrides/,
        );
      }
    }
  });

  it('keeps tabs, line breaks and the embeddings and isolates right-to-left text is written with', () => {
    for (const text of [
      'Day one:\n\tthe beach\r\n\tthe harbour',
      '\u202bמרתון\u202c 2026',
      'Run the \u2067מרתון\u2069 in May',
      'e\u0301te\u0301',
    ]) {
      assert.equal(writtenText(200).parse(text), text);
      assert.equal(optionalWrittenText(200).parse(text), text);
    }
  });
});
