// The web page checks the ids its address names against the shape of the ids the service makes
// (src/jobs/job-id-shape.ts): every id made must have it, or the page would call a real job
// not found.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idempotentJobId, newJobId } from '../../src/jobs/ids.js';
import { isJobIdShaped } from '../../src/jobs/job-id-shape.js';
import { jobKindRegistry } from '../../src/kinds/index.js';

describe('job ids', () => {
  it('has every id the service makes, of every kind, in the shape the page checks', () => {
    for (const {
      declaration: { kind },
    } of jobKindRegistry) {
      for (const id of [newJobId(kind), idempotentJobId(kind, 'user \\n ü', 'key-1')]) {
        assert.ok(isJobIdShaped(id), id);
      }
    }
  });

  it('leaves out what a path would read as another route or a cut-short id', () => {
    for (const id of [
      '.',
      '..',
      'upload-limits',
      'vlog-',
      'vlog-%E0%A4%A',
      `${newJobId('vlog')}/cancel`,
      ` ${newJobId('ai')}`,
    ]) {
      assert.equal(isJobIdShaped(id), false, id);
    }
  });
});
