import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { msToNumber } from '@temporalio/common/lib/time.js';
import {
  parseTaskQueueDomains,
  taskQueueDomains,
  taskQueueNames,
  taskQueueWork,
} from '../../src/capacity/task-queues.js';
import { UsageError } from '../../src/command-line.js';
import { ConfigError, configSchema, loadConfig, queueCapacities } from '../../src/config.js';
import { jobKindRegistry } from '../../src/kinds/index.js';
import type { ActivityPolicy } from '../../src/kinds/declaration.js';
import { workerQueuesOf } from '../../src/worker/worker.js';
import { repositoryRoot } from '../support/docs.js';
import { fromSource } from '../support/processes.js';

describe('task queue map', () => {
  it('names each domain after TEMPORAL_TASK_QUEUE, the workflows domain being the base queue', () => {
    assert.deepEqual(taskQueueNames('vf'), {
      workflows: 'vf',
      analysis: 'vf-analysis',
      'video-generation': 'vf-video-generation',
      'text-generation': 'vf-text-generation',
      media: 'vf-media',
      transfer: 'vf-transfer',
      storage: 'vf-storage',
      inspection: 'vf-inspection',
    });
  });

  it('parses a list of domains in map order, and names the source of a bad one', () => {
    assert.deepEqual(parseTaskQueueDomains(' transfer, media ,media', '--queues'), [
      'media',
      'transfer',
    ]);
    assert.throws(
      () => parseTaskQueueDomains('media,renders', '--queues'),
      /^Error: --queues: unknown queue "renders"; expected a comma-separated list of workflows, analysis, video-generation, text-generation, media, transfer, storage, inspection$/,
    );
    assert.throws(
      () => parseTaskQueueDomains(' , ', 'WORKER_QUEUES'),
      /WORKER_QUEUES: names no queue/,
    );
  });

  it('takes the domains from --queues, else WORKER_QUEUES, else all', () => {
    const all = loadConfig({});
    assert.deepEqual(all.workerQueues, [...taskQueueDomains]);
    assert.deepEqual(workerQueuesOf([], all), [...taskQueueDomains]);
    const some = loadConfig({ WORKER_QUEUES: 'workflows,storage' });
    assert.deepEqual(workerQueuesOf([], some), ['workflows', 'storage']);
    assert.deepEqual(workerQueuesOf(['--queues', 'media,transfer'], some), ['media', 'transfer']);
    assert.deepEqual(workerQueuesOf(['--queues=inspection'], all), ['inspection']);
    assert.throws(
      () => workerQueuesOf(['--queues', 'media,gpu'], all),
      (error) =>
        error instanceof UsageError && /^--queues: unknown queue "gpu"/.test(error.message),
    );
    assert.throws(
      () => workerQueuesOf(['--queue', 'media'], all),
      (error) => error instanceof UsageError && /^Unknown option '--queue'/.test(error.message),
    );
    assert.throws(
      () => workerQueuesOf(['--queues', 'media', '--queues', 'transfer'], all),
      (error) => error instanceof UsageError && error.message === '--queues: given more than once',
    );
    assert.throws(
      () => loadConfig({ WORKER_QUEUES: 'media,gpu' }),
      (error) =>
        error instanceof ConfigError && /WORKER_QUEUES: unknown queue "gpu"/.test(error.message),
    );
  });

  it('refuses a bad flag of the worker process with exit code 2, one line naming it, then the usage', async () => {
    const worker = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [...fromSource, 'src/worker/worker-process.ts', ...args],
          { cwd: repositoryRoot, timeout: 60_000 },
          (error, stdout, stderr) =>
            resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    for (const [args, problem] of [
      [['--queue', 'media'], /^Unknown option '--queue'$/],
      [['--queues', 'media,gpu'], /^--queues: unknown queue "gpu"; expected /],
    ] as const) {
      const refused = await worker([...args]);
      const [message, usage] = refused.stderr.split('\n');
      assert.match(message ?? '', problem, refused.stderr);
      assert.match(usage ?? '', /^usage: npm run worker -- /, refused.stderr);
      assert.equal(refused.code, 2, refused.stderr);
    }
    const help = await worker(['--help']);
    assert.match(help.stdout, /^usage: npm run worker -- /);
    assert.equal(help.code, 0, help.stderr);
  });

  it('gives each domain its slots, pollers (never above the slots) and queue-wide rate', () => {
    const defaults = queueCapacities(loadConfig({ MEDIA_MAX_CONCURRENT_FFMPEG: '3' }));
    assert.deepEqual(defaults.workflows, { slots: 8, pollers: 4 });
    assert.deepEqual(defaults.media, { slots: 3, pollers: 2, ratePerSecond: undefined });
    assert.deepEqual(defaults.inspection, { slots: 2, pollers: 1, ratePerSecond: undefined });
    const set = queueCapacities(
      loadConfig({
        MEDIA_MAX_CONCURRENT_FFMPEG: '1',
        QUEUE_VIDEO_GENERATION_SLOTS: '5',
        QUEUE_VIDEO_GENERATION_POLLERS: '8',
        QUEUE_VIDEO_GENERATION_RATE_PER_SECOND: '0.1667',
      }),
    );
    assert.deepEqual(set['video-generation'], { slots: 5, pollers: 5, ratePerSecond: 0.1667 });
    assert.deepEqual(set.media, { slots: 1, pollers: 1, ratePerSecond: undefined });
    assert.throws(
      () => loadConfig({ QUEUE_TRANSFER_RATE_PER_SECOND: '0' }),
      /QUEUE_TRANSFER_RATE_PER_SECOND/,
    );
  });

  it("takes the embedded model's requests at once from the text-generation queue, unless set", () => {
    const textSlots = (env: Record<string, string>) =>
      queueCapacities(loadConfig({ AI_PROVIDER: 'auto', ...env }))['text-generation'].slots;
    assert.equal(textSlots({}), 2);
    assert.equal(textSlots({ AI_PROVIDER: 'embedded' }), 2);
    assert.equal(textSlots({ GEMINI_API_KEY: 'k' }), 50);
    assert.equal(textSlots({ OPENAI_BASE_URL: 'http://127.0.0.1:1/v1', OPENAI_MODEL: 'm' }), 50);
    assert.equal(textSlots({ QUEUE_TEXT_GENERATION_SLOTS: '7' }), 7);
    assert.equal(textSlots({ QUEUE_TEXT_GENERATION_SLOTS: '' }), 2);
  });

  it('is the table of docs/operations.md, with settings that exist', async () => {
    const page = await readFile(path.join(repositoryRoot, 'docs/operations.md'), 'utf8');
    const section = page.split('## Task queues and scaling')[1]?.split('\n## ')[0] ?? '';
    const rows = section
      .split('\n')
      .filter((line) => /^\| `/.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    assert.deepEqual(
      rows.map(([domain]) => domain),
      taskQueueDomains.map((domain) => `\`${domain}\``),
    );
    const names = taskQueueNames('<TEMPORAL_TASK_QUEUE>');
    const variables = new Set(Object.keys(configSchema.shape));
    for (const [domain, queue, runs, settings] of rows) {
      const name = domain!.slice(1, -1) as (typeof taskQueueDomains)[number];
      assert.equal(queue, `\`${names[name]}\``, `queue of ${name}`);
      assert.equal(runs, taskQueueWork[name], `what runs on ${name}`);
      const named = settings!.match(/[A-Z][A-Z0-9_]+/g) ?? [];
      assert.ok(named.length >= 2, `settings of ${name}`);
      for (const variable of named) assert.ok(variables.has(variable), `${variable} (${name})`);
    }
  });
});

describe('recovery from a lost worker', () => {
  const tenSeconds = 10_000;
  const policies = jobKindRegistry.flatMap(({ declaration }) =>
    Object.entries(declaration.activityPolicies as Record<string, ActivityPolicy>).map(
      ([group, policy]) => ({ where: `${declaration.kind}.${group}`, policy }),
    ),
  );

  it('notices every heartbeating activity lost within 10 s', () => {
    assert.ok(policies.length > 0);
    for (const { where, policy } of policies) {
      // The AI generation's heartbeat timeout is the job's (AI_JOB_HEARTBEAT_TIMEOUT_MS).
      const heartbeatMs =
        where === 'ai.generation'
          ? loadConfig({}).AI_JOB_HEARTBEAT_TIMEOUT_MS
          : policy.heartbeatTimeout === undefined
            ? undefined
            : msToNumber(policy.heartbeatTimeout);
      assert.ok(heartbeatMs !== undefined, `${where} has no heartbeat timeout`);
      assert.ok(heartbeatMs <= tenSeconds, `${where}: heartbeat timeout ${heartbeatMs} ms`);
    }
  });

  it('retries a lost activity after at most a second', () => {
    for (const { where, policy } of policies) {
      const initialMs =
        policy.retry === 'provider'
          ? loadConfig({}).PROVIDER_RETRY_INITIAL_MS
          : msToNumber(policy.retry.initialInterval ?? '1s');
      assert.ok(initialMs <= 1_000, `${where}: first retry after ${initialMs} ms`);
    }
  });
});
