import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import {
  startDevServer,
  type DevServer,
  type DevServerOptions,
} from '../../temporal/dev-server.js';
import { prepareNamespace } from '../../temporal/namespace.js';
import { testEnv } from '../support/env.js';
import { FaultStack } from '../support/fault-stack.js';
import { onFreePorts } from '../support/ports.js';
import type { ServiceProcess } from '../support/processes.js';

const pauseMs = 2_000;

// The Temporal dev server itself — this test's own, persisting to a SQLite file — is SIGKILLed
// while jobs are in the middle of their activities, and started again on the same port and file.
describe('fault: Temporal server killed', () => {
  let dir: string;
  let serverOptions: DevServerOptions;
  let server: DevServer;
  let stack: FaultStack;
  let worker: ServiceProcess;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-faults-temporal-'));
    server = await onFreePorts(1, ([port]) => {
      serverOptions = {
        cliPath: testEnv.temporalCliPath,
        namespace: 'vlogflow-faults',
        port: port!,
        uiPort: null,
        dbFilename: path.join(dir, 'temporal.sqlite'),
        logFile: path.join(dir, 'temporal.log'),
      };
      return startDevServer(serverOptions);
    });
    const connection = await Connection.connect({ address: server.address });
    await prepareNamespace(connection, serverOptions.namespace);
    await connection.close();
    stack = await FaultStack.start({
      name: 'temporal',
      temporalAddress: server.address,
      temporalNamespace: serverOptions.namespace,
      // The server's outage must not look like a lost worker to the held AI calls.
      env: { AI_JOB_HEARTBEAT_TIMEOUT_MS: '60000' },
    });
    await stack.start('api');
    worker = await stack.start('worker');
  });
  after(async () => {
    await stack.stop();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('mid-job, restarted on the same database file: every job completes once', async () => {
    const holds = [
      stack.holdGoogleCalls('generateAiItems', ['ai'], 'streamGenerateContent'),
      stack.holdGoogleCalls('analyzeMedia', ['analyze'], 'generateContent'),
      stack.holdGenerationChecks('checkVideoGeneration', ['check']),
    ];
    const [, , , , checked] = await Promise.all([
      stack.submitAi('ai'),
      stack.submitAi('ai'),
      stack.submitAi('ai'),
      stack.submitVlog('analyze'),
      stack.submitVlog('check'),
    ]);
    await stack.waitHeld(holds[0]!, 3);
    await stack.waitHeld(holds[1]!, 1);
    await stack.waitHeld(holds[2]!, 1);

    const killedAt = Date.now();
    process.kill(server.pid, 'SIGKILL');
    await server.exited;
    await server.stop();
    // One Veo check is answered while the server is down: its worker must report it later.
    holds[2]!.release();
    await delay(pauseMs);
    server = await startDevServer(serverOptions);
    const restartedAt = Date.now();
    holds[0]!.release();
    holds[1]!.release();
    const recoveryMs = await stack.waitAllFinal();
    const checkAttempts = (await stack.activityAttempts(checked)).get('checkVideoGeneration');

    assert.equal(worker.child.exitCode, null, 'the worker outlived the server outage');
    await stack.finish({
      scenario: 'Temporal dev server SIGKILLed',
      fault: `own dev server (SQLite file) SIGKILLed with 3 AI jobs and 2 vlogs inside activities, restarted on the same port and file after ${pauseMs / 1000} s`,
      faultMs: restartedAt - killedAt,
      recoveryMs,
      notes: [
        'the held model calls were answered after the restart; one Veo check was answered while the server was down',
        `that check's activity reached attempt ${checkAttempts} (1: its result was delivered after the restart, 2+: it was lost and retried)`,
        'the worker and the API kept running throughout and reconnected by themselves',
      ],
    });
  });
});
