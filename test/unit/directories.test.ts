import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeDirectory } from '../../src/directories.js';

describe('makeDirectory', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-directories-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('makes every missing level, and again changes nothing', async () => {
    const nested = path.join(dir, 'a', 'b', 'c');
    await makeDirectory(nested);
    assert.ok((await stat(nested)).isDirectory());
    await makeDirectory(nested);
    await Promise.all([1, 2, 3].map(() => makeDirectory(path.join(dir, 'raced', 'x'))));
    assert.ok((await stat(path.join(dir, 'raced', 'x'))).isDirectory());
  });

  it('refuses a file in the way', async () => {
    const file = path.join(dir, 'file');
    await writeFile(file, '');
    await assert.rejects(makeDirectory(file), { code: 'EEXIST' });
    await assert.rejects(makeDirectory(path.join(file, 'below')), { code: 'ENOTDIR' });
  });

  it('ends with the refusal of a folder whose parent takes no new ones (Node retried it for ever)', async () => {
    await assert.rejects(makeDirectory('/proc/vlogflow/data'), {
      code: 'ENOENT',
      path: '/proc/vlogflow',
    });
  });
});
