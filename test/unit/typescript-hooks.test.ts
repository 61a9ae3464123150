import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fromSource, projectRoot } from '../support/processes.js';

/** Runs `entry` from source as the npm scripts do; its exit code and what it printed. */
function run(entry: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [...fromSource, entry],
      { cwd: projectRoot, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe('running TypeScript from source (src/typescript-hooks.ts)', () => {
  // A fixed folder of this tree (not a temporary one): the compiled output is kept per file, so
  // a new path on every run would leave a cache entry behind each time.
  const dir = path.join(projectRoot, '.local/test-typescript-hooks');
  const entry = path.join(dir, 'entry.ts');
  const answer = path.join(dir, 'answer.ts');

  it('resolves a .js specifier to its .ts file, runs what TypeScript alone has, and runs a changed file as it is now', async () => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await writeFile(
      entry,
      [
        "import { answer } from './answer.js';",
        // A parameter property and an enum: syntax Node's own type stripping refuses.
        'class Holder { constructor(readonly value: number) {} }',
        'enum Colour { Red = 1 }',
        'console.log(new Holder(answer()).value + Colour.Red);',
      ].join('\n'),
    );
    for (const value of [41, 99]) {
      await writeFile(answer, `export function answer(): number { return ${value}; }\n`);
      const { code, stdout, stderr } = await run(entry);
      assert.equal(code, 0, stderr);
      assert.equal(stdout.trim(), String(value + 1), 'the file as it is now, not a kept copy');
    }
  });

  it("names the TypeScript's own line and column in a stack trace", async () => {
    await mkdir(dir, { recursive: true });
    const thrower = path.join(dir, 'thrower.ts');
    await writeFile(
      thrower,
      [
        'interface Shape {',
        '  sides: number;',
        '}',
        'const shape: Shape = { sides: 3 };',
        'if (shape.sides > 2) throw new Error(`too many sides: ${shape.sides}`);',
      ].join('\n'),
    );
    const { code, stderr } = await run(thrower);
    assert.equal(code, 1);
    assert.match(stderr, /Error: too many sides: 3/);
    assert.ok(stderr.includes(`${thrower}:5:28`), stderr);
  });
});
