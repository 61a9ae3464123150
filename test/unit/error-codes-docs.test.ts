// Clients branch on error and failure codes, and read docs/error-codes.md to learn them: a code
// the code base has and the page lacks is undocumented, a code the page lists and the code base
// lacks sends clients after an answer that never comes. Both sets must be the same, and each
// row must say what the code does (its status; whether its step is retried; which kinds can end
// with it, as their declarations say).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { errorStatuses, type ErrorCode } from '../../src/api/errors.js';
import { FailureCode, nonRetryableFailureCodes } from '../../src/jobs/failures.js';
import { jobKindRegistry } from '../../src/kinds/index.js';
import { repositoryRoot } from '../support/docs.js';

/** The table rows of one `## ` section: the first cell's code, and the cells after it. */
async function codeRows(heading: string): Promise<Map<string, string[]>> {
  const page = await readFile(path.join(repositoryRoot, 'docs/error-codes.md'), 'utf8');
  const section = new RegExp(`^## ${heading}\\n([\\s\\S]*?)(?=^## |(?![\\s\\S]))`, 'm').exec(
    page,
  )?.[1];
  assert.ok(section, `docs/error-codes.md has a "## ${heading}" section`);
  const rows = new Map<string, string[]>();
  for (const [, code, rest] of section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` +\|(.*)\|$/gm)) {
    assert.ok(!rows.has(code!), `${code} is listed once under "${heading}"`);
    rows.set(
      code!,
      rest!.split('|').map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** The names in `a` that `b` lacks, sorted. */
const missing = (a: Iterable<string>, b: Set<string> | Map<string, unknown>) =>
  [...a].filter((name) => !b.has(name)).sort();

describe('error codes documentation', () => {
  it('lists every API error code of src/api/errors.ts with its status, and no other', async () => {
    const documented = await codeRows('API error codes');
    const codes = new Set(Object.keys(errorStatuses));
    assert.deepEqual(missing(codes, documented), [], 'codes missing from docs/error-codes.md');
    assert.deepEqual(missing(documented.keys(), codes), [], 'codes src/api/errors.ts lacks');
    const wrongStatus = [...documented]
      .map(([code, [status]]) => [code, status] as const)
      .filter(([code, status]) => String(errorStatuses[code as ErrorCode]) !== status)
      .map(
        ([code, status]) => `${code}: documented ${status}, is ${errorStatuses[code as ErrorCode]}`,
      );
    assert.deepEqual(wrongStatus, []);
  });

  it('lists every job failure code of src/jobs/failures.ts, retried as it is, and no other', async () => {
    const documented = await codeRows('Job failure codes');
    const codes = new Set<string>(Object.values(FailureCode));
    assert.deepEqual(missing(codes, documented), [], 'codes missing from docs/error-codes.md');
    assert.deepEqual(missing(documented.keys(), codes), [], 'codes src/jobs/failures.ts lacks');
    // `no`: the step fails at once; `yes`: retried; `job`: set by the workflow, no step.
    const final = new Set<string>(nonRetryableFailureCodes);
    const wrongRetry = [...documented]
      .filter(([code, [retried]]) => (retried === 'no') !== final.has(code))
      .map(([code, [retried]]) => `${code}: documented "${retried}"`);
    assert.deepEqual(wrongRetry, [], 'only the non-retryable codes are documented "no"');
    assert.deepEqual(
      [...documented.values()].filter(([retried]) => !['yes', 'no', 'job'].includes(retried!)),
      [],
    );
  });

  it('names for each failure code the kinds whose declarations list it, and no other', async () => {
    const documented = await codeRows('Job failure codes');
    const wrongKinds = Object.values(FailureCode).flatMap((code) => {
      const declared = jobKindRegistry
        .filter(({ declaration }) => (declaration.failureCodes as readonly string[]).includes(code))
        .map(({ declaration }) => declaration.kind);
      const named = documented.get(code)?.[1] ?? '';
      const listed = named === '—' ? [] : named.split(', ');
      return listed.join(', ') === declared.join(', ')
        ? []
        : [`${code}: documented "${named}", declared by ${declared.join(', ') || 'no kind'}`];
    });
    assert.deepEqual(wrongKinds, [], 'the Kinds column of docs/error-codes.md');
  });
});
