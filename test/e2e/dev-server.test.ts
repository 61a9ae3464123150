import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { temporalDevPortVariables } from '../../src/config.js';
import { PortInUseError } from '../../src/ports.js';
import {
  startDevServer,
  stopLeftoverDevServer,
  type DevServerOptions,
} from '../../temporal/dev-server.js';
import { testEnv } from '../support/env.js';
import { testLogger } from '../support/logs.js';
import { freePorts, onFreePorts } from '../support/ports.js';
import { isAlive } from '../support/processes.js';

async function holdPort(port: number): Promise<net.Server> {
  const holder = net.createServer();
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(port, '127.0.0.1', resolve);
  });
  return holder;
}

describe('Temporal dev server start', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function scratchDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-dev-server-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  function options(dir: string, [port, uiPort, httpPort, metricsPort]: number[]): DevServerOptions {
    return {
      cliPath: testEnv.temporalCliPath,
      namespace: 'dev-server-test',
      port: port!,
      uiPort: uiPort!,
      httpPort: httpPort!,
      metricsPort: metricsPort!,
      portSettings: {
        port: temporalDevPortVariables.grpc,
        uiPort: temporalDevPortVariables.ui,
        httpPort: temporalDevPortVariables.http,
        metricsPort: temporalDevPortVariables.metrics,
      },
      dbFilename: path.join(dir, 'data', 'temporal.sqlite'),
      logFile: path.join(dir, 'logs', 'temporal.log'),
    };
  }

  for (const [option, variable] of [
    ['port', temporalDevPortVariables.grpc],
    ['uiPort', temporalDevPortVariables.ui],
    ['httpPort', temporalDevPortVariables.http],
    ['metricsPort', temporalDevPortVariables.metrics],
  ] as const) {
    it(`refuses a taken ${option}, naming ${variable}, and starts nothing`, async () => {
      const dir = await scratchDir();
      const serverOptions = options(dir, await freePorts(4));
      const port = serverOptions[option] as number;
      const holder = await holdPort(port);
      cleanups.push(() => new Promise((resolve) => holder.close(resolve)));

      const refused = await startDevServer(serverOptions).then(
        async (server) => {
          await server.stop();
          assert.fail(`the dev server started although port ${port} was taken`);
        },
        (error: unknown) => error,
      );
      assert.ok(refused instanceof PortInUseError, String(refused));
      assert.match(
        refused.message,
        new RegExp(`${variable}: port ${port} on 127\\.0\\.0\\.1, .* is taken; set ${variable}`),
      );
      // Refused before anything ran: no server wrote a log or a database.
      assert.equal(existsSync(path.join(dir, 'logs')), false);
      assert.equal(existsSync(path.join(dir, 'data')), false);
    });
  }

  it('reports a server that exits before serving with its own last words', async () => {
    const dir = await scratchDir();
    // A folder where the SQLite file should be: the CLI cannot open its database.
    await assert.rejects(
      onFreePorts(4, (ports) => startDevServer({ ...options(dir, ports), dbFilename: dir })),
      /exited with code 1 before it was ready: .*unable to .*database/,
    );
  });

  it('refuses to stop the server of a stack that still runs on the same data folder', async () => {
    const dir = await scratchDir();
    const ownerRecord = path.join(dir, 'temporal-dev-server.json');
    const server = await onFreePorts(4, (ports) =>
      startDevServer({ ...options(dir, ports), ownerRecord }),
    );
    cleanups.push(() => server.stop());
    const record = JSON.parse(await readFile(ownerRecord, 'utf8')) as Record<string, unknown>;
    assert.equal(record['serverPid'], server.pid);
    assert.equal(record['ownerPid'], process.pid);

    await assert.rejects(
      stopLeftoverDevServer(ownerRecord, testLogger()),
      new RegExp(`process ${process.pid} runs a stack on this DATA_DIR .*own DATA_DIR`),
    );
    assert.equal(isAlive(server.pid), true);
    await server.stop();
    assert.equal(isAlive(server.pid), false);
    assert.equal(existsSync(ownerRecord), false, 'a cleanly stopped server leaves no record');
  });
});
