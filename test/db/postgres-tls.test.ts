// PostgreSQL over TLS with DATABASE_URL's own parameters (docs/configuration.md): the machine's
// PostgreSQL behind a proxy that speaks PostgreSQL's TLS negotiation (an SSLRequest answered
// `S`, then a TLS handshake) and forwards plaintext, with a CA made for the test.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { makeTestCertificates, type TestCertificates } from '../support/certificates.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** The SSLRequest message: length 8, then the code 80877103. */
const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** Accepts only TLS connections and forwards them to `target` in plaintext. */
async function startPostgresTlsProxy(
  target: URL,
  secureContext: tls.SecureContext,
): Promise<{ port: number; secured(): number; handshakeErrors: string[]; stop(): Promise<void> }> {
  const handshakeErrors: string[] = [];
  let secured = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.once('data', (first: Buffer) => {
      if (!first.equals(sslRequest)) {
        client.destroy();
        return;
      }
      client.write('S');
      const secure = new tls.TLSSocket(client, { isServer: true, secureContext });
      secure.on('error', (error: Error) => {
        handshakeErrors.push(error.message);
        client.destroy();
      });
      secure.once('secure', () => {
        secured += 1;
        const upstream = net.connect(Number(target.port || 5432), target.hostname);
        sockets.add(upstream);
        upstream.on('error', () => secure.destroy());
        secure.pipe(upstream).pipe(secure);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    handshakeErrors,
    secured: () => secured,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('PostgreSQL over TLS', () => {
  let certificates: TestCertificates;
  let database: TestDatabase;
  let proxy: Awaited<ReturnType<typeof startPostgresTlsProxy>>;
  before(async () => {
    certificates = await makeTestCertificates();
    database = await createTestDatabase();
    proxy = await startPostgresTlsProxy(
      new URL(database.url),
      tls.createSecureContext({
        key: await certificates.pem(certificates.serverKeyFile),
        cert: await certificates.pem(certificates.serverCertFile),
      }),
    );
  });
  after(async () => {
    await proxy.stop();
    await database.drop();
    await certificates.remove();
  });

  /** `database`'s URL through the proxy, with TLS parameters. */
  const urlThroughProxy = (parameters: Record<string, string>) => {
    const url = new URL(database.url);
    url.hostname = certificates.serverNames.ip;
    url.port = String(proxy.port);
    for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
    return url.href;
  };

  it('sslmode=verify-full with sslrootcert: the service opens and queries the database', async () => {
    const config = loadConfig({
      DATABASE_URL: urlThroughProxy({ sslmode: 'verify-full', sslrootcert: certificates.caFile }),
    });
    const db = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: '.' });
    try {
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await db.destroy();
    }
    assert.ok(proxy.secured() > 0, 'no connection went through TLS');
    assert.deepEqual(proxy.handshakeErrors, []);
  });

  it('a server certificate the given CA did not sign is refused, and so is plaintext', async () => {
    await assert.rejects(
      openDatabase({
        databaseUrl: urlThroughProxy({
          sslmode: 'verify-full',
          sslrootcert: certificates.otherCaFile,
        }),
        dataDir: '.',
      }),
      (error: Error) => {
        assert.match(
          error.message,
          /^DATABASE_URL: cannot use the database at postgres:\/\/.*: unable to verify the first certificate/,
        );
        return true;
      },
    );
    await assert.rejects(
      openDatabase({ databaseUrl: urlThroughProxy({ sslmode: 'disable' }), dataDir: '.' }),
      /DATABASE_URL: cannot use the database at /,
    );
  });
});
