import assert from 'node:assert/strict';
import { it } from 'node:test';
import { memoryLimitBytes } from '../../src/metrics/metrics.js';

it("reports a container's memory limit, and the machine's where none is set", () => {
  const gib = 2 ** 30;
  assert.equal(memoryLimitBytes(gib, 24 * gib), gib);
  // No limit: 0, or the largest number cgroup v2's "max" reads as on some node versions.
  assert.equal(memoryLimitBytes(0, 24 * gib), 24 * gib);
  assert.equal(memoryLimitBytes(2 ** 64, 24 * gib), 24 * gib);
  assert.ok(memoryLimitBytes() > 0);
});
