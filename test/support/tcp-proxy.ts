// A TCP proxy that a test can cut, stall and restore: how fault tests make PostgreSQL
// unreachable for the API and the worker while the machine's PostgreSQL keeps running. Given
// TLS options it terminates TLS and forwards plaintext: a TLS frontend for the dev server.
import net from 'node:net';
import tls from 'node:tls';

/** What connections through the proxy do now. */
export type ProxyState = 'open' | 'cut' | 'stalled' | 'replies-stalled';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
}

export class TcpProxy {
  port = 0;
  /** Connections refused or dropped while cut. */
  refused = 0;
  /** Connections forwarded (with TLS: whose handshake succeeded). */
  accepted = 0;
  /** With TLS: why each failed handshake failed, as the proxy's TLS stack said. */
  readonly handshakeErrors: string[] = [];
  private state: ProxyState = 'open';
  private readonly links = new Set<Link>();
  private server: net.Server | undefined;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /**
   * A proxy on a free port of 127.0.0.1 to `targetHost:targetPort`; with `tlsOptions`, clients
   * must speak TLS to it (and present a certificate it trusts, with `requestCert`).
   */
  static async start(
    targetHost: string,
    targetPort: number,
    tlsOptions?: tls.TlsOptions,
  ): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    const accept = (client: net.Socket) => proxy.accept(client);
    if (tlsOptions) {
      const server = tls.createServer(tlsOptions, accept);
      server.on('tlsClientError', (error) => proxy.handshakeErrors.push(error.message));
      proxy.server = server;
    } else {
      proxy.server = net.createServer(accept);
    }
    await new Promise<void>((resolve) => proxy.server!.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  proxiedUrl(url: string): string {
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(this.port);
    return proxied.href;
  }

  get current(): ProxyState {
    return this.state;
  }

  /** Closes every open connection and every new one until `restore()`: the database is gone. */
  cut(): void {
    this.state = 'cut';
    for (const link of this.links) this.drop(link);
  }

  /**
   * Stops forwarding in both directions, on open connections and new ones, until `restore()`:
   * queries in flight hang, as behind a dead network path.
   */
  stall(): void {
    this.state = 'stalled';
    for (const { client, upstream } of this.links) {
      client.pause();
      upstream.pause();
    }
  }

  /**
   * Forwards what clients send but holds every reply, on open connections and new ones, until
   * `restore()`: the server acts on each request, and its client never hears the outcome.
   */
  stallReplies(): void {
    this.state = 'replies-stalled';
    for (const { upstream } of this.links) upstream.pause();
  }

  /** Forwards again. */
  restore(): void {
    this.state = 'open';
    for (const { client, upstream } of this.links) {
      client.resume();
      upstream.resume();
    }
  }

  async stop(): Promise<void> {
    for (const link of this.links) this.drop(link);
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.state === 'cut') {
      this.refused += 1;
      client.destroy();
      return;
    }
    this.accepted += 1;
    const upstream = net.connect(this.targetPort, this.targetHost);
    const link = { client, upstream };
    this.links.add(link);
    if (this.state === 'stalled') client.pause();
    if (this.state === 'stalled' || this.state === 'replies-stalled') upstream.pause();
    this.relay(client, upstream, 'request');
    this.relay(upstream, client, 'reply');
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.drop(link));
      socket.on('close', () => this.drop(link));
    }
  }

  /** Copies `from` to `to` with backpressure, never resuming while its direction is stalled. */
  private relay(from: net.Socket, to: net.Socket, direction: 'request' | 'reply'): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (this.state === 'open' || (this.state === 'replies-stalled' && direction === 'request'))
        from.resume();
    });
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    if (this.state === 'cut') this.refused += 1;
    // Plain destroy: resetAndDestroy() racing the peer's own close can leave a handle that
    // keeps Node spinning at exit.
    link.client.destroy();
    link.upstream.destroy();
  }
}
