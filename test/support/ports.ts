import net from 'node:net';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** `count` distinct TCP ports that were free a moment ago on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  // Every probe stays open until all are: the system never hands out one port twice meanwhile.
  const probes = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = probes.map((probe) => (probe.address() as net.AddressInfo).port);
  await Promise.all(
    probes.map((probe) => new Promise<void>((resolve) => probe.close(() => resolve()))),
  );
  return ports;
}

/**
 * A free TCP port on 127.0.0.1, held by a listener of this process until `release`: for a
 * server this process starts itself, after work that takes seconds, whose port must be known
 * first (its public URL names it). Released just before the server binds, no other process can
 * take the port in between.
 */
export async function reservePort(): Promise<{ port: number; release(): Promise<void> }> {
  // Unreferenced: a reservation a failed start never released does not keep the tests running.
  const holder = net.createServer().unref();
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (holder.address() as net.AddressInfo).port,
    release: () => new Promise<void>((resolve) => holder.close(() => resolve())),
  };
}

/**
 * How a process says a port it was to bind is taken: the service's own PortInUseError, and the
 * EADDRINUSE of Node and of Go (the Temporal CLI, the storage emulators, Prometheus).
 */
const portTaken = /already in use/;

/** Starts on fresh ports after a port was taken; more than this many races in a row is no race. */
const portAttempts = 5;

/**
 * Starts something (a process, a server) on `count` ports that were free a moment ago. Between
 * the moment a port is found free and the moment what starts binds it, any process on the
 * machine may take it (another test file's, or one that made an outgoing connection from it):
 * when `start` fails saying a port is already in use, it is started again on fresh ports. It
 * must clean up after its own failure.
 */
export async function onFreePorts<T>(
  count: number,
  start: (ports: number[]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await start(await freePorts(count));
    } catch (error) {
      if (attempt >= portAttempts || !portTaken.test(errorText(error))) throw error;
    }
  }
}

/** An error's message with those of its causes. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause === undefined ? error.message : `${error.message}\n${errorText(error.cause)}`;
}
