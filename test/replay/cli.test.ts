// `npm run replay` is what an operator runs before a deploy: it must replay what it is given,
// and say plainly, with a non-zero exit, when there is nothing it can replay.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { testEnv } from '../support/env.js';
import { projectRoot, runNpmScript } from '../support/processes.js';

const histories = path.join(projectRoot, 'test/histories');
const temporal = {
  TEMPORAL_ADDRESS: testEnv.temporalAddress,
  TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
};

describe('npm run replay', { timeout: 180_000 }, () => {
  it('replays a directory of recorded histories and exits 0', async () => {
    const recorded = readdirSync(histories, { recursive: true, encoding: 'utf8' }).filter((entry) =>
      entry.endsWith('.json'),
    ).length;
    const { code, output } = await runNpmScript('replay', [histories], temporal);
    assert.match(output, new RegExp(`^${recorded} histories replayed, 0 failed$`, 'm'), output);
    assert.equal(code, 0, output);
  });

  it('exits non-zero with a plain message when there is nothing it can replay', async () => {
    const cases = [
      { args: [], code: 2, message: /^usage: npm run replay -- /m },
      ...['0', '0x10', '1e1', ''].map((limit) => ({
        args: ['--limit', limit, histories],
        code: 2,
        message: /^usage: npm run replay -- /m,
      })),
      {
        args: ['missing-history.json'],
        code: 1,
        message: /No such history file: missing-history\.json/,
      },
      {
        args: ['vlog-never-started'],
        code: 1,
        message: new RegExp(
          `No workflow with id vlog-never-started in namespace ${testEnv.temporalNamespace}`,
        ),
      },
    ];
    for (const testCase of cases) {
      const { code, output } = await runNpmScript('replay', testCase.args, temporal);
      assert.match(output, testCase.message, output);
      assert.equal(code, testCase.code, `${testCase.args.join(' ')}: ${output}`);
    }
  });
});
