// The web page checks the ids its address names against the shape of the ids the service makes
// (src/jobs/job-id-shape.ts): every id made must have it, or the page would call a real job
// not found.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idempotentJobId, newJobId } from '../../src/jobs/ids.js';
import { isJobIdOf } from '../../src/jobs/job-id-shape.js';
import { jobKindRegistry } from '../../src/kinds/index.js';

describe('job ids', () => {
  it('has every id the service makes, of every kind, start with its kind', () => {
    for (const {
      declaration: { kind },
    } of jobKindRegistry) {
      for (const id of [newJobId(kind), idempotentJobId(kind, 'user \\n ü', 'key-1')]) {
        assert.ok(isJobIdOf(kind, id), id);
      }
    }
  });

  it('leaves out what a path would read as another route, and ids of another kind', () => {
    for (const id of ['.', '..', 'upload-limits', 'vlog-', 'vlogs', `${newJobId('ai')}`]) {
      assert.equal(isJobIdOf('vlog', id), false, id);
    }
  });
});
