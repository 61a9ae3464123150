// An HTTP proxy in front of a fake or an emulator that can hold chosen requests before the
// service behind it sees them. Fault tests use it to stop a worker deterministically inside one
// activity (its provider or storage call is held), kill it there, and count what went through.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the gate saw it, body included. */
export interface GateRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  body: Buffer;
}

/** Requests that one `hold` keeps back until it is released. */
export interface Hold {
  readonly name: string;
  /** Requests it stopped whose client is still connected. */
  waiting(): GateRequest[];
  /** Forwards what is still waiting and lets every later match through. */
  release(): void;
}

interface Parked {
  request: GateRequest;
  headers: IncomingMessage['headers'];
  response: ServerResponse;
  gone: boolean;
}

interface HoldState {
  name: string;
  match: (request: GateRequest) => boolean;
  parked: Parked[];
  released: boolean;
}

// Hop-by-hop headers, and `expect` (the body is already here: no 100-continue dance upstream).
const notForwarded = new Set(['connection', 'keep-alive', 'expect', 'proxy-connection', 'upgrade']);

export class RequestGate {
  /** Every request forwarded to the target, in order. */
  readonly forwarded: GateRequest[] = [];
  url = '';
  private readonly holds: HoldState[] = [];
  private server: Server | undefined;

  private constructor(private readonly target: URL) {}

  /** A gate listening on a free port of 127.0.0.1 that forwards to `target` (an http:// URL). */
  static async start(target: string): Promise<RequestGate> {
    const gate = new RequestGate(new URL(target));
    gate.server = createServer((request, response) => {
      gate.receive(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(502);
        response.end(String(error));
      });
    });
    await new Promise<void>((resolve) => gate.server!.listen(0, '127.0.0.1', resolve));
    gate.url = `http://127.0.0.1:${(gate.server.address() as AddressInfo).port}`;
    return gate;
  }

  /** Holds every request `match` accepts from now on, until the hold is released. */
  hold(name: string, match: (request: GateRequest) => boolean): Hold {
    const state: HoldState = { name, match, parked: [], released: false };
    this.holds.push(state);
    return {
      name,
      waiting: () => state.parked.filter((held) => !held.gone).map((held) => held.request),
      release: () => this.release(state),
    };
  }

  /** Requests held by any hold whose client is still connected. */
  waiting(): GateRequest[] {
    return this.holds.flatMap((state) =>
      state.parked.filter((held) => !held.gone).map((held) => held.request),
    );
  }

  /** Releases every hold. */
  releaseAll(): void {
    for (const state of [...this.holds]) this.release(state);
  }

  private release(state: HoldState): void {
    state.released = true;
    const index = this.holds.indexOf(state);
    if (index >= 0) this.holds.splice(index, 1);
    for (const held of state.parked.splice(0)) {
      if (!held.gone) this.forward(held.request, held.headers, held.response);
    }
  }

  async stop(): Promise<void> {
    for (const state of this.holds) for (const held of state.parked) held.response.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private async receive(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const request: GateRequest = {
      method: incoming.method ?? 'GET',
      url: incoming.url ?? '/',
      body: Buffer.concat(chunks),
    };
    const hold = this.holds.find((state) => !state.released && state.match(request));
    if (!hold) return this.forward(request, incoming.headers, response);
    const parked: Parked = { request, headers: incoming.headers, response, gone: false };
    // A client that dies (a killed worker) closes its socket: its request is never forwarded.
    response.once('close', () => {
      if (!response.writableEnded) parked.gone = true;
    });
    hold.parked.push(parked);
  }

  private forward(
    request: GateRequest,
    headers: IncomingMessage['headers'],
    response: ServerResponse,
  ): void {
    this.forwarded.push(request);
    const outgoing = httpRequest(
      {
        protocol: this.target.protocol,
        hostname: this.target.hostname,
        port: this.target.port,
        method: request.method,
        path: request.url,
        headers: {
          ...Object.fromEntries(
            Object.entries(headers).filter(
              ([name]) =>
                !notForwarded.has(name) &&
                name !== 'content-length' &&
                name !== 'transfer-encoding',
            ),
          ),
          'content-length': String(request.body.length),
        },
      },
      (answer) => {
        response.writeHead(
          answer.statusCode ?? 502,
          Object.fromEntries(
            Object.entries(answer.headers).filter(([name]) => !notForwarded.has(name)),
          ),
        );
        answer.pipe(response);
      },
    );
    outgoing.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502);
      response.end(String(error));
    });
    response.once('close', () => outgoing.destroy());
    outgoing.end(request.body);
  }
}
