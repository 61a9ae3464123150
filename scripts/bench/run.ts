// `npm run bench -- <scenario>[,<scenario>…] [--smoke] [--<size>=<n>…]`: runs benchmark
// scenarios and prints each figure as a ratio against a baseline measured in the same run
// (docs/benchmarks.md). `npm run bench -- list` names them; `all` runs every one. Scenarios
// named together share one service stack.
import os from 'node:os';
import { numberFromDecimalText } from '../../src/decimal-text.js';
import type { Scenario, ScenarioContext } from './scenario.js';
import { BenchStack, type Topology } from './stack.js';
import { analysisScenario } from './scenarios/analysis.js';
import { orchestrationScenario } from './scenarios/orchestration.js';
import { peersScenario } from './scenarios/peers.js';
import { photosScenario } from './scenarios/photos.js';
import { pollingScenario } from './scenarios/polling.js';
import { recoveryScenario } from './scenarios/recovery.js';
import { renderLoadScenario } from './scenarios/render-load.js';
import { renderScenario } from './scenarios/render.js';
import { scaleScenario } from './scenarios/scale.js';
import { throughputScenario } from './scenarios/throughput.js';
import { uploadScenario } from './scenarios/upload.js';

export const scenarios: Scenario[] = [
  orchestrationScenario,
  throughputScenario,
  pollingScenario,
  peersScenario,
  recoveryScenario,
  scaleScenario,
  uploadScenario,
  renderScenario,
  analysisScenario,
  photosScenario,
  renderLoadScenario,
];

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const sizeArgs = args
  .filter((arg) => /^--[\w-]+=/.test(arg))
  .map((arg) => {
    const [name, value] = arg.slice(2).split('=', 2) as [string, string];
    return [name, numberFromDecimalText(value)] as const;
  });
const sizes = new Map(
  sizeArgs.filter((size): size is [string, number] => typeof size[1] === 'number' && size[1] > 0),
);
const badSize = sizeArgs.find(([name]) => !sizes.has(name));
const names = args.filter((arg) => !arg.startsWith('--')).flatMap((arg) => arg.split(','));
const unknownFlag = args.find(
  (arg) => arg.startsWith('--') && arg !== '--smoke' && !arg.includes('='),
);
const chosen = names.includes('all')
  ? scenarios
  : names.map((name) => scenarios.find((scenario) => scenario.name === name));

if (
  names.length === 0 ||
  names.includes('list') ||
  unknownFlag ||
  badSize ||
  chosen.some((scenario) => !scenario)
) {
  const problem = unknownFlag
    ? `unknown option ${unknownFlag}`
    : badSize
      ? `--${badSize[0]}: expected a whole number above 0 in decimal digits`
      : names.length > 0 && !names.includes('list')
        ? `unknown scenario in ${names.join(',')}`
        : '';
  console.log(
    `${problem ? `${problem}\n\n` : ''}usage: npm run bench -- <scenario>[,<scenario>…]|all [--smoke] [--<size>=<n>…]\n\n` +
      scenarios.map((scenario) => `  ${scenario.name.padEnd(14)} ${scenario.summary}`).join('\n'),
  );
  process.exit(problem ? 2 : 0);
}

const stacks = new Map<Topology, Promise<BenchStack>>();
const context: ScenarioContext = {
  smoke,
  size: (name, normal, smokeSize) => sizes.get(name) ?? (smoke ? smokeSize : normal),
  stack: (topology = 'separate') => {
    let stack = stacks.get(topology);
    if (!stack) {
      stack = BenchStack.start({
        // Under --smoke an AI call lost with its worker is noticed in 5 s, not the default 10 s,
        // so the recovery scenario fits in seconds.
        env: smoke ? { AI_JOB_HEARTBEAT_TIMEOUT_MS: '5000' } : {},
        topology,
      }).then((stack) => {
        started.add(stack);
        return stack;
      });
      stacks.set(topology, stack);
    }
    return stack;
  },
  ownStack: async (options) => {
    const own = await BenchStack.start(options);
    started.add(own);
    return own;
  },
};

console.log(
  `bench ${new Date().toISOString()}: ${os.availableParallelism()} cores, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, load ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}` +
    `${smoke ? ', smoke sizes' : ''}`,
);
// Ctrl-C (or a test's timeout) still stops the processes the stack started, which run in
// process groups of their own.
const started = new Set<BenchStack>();
process.once('exit', () => started.forEach((stack) => stack.killProcesses()));
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    console.error(`${signal}: stopping the bench stack`);
    process.exit(1);
  });
let failed = false;
try {
  for (const scenario of chosen as Scenario[]) {
    const started = performance.now();
    console.log(`\n== ${scenario.name}: ${scenario.summary}`);
    await scenario.run(context);
    console.log(
      `== ${scenario.name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  for (const stack of stacks.values()) await (await stack.catch(() => undefined))?.stop();
}
process.exit(failed ? 1 : 0);
