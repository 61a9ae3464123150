import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { startMoto } from '../support/emulators.js';

// moto's server is a Python script naming its venv's interpreter: with the checkout moved (or
// a worktree's symlinked .local/ removed), it could not start, and the test file waiting for it
// hung for good instead of failing.
it('an emulator that cannot start fails its test file with the reason, at once', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-emulator-'));
  const before = process.env['TEST_MOTO_PATH'];
  try {
    const script = path.join(dir, 'moto_server');
    await writeFile(script, `#!${path.join(dir, 'gone', 'python3')}\n`, { mode: 0o755 });
    process.env['TEST_MOTO_PATH'] = script;
    await assert.rejects(startMoto(), /moto_server could not start: spawn .* ENOENT/);
  } finally {
    process.env['TEST_MOTO_PATH'] = before;
    await rm(dir, { recursive: true, force: true });
  }
});
