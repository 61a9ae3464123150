// A local OTLP/HTTP traces receiver (what an OpenTelemetry collector, Jaeger or Tempo listens
// for on :4318): it takes `POST /v1/traces` in protobuf, decodes each request with the message
// types the exporter itself encodes with (@opentelemetry/otlp-transformer's generated code),
// keeps every span, and answers as a collector does: 200 with an empty export response.
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface ProtoMessage {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: object): unknown;
}

interface DecodedValue {
  stringValue?: string;
  intValue?: string;
  boolValue?: boolean;
  doubleValue?: number;
}

interface DecodedRequest {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value?: DecodedValue }[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: { key: string; value?: DecodedValue }[];
      }[];
    }[];
  }[];
}

/** One span as received: ids in hex, attributes flattened to strings. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  attributes: Record<string, string>;
  /** Its resource's attributes (`service.name`, `vlogflow.process`). */
  resource: Record<string, string>;
}

const generated = createRequire(import.meta.url)(
  '@opentelemetry/otlp-transformer/build/src/generated/root.js',
) as {
  opentelemetry: { proto: { collector: { trace: { v1: Record<string, ProtoMessage> } } } };
};
const exportRequest =
  generated.opentelemetry.proto.collector.trace.v1['ExportTraceServiceRequest']!;

const flatten = (attributes: { key: string; value?: DecodedValue }[] = []) =>
  Object.fromEntries(
    attributes.map(({ key, value }) => [
      key,
      String(value?.stringValue ?? value?.intValue ?? value?.boolValue ?? value?.doubleValue ?? ''),
    ]),
  );

export class OtlpReceiver {
  /** Every span received so far, in arrival order. */
  readonly spans: ReceivedSpan[] = [];
  /** Requests that were not a protobuf export to /v1/traces. */
  readonly refused: string[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const type = request.headers['content-type'];
        if (
          request.method !== 'POST' ||
          request.url !== '/v1/traces' ||
          type !== 'application/x-protobuf'
        ) {
          this.refused.push(`${request.method} ${request.url} ${type}`);
          response.writeHead(404).end();
          return;
        }
        this.receive(Buffer.concat(chunks));
        response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private receive(body: Buffer): void {
    const decoded = exportRequest.toObject(exportRequest.decode(body), {
      longs: String,
      bytes: String,
    }) as DecodedRequest;
    const hex = (base64 = '') => Buffer.from(base64, 'base64').toString('hex');
    for (const { resource, scopeSpans = [] } of decoded.resourceSpans ?? []) {
      for (const { spans = [] } of scopeSpans) {
        for (const span of spans) {
          this.spans.push({
            traceId: hex(span.traceId),
            spanId: hex(span.spanId),
            parentSpanId: hex(span.parentSpanId),
            name: span.name,
            attributes: flatten(span.attributes),
            resource: flatten(resource?.attributes),
          });
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
