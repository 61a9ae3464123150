import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuPerJob, processCpuMs, readCpuUse } from '../../scripts/bench/cpu.js';

describe('bench CPU accounting', () => {
  it("reads a process's CPU time from /proc, growing as it works", () => {
    const before = processCpuMs(process.pid);
    assert.ok(before !== undefined && before >= 0);
    // 100 ms of this process's own CPU time (not of the clock: a busy machine may not give it
    // the CPU all along), read back from /proc in clock ticks of 10 ms.
    const started = process.cpuUsage();
    while (process.cpuUsage(started).user < 100_000);
    const after = processCpuMs(process.pid)!;
    assert.ok(after - before >= 80, `${after} - ${before}`);
    assert.equal(processCpuMs(2 ** 31 - 1), undefined);
    assert.deepEqual([...readCpuUse({ gone: [2 ** 31 - 1] }).get('gone')!], []);
  });

  it('divides what each part used in between by the jobs, counting a process that started in between from zero and none that ended', () => {
    const before = new Map([
      ['API', new Map([[1, 100]])],
      [
        'PostgreSQL',
        new Map([
          [10, 50],
          [11, 70],
        ]),
      ],
      ['idle', new Map([[20, 5]])],
    ]);
    const after = new Map([
      ['API', new Map([[1, 140]])],
      // 11 ended; 12 started in between.
      [
        'PostgreSQL',
        new Map([
          [10, 60],
          [12, 10],
        ]),
      ],
      ['idle', new Map([[20, 5.4]])],
    ]);
    assert.equal(
      cpuPerJob(before, after, 10),
      'CPU per job: API 4.0 ms, PostgreSQL 2.0 ms = 6.0 ms',
    );
    assert.equal(cpuPerJob(before, new Map(), 10), null);
  });
});
