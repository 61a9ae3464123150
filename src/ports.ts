import net from 'node:net';
import { ConfigError, StartupError, urlHost } from './config.js';

/** A port this process is about to open, and what an operator changes to move it. */
export interface PortClaim {
  host: string;
  port: number;
  /** What listens there, e.g. `the Temporal dev server's gRPC frontend`. */
  what: string;
  /** The variable (or option) that sets the port, named when it is taken. */
  setting: string;
  /** The variable that sets the host, named with `setting` when nothing can listen there. */
  hostSetting?: string;
}

/** One or more ports someone else holds; nothing was started. */
export class PortInUseError extends ConfigError {
  override name = 'PortInUseError';
}

function isFree({ host, port }: PortClaim): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(false) : reject(error),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/**
 * Throws a PortInUseError naming every claimed port that is taken and the setting to change,
 * before anything is started: a stack that finds its port taken must not go on and talk to
 * whatever holds it (another stack's Temporal server, whose jobs it would then take).
 */
export async function assertPortsFree(claims: readonly PortClaim[]): Promise<void> {
  const taken: PortClaim[] = [];
  for (const claim of claims) {
    // Not taken, but not to be had either: no interface has the address, or no such host.
    const free = await isFree(claim).catch((error: unknown) => {
      throw new StartupError(
        [claim.hostSetting, claim.setting].filter(Boolean).join(' / '),
        `cannot listen on ${urlHost(claim.host)}:${claim.port}`,
        error,
      );
    });
    if (!free) taken.push(claim);
  }
  if (taken.length === 0) return;
  throw new PortInUseError(
    [
      'Cannot start: a port it needs is already in use (another vlogflow stack, or another program):',
      ...taken.map(
        (claim) =>
          `  ${claim.setting}: port ${claim.port} on ${claim.host}, for ${claim.what}, is taken; set ${claim.setting} to a free port or stop what holds it`,
      ),
    ].join('\n'),
  );
}
