// Every bench scenario in its --smoke sizes, so none rots: each must run to the end and print
// the figures it exists for. Timings are not judged here (docs/benchmarks.md records them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runNpmScript } from '../support/processes.js';

/** Each scenario with a figure it must print (`figure <name>: … = <ratio>`). */
const expected: Record<string, string[]> = {
  orchestration: [
    'orchestration probe separate idle p50',
    'orchestration probe separate loaded p50',
    'orchestration probe separate both-loaded p50',
    'orchestration ai separate idle p50',
    'orchestration probe all-in-one idle p50',
    'orchestration ai all-in-one loaded p50',
  ],
  throughput: ['throughput round 1'],
  polling: ['polling reads/s'],
  peers: [
    'peers vlogflow separate p50',
    'peers vlogflow all-in-one p50',
    'peers pg-boss chain p50',
    'peers BullMQ chain jobs/s',
  ],
  recovery: ['recovery'],
  scale: [
    'scale fresh ai job',
    'scale fresh vlog',
    'scale worker RSS',
    'scale veo requests per second',
    'scale veo requests per minute',
  ],
  upload: ['upload small p50', 'upload large memory'],
  render: ['render 720p 16:9'],
  analysis: ['analysis long ÷ short'],
  photos: ['photos sideways jpeg', 'photos avif', 'photos upright jpeg'],
  'render-load': ['render-load repeat 1 p99'],
};

/**
 * The scenarios in two halves, run at once: most of a scenario's time in its smoke sizes is its
 * stacks starting and its jobs waiting, so the halves share the machine well.
 */
const halves = [
  ['scale', 'upload', 'render', 'analysis', 'photos'],
  ['orchestration', 'render-load', 'recovery', 'peers', 'polling', 'throughput'],
];

test(
  'every bench scenario runs in its smoke sizes and prints its figures',
  { timeout: 900_000 },
  async () => {
    assert.deepEqual(halves.flat().sort(), Object.keys(expected).sort(), 'every scenario, once');
    const runs = await Promise.all(
      halves.map((scenarios) => runNpmScript('bench', [scenarios.join(','), '--smoke'])),
    );
    for (const [index, { code, output }] of runs.entries()) {
      assert.equal(code, 0, output);
      for (const scenario of halves[index]!) {
        assert.match(
          output,
          new RegExp(`== ${scenario} done in`),
          `${scenario} did not finish:\n${output}`,
        );
        for (const figure of expected[scenario]!) {
          const line = output
            .split('\n')
            .find((candidate) => candidate.startsWith(`figure ${figure}:`));
          assert.ok(line, `no "${figure}" figure:\n${output}`);
          assert.match(line, /= \d+\.\d\d(\s|$)/, `"${figure}" has no ratio: ${line}`);
        }
      }
    }
    // Where the throughput's CPU went, process by process (read from /proc: CI runs Linux).
    const throughput = runs[halves.findIndex((half) => half.includes('throughput'))]!.output;
    assert.match(
      throughput,
      /vlogflow probe: CPU per job: API \d+\.\d ms, worker \d+\.\d ms, .*Temporal/,
    );
    assert.match(throughput, /bare workflow: CPU per job: .*bare worker \d+\.\d ms, Temporal/);
  },
);

test('refuses a size that is not a whole number above 0, naming it, before it starts anything', async () => {
  const sizes = ['--jobs=abc', '--jobs=0x10', '--jobs=0', '--jobs='];
  const runs = await Promise.all(sizes.map((size) => runNpmScript('bench', ['peers', size])));
  for (const [index, { code, output }] of runs.entries()) {
    assert.equal(code, 2, `${sizes[index]}: ${output}`);
    assert.match(output, /--jobs: expected a whole number above 0 in decimal digits/);
    assert.doesNotMatch(output, /^== peers/m, `${sizes[index]}: started the scenario`);
  }
});
