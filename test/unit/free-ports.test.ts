// Tests start services on ports found free a moment before; another process on the machine can
// take one before the service binds it. The support starts such a service again on fresh ports.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { freePorts, onFreePorts, reservePort } from '../support/ports.js';

function listen(server: net.Server, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const close = (server: net.Server) => new Promise((resolve) => server.close(resolve));

describe('ports for the services a test starts', () => {
  it('are distinct', async () => {
    const ports = await freePorts(20);
    assert.equal(new Set(ports).size, 20);
  });

  it('are picked again when another process takes one before the service binds it', async () => {
    const thief = net.createServer();
    const tried: number[][] = [];
    const server = await onFreePorts(2, async (ports) => {
      tried.push(ports);
      // The race, made certain: the first port is taken between its check and its use.
      if (tried.length === 1) await listen(thief, ports[0]!);
      return listen(net.createServer(), ports[0]!);
    });
    try {
      assert.equal(tried.length, 2);
      assert.equal((server.address() as net.AddressInfo).port, tried[1]![0]);
    } finally {
      await close(server);
      await close(thief);
    }
  });

  it('can be held until the service binds one, none other taking it meanwhile', async () => {
    const reserved = await reservePort();
    await assert.rejects(listen(net.createServer(), reserved.port), /EADDRINUSE/);
    await reserved.release();
    await close(await listen(net.createServer(), reserved.port));
  });

  it('are not picked again for any other failure', async () => {
    let attempts = 0;
    await assert.rejects(
      onFreePorts(1, async () => {
        attempts += 1;
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      }),
      /ECONNREFUSED/,
    );
    assert.equal(attempts, 1);
  });
});
