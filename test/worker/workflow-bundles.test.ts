import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sourceHash, sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';

describe('the workflow bundle a worker from source loads', () => {
  let tree: string;
  before(async () => {
    tree = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bundle-tree-'));
    await mkdir(path.join(tree, 'src/workflows'), { recursive: true });
    await writeFile(path.join(tree, 'src/workflows/index.ts'), 'export const a = 1;\n');
    await writeFile(path.join(tree, 'src/config.ts'), 'export const b = 2;\n');
    await writeFile(path.join(tree, 'package-lock.json'), '{}\n');
  });
  after(() => rm(tree, { recursive: true, force: true }));

  it('is kept under a hash that any change to the sources or the lockfile moves', async () => {
    const first = await sourceHash(false, tree);
    assert.equal(await sourceHash(false, tree), first, 'the same tree, the same hash');
    assert.notEqual(await sourceHash(true, tree), first, 'the traced bundle is another');

    const changes: [string, string][] = [
      ['src/workflows/index.ts', 'export const a = 3;\n'],
      ['src/config.ts', 'export const b = 2; // outside src/workflows, imported by it\n'],
      ['src/kinds/new-kind.ts', 'export const c = 4;\n'],
      ['package-lock.json', '{ "lockfileVersion": 3 }\n'],
    ];
    const seen = new Set([first]);
    for (const [name, content] of changes) {
      await mkdir(path.dirname(path.join(tree, name)), { recursive: true });
      await writeFile(path.join(tree, name), content);
      const hash = await sourceHash(false, tree);
      assert.ok(!seen.has(hash), `${name} changed: a new hash`);
      seen.add(hash);
    }
  });

  it('is made from this tree once, then loaded from where it was kept', async () => {
    const made = await sourceWorkflowBundle(false);
    assert.ok('codePath' in made, 'kept in a file');
    const { mtimeMs } = await stat(made.codePath);
    assert.match(await readFile(made.codePath, 'utf8'), /probeJob/);

    const again = await sourceWorkflowBundle(false);
    assert.deepEqual(again, made);
    assert.equal((await stat(made.codePath)).mtimeMs, mtimeMs, 'not made again');
    assert.match(path.basename(made.codePath), new RegExp(`^${await sourceHash(false)}\\.js$`));
  });
});
