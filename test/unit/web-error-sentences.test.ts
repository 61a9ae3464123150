// The web page shows every error as a sentence a person understands: each code the
// documentation lists (docs/error-codes.md, itself checked against the code base) needs one.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { errorSentences, sentenceFor } from '../../src/web/client/error-sentences.js';
import { repositoryRoot } from '../support/docs.js';

async function documentedCodes(): Promise<string[]> {
  const page = await readFile(path.join(repositoryRoot, 'docs/error-codes.md'), 'utf8');
  return [...page.matchAll(/^\| `([A-Z][A-Z0-9_]*)` +\|/gm)].map(([, code]) => code!);
}

describe("the web page's error sentences", () => {
  it('has a sentence for every documented API error and job failure code', async () => {
    const codes = await documentedCodes();
    assert.ok(codes.length > 60, `read the two tables (${codes.length} codes)`);
    assert.deepEqual(
      codes.filter((code) => !(code in errorSentences)),
      [],
      'codes of docs/error-codes.md without a sentence in src/web/client/error-sentences.ts',
    );
  });

  it('words each as a sentence, not as the code', () => {
    for (const [code, sentence] of Object.entries(errorSentences)) {
      assert.match(sentence, /^[A-Z“].*[.!]$/, `${code}: a sentence`);
      assert.ok(!sentence.includes(code), `${code}: not the code itself`);
    }
    assert.equal(sentenceFor('NOT_FOUND'), errorSentences.NOT_FOUND);
    assert.match(sentenceFor('A_CODE_OF_A_NEWER_SERVICE'), /^Something went wrong/);
  });
});
