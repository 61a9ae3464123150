// Throwaway certificates for TLS tests, made with the machine's openssl: a CA, a server
// certificate it signs, a client certificate it signs (mutual TLS), and a second CA that signed
// neither (the wrong CA).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files are PEM; `pem` holds their bytes for a TLS server. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  /** A CA that signed nothing here. */
  otherCaFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** The names the server certificate is valid for. */
  serverNames: { dns: string; ip: string };
  pem(file: string): Promise<Buffer>;
  remove(): Promise<void>;
}

/** Runs `openssl` in `dir` with `command`'s words (none has a space) as its arguments. */
async function openssl(dir: string, command: string): Promise<void> {
  await run('openssl', command.split(' '), { cwd: dir });
}

const newKey = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    dir,
    `req -x509 ${newKey} -keyout ${name}.key -out ${name}.crt -days 1 -subj /CN=${name}`,
  );
}

async function makeSigned(dir: string, name: string, extensions: string): Promise<void> {
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  await openssl(dir, `req ${newKey} -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`);
  await openssl(
    dir,
    `x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out ${name}.crt -days 1 -extfile ${name}.ext`,
  );
}

export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-tls-'));
  const serverNames = { dns: 'temporal.test', ip: '127.0.0.1' };
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeSigned(
    dir,
    'server',
    `subjectAltName=DNS:${serverNames.dns},IP:${serverNames.ip}\nextendedKeyUsage=serverAuth\n`,
  );
  await makeSigned(dir, 'client', 'extendedKeyUsage=clientAuth\n');
  const file = (name: string) => path.join(dir, name);
  return {
    dir,
    caFile: file('ca.crt'),
    otherCaFile: file('other-ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
    serverNames,
    pem: (name) => readFile(name),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
