// The configuration is described three times: the schema the service parses,
// docs/configuration.md and .env.example. Names that drift apart send operators after
// variables that do nothing, so every name in one must be in the others, and no page of the
// documentation may name a variable that does not exist.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { errorStatuses } from '../../src/api/errors.js';
import { configSchema } from '../../src/config.js';
import { aiGenerationTypes } from '../../src/kinds/ai/declaration.js';
import { FailureCode } from '../../src/jobs/failures.js';
import { readDocPages, repositoryRoot as root } from '../support/docs.js';

const read = (file: string) => readFile(path.join(root, file), 'utf8');

/**
 * Variables of the tools around the service, not of the service: the test runner's (TEST_*),
 * the benchmarks' (BENCH_*), the fuzzer's and fault runs' reports, and the Temporal installer's.
 */
const toolVariable = /^(TEST|BENCH|FUZZ|FAULT_REPORT)_|^TEMPORAL_(CLI|TEST_SERVER)_PATH$/;

/** Error and failure codes and job types: upper-case names the docs use that are not variables. */
const codes = new Set<string>([
  ...Object.keys(errorStatuses),
  ...Object.values(FailureCode),
  ...aiGenerationTypes,
]);

/** Upper-case names with an underscore that are not codes: the variables a text names. */
const variablesIn = (text: string) =>
  new Set(
    (text.match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g) ?? []).filter((name) => !codes.has(name)),
  );

/** Source of the scripts, installers and tests that read the tool variables. */
async function toolSources(): Promise<string> {
  const texts: string[] = [];
  for (const folder of ['scripts', 'temporal', 'test']) {
    const entries = await readdir(path.join(root, folder), { recursive: true });
    for (const entry of entries.filter((name) => /\.(ts|sh)$/.test(name)).sort()) {
      if (entry.endsWith('config-docs.test.ts')) continue;
      texts.push(await read(path.join(folder, entry)));
    }
  }
  return texts.join('\n');
}

/**
 * Variables a package.json script sets for the runtime it starts (`MALLOC_ARENA_MAX=2 node …`):
 * the C library's or node's, not the service's.
 */
async function scriptVariables(): Promise<Set<string>> {
  const { scripts } = JSON.parse(await read('package.json')) as {
    scripts: Record<string, string>;
  };
  return new Set(
    Object.values(scripts).flatMap((command) =>
      [...command.matchAll(/(?:^|\s)([A-Z][A-Z0-9_]*)=\S*\s/g)].map((match) => match[1]!),
    ),
  );
}

/** Variables of the system the service reads as every program does, not settings of its own. */
const systemVariables = new Set(['PATH']);

/**
 * Variables the service's own code reads from the environment other than through the schema:
 * `process.env['NAME']` in its TypeScript, `${NAME:-…}` in the installers it runs at start.
 */
async function directlyReadVariables(): Promise<{ file: string; name: string }[]> {
  const reads: { file: string; name: string }[] = [];
  for (const folder of ['src', 'temporal', 'embedded-model']) {
    const entries = await readdir(path.join(root, folder), { recursive: true });
    for (const entry of entries.filter((name) => /\.(ts|sh|py)$/.test(name)).sort()) {
      const file = path.join(folder, entry);
      const text = await read(file);
      const names = [
        ...text.matchAll(/process\.env(?:\[['"]([A-Z][A-Z0-9_]*)['"]\]|\.([A-Z][A-Z0-9_]*))/g),
        ...text.matchAll(/\$\{([A-Z][A-Z0-9_]*):?-/g),
        ...text.matchAll(/os\.environ(?:\.get\(|\[)['"]([A-Z][A-Z0-9_]*)['"]/g),
      ].map((match) => match[1] ?? match[2]!);
      for (const name of new Set(names)) reads.push({ file, name });
    }
  }
  return reads;
}

describe('configuration documentation', () => {
  const schemaVariables = Object.keys(configSchema.shape).sort();

  it('documents every schema variable in docs/configuration.md and .env.example, and names no other', async () => {
    const inConfigurationPage = variablesIn(await read('docs/configuration.md'));
    const inEnvExample = new Set(
      [...(await read('.env.example')).matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map(
        (match) => match[1]!,
      ),
    );
    for (const [where, names] of [
      ['docs/configuration.md', inConfigurationPage],
      ['.env.example', inEnvExample],
    ] as const) {
      assert.deepEqual(
        schemaVariables.filter((name) => !names.has(name)),
        [],
        `schema variables missing from ${where}`,
      );
      assert.deepEqual(
        [...names].filter((name) => !configSchema.shape[name as never] && !toolVariable.test(name)),
        [],
        `variables in ${where} that the schema does not have`,
      );
    }
  });

  // The schema is the list the other checks hold the pages to: a variable read around it would
  // change what the service does with no page saying so.
  it('reads no variable around the schema that docs/configuration.md does not describe', async () => {
    const inConfigurationPage = variablesIn(await read('docs/configuration.md'));
    const undescribed = (await directlyReadVariables())
      .filter(
        ({ name }) =>
          !systemVariables.has(name) &&
          !configSchema.shape[name as never] &&
          !inConfigurationPage.has(name),
      )
      .map(({ file, name }) => `${file}: ${name}`);
    assert.deepEqual(undescribed, []);
    // The scan sees what it looks for: the installer's own variables are read this way.
    assert.ok(
      (await directlyReadVariables()).some(({ name }) => name === 'TEMPORAL_CLI_PATH'),
      'temporal/install.sh reads TEMPORAL_CLI_PATH',
    );
  });

  it('names anywhere in README and docs/ only variables that exist', async () => {
    const tools = await toolSources();
    const runtime = await scriptVariables();
    const unknown = (await readDocPages()).flatMap(({ file, text }) =>
      [...variablesIn(text)]
        .filter(
          (name) =>
            !configSchema.shape[name as never] &&
            !(toolVariable.test(name) && tools.includes(name)) &&
            !runtime.has(name),
        )
        .map((name) => `${file}: ${name}`),
    );
    assert.deepEqual(unknown, []);
  });
});
