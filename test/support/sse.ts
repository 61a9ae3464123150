/** One Server-Sent Event as a client parses it. */
export interface ServerSentEvent {
  id: string | null;
  event: string;
  data: string;
}

export interface EventStreamClient {
  status: number;
  headers: Headers;
  /** The next event; rejects when the stream ends first or `timeoutMs` passes. */
  next(timeoutMs?: number): Promise<ServerSentEvent>;
  /** Every remaining event until the server closes the stream. */
  rest(timeoutMs?: number): Promise<ServerSentEvent[]>;
  close(): void;
}

/**
 * A minimal EventSource over fetch (which, unlike the browser's, can send an Authorization
 * header): parses `id`, `event` and `data` fields, skips comments, `retry` and `keepalive`
 * events (they say the stream is alive, not what the job did).
 */
export async function openEventStream(
  url: string,
  headers: Record<string, string>,
): Promise<EventStreamClient> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  // An answer without a body (204 after the end) is a stream that has ended.
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let ended = reader === undefined;

  async function read(deadline: number): Promise<ServerSentEvent | null> {
    for (;;) {
      const boundary = buffer.indexOf('\n\n');
      if (boundary >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event = parse(block);
        if (event) return event;
        continue;
      }
      if (ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event from ${url} in time`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        reader!.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no event from ${url} in time`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) ended = true;
      else buffer += chunk.value;
    }
  }

  return {
    status: response.status,
    headers: response.headers,
    async next(timeoutMs = 30_000) {
      const event = await read(Date.now() + timeoutMs);
      if (!event) throw new Error(`${url} ended before the next event`);
      return event;
    },
    async rest(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      const events: ServerSentEvent[] = [];
      for (let event = await read(deadline); event; event = await read(deadline)) {
        events.push(event);
      }
      return events;
    },
    close() {
      controller.abort();
    },
  };
}

function parse(block: string): ServerSentEvent | null {
  let id: string | null = null;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length > 0 && event !== 'keepalive' ? { id, event, data: data.join('\n') } : null;
}
