import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

// The lint rules are what keep Node built-ins and I/O out of workflow code; this proves they
// fire for files under src/workflows and only there.
const eslint = new ESLint({ overrideConfig: [tseslint.configs.disableTypeChecked] });

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === '@typescript-eslint/no-restricted-imports')
    .map((message) => message.message);
}

describe('workflow sandbox lint rules', () => {
  it('reject Node built-ins, I/O libraries and value imports of activities in workflows', async () => {
    const messages = await restrictedImports(
      'src/workflows/example.ts',
      [
        "import { readFileSync } from 'node:fs';",
        "import path from 'path';",
        "import pg from 'pg';",
        "import { createActivities } from '../activities/index.js';",
        'export const used = [readFileSync, path, pg, createActivities];',
      ].join('\n'),
    );
    assert.equal(messages.length, 4, messages.join('\n'));
  });

  it('allow type-only imports of activities and the workflow SDK', async () => {
    const messages = await restrictedImports(
      'src/workflows/example.ts',
      [
        "import { sleep } from '@temporalio/workflow';",
        "import type { Activities } from '../activities/index.js';",
        'export type A = Activities;',
        'export const s = sleep;',
      ].join('\n'),
    );
    assert.deepEqual(messages, []);
  });

  it("hold a kind's declaration and workflow to the sandbox rules, not its API part", async () => {
    const code = "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;";
    for (const file of ['src/kinds/example/declaration.ts', 'src/kinds/example/workflow.ts']) {
      assert.equal((await restrictedImports(file, code)).length, 1, file);
    }
    assert.deepEqual(await restrictedImports('src/kinds/example/api.ts', code), []);
  });

  it('leave activities free to do I/O', async () => {
    const messages = await restrictedImports(
      'src/activities/example.ts',
      "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;",
    );
    assert.deepEqual(messages, []);
  });
});

describe('SQL layer lint rule', () => {
  it('rejects the query builder and database drivers outside src/db', async () => {
    const code = [
      "import { sql } from 'kysely';",
      "import pg from 'pg';",
      'export const used = [sql, pg];',
    ].join('\n');
    assert.equal((await restrictedImports('src/api/example.ts', code)).length, 2);
    assert.equal((await restrictedImports('src/activities/example.ts', code)).length, 2);
    assert.deepEqual(await restrictedImports('src/db/example.ts', code), []);
  });
});
