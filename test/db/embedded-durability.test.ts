// `npm start` runs the embedded database in its own process: a crash of that process is a crash
// of the database. Writes that commit without waiting for the disk elsewhere (asyncCommit) must
// still be on disk here once they are answered, or a SIGKILL rolls back what clients were shown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/db/database.js';
import { countRequestInWindow } from '../../src/db/rate-limit-windows.js';
import { fromSource, projectRoot } from '../support/processes.js';

/** Opens the embedded database in `dataDir`, counts `count` requests, says so and waits. */
const writer = `
import { openDatabase } from './src/db/database.ts';
import { countRequestInWindow } from './src/db/rate-limit-windows.ts';
const [dataDir, count] = process.argv.slice(-2);
const db = await openDatabase({ dataDir });
for (let i = 0; i < Number(count); i += 1) {
  await countRequestInWindow(db, 'crash-test', new Date('2026-01-01T00:00:00Z'));
}
console.log('written');
setInterval(() => undefined, 60_000);
`;

describe('the embedded database after a SIGKILL', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-embedded-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('keeps every write it answered, those committed without waiting for the disk too', async () => {
    const child = spawn(
      process.execPath,
      [...fromSource, '--input-type=module', '-e', writer, dataDir, '3'],
      { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('written')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the writer exited with ${code}`)));
    });
    child.kill('SIGKILL');
    await exited;

    const db = await openDatabase({ dataDir });
    try {
      assert.equal(
        await countRequestInWindow(db, 'crash-test', new Date('2026-01-01T00:00:00Z')),
        4,
      );
    } finally {
      await db.destroy();
    }
  });
});
