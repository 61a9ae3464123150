// A fake of an OpenAI-compatible chat-completions server (what OpenAI, vLLM, Ollama and
// llama.cpp's server speak), so tests drive the real `openai` client: JSON answers and
// streamed ones (Server-Sent Events ending in `data: [DONE]`), errors in OpenAI's format with
// Retry-After, and answers that hang, stall or never end. Scenario controls decide what each
// call answers; counters and the recorded requests tell what was asked.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** An HTTP error answered in OpenAI's format: `{ error: { message, type, code } }`. */
export interface ChatFailure {
  status: number;
  message?: string;
  /** OpenAI's error code, e.g. `insufficient_quota`. */
  code?: string;
  /** The error's type; by the status when unset (`rate_limit_exceeded`, `server_error`). */
  type?: string;
  /** Sent as the Retry-After header (seconds or an HTTP date). */
  retryAfter?: string;
}

type FinalAnswer =
  /** Items in the request's schema, as many as it asks for (at most 3). */
  | { kind: 'valid' }
  /** This text, streamed in pieces. */
  | { kind: 'text'; text: string }
  /** Stopped by the provider's content filter (`finish_reason: content_filter`). */
  | { kind: 'filtered' };

export type ChatAnswer =
  | FinalAnswer
  /** Answers nothing, not even headers, until the client gives up. */
  | { kind: 'hang' }
  /** Streams `text`, then nothing more until the client gives up. */
  | { kind: 'stall'; text: string }
  /** Streams text without end until the client gives up. */
  | { kind: 'endless' }
  /** Streams `text`, then an error event in the stream. */
  | {
      kind: 'stream-error';
      text: string;
      message: string;
      /** The error's `code`: vLLM sends the HTTP status as a number, OpenAI a name. */
      code?: number | string;
    }
  /** Answers `then` once `until` settles (or the client gives up first). */
  | { kind: 'held'; until: Promise<unknown>; then: FinalAnswer }
  /** Streams `text`, waits for `until` (or the client giving up), then streams `rest` and ends. */
  | { kind: 'paused'; text: string; until: Promise<unknown>; rest: string };

export interface FakeOpenAiScenario {
  /** Failures answered by the next calls, in order. */
  failures: ChatFailure[];
  /** Answers of the next calls, in order; a valid answer when empty. */
  answers: ChatAnswer[];
  /** Picks an answer by the request's prompt (after failures, before `answers`). */
  answerFor: ((prompt: string) => ChatAnswer | undefined) | null;
  /** Characters in each streamed piece. */
  pieceChars: number;
  /** Pause before each streamed piece. */
  pieceDelayMs: number;
}

export interface ChatRequestBody {
  model: string;
  stream?: boolean;
  /** `include_usage`: one last chunk, with no choices, carries the call's token counts. */
  stream_options?: { include_usage?: boolean };
  temperature?: number;
  messages: { role: string; content: string }[];
  response_format?: {
    type: string;
    json_schema?: {
      name: string;
      strict?: boolean;
      schema?: { properties?: { items?: { items?: { properties?: object } } } };
    };
  };
}

export interface RecordedChatRequest {
  body: ChatRequestBody;
  authorization: string | undefined;
}

export interface FakeOpenAiCalls {
  chatCompletions: number;
  /** Requests the client closed before the answer ended (an aborted or abandoned call). */
  abandoned: number;
  /** Streamed pieces sent, over all calls. */
  pieces: number;
}

/** The job's prompt: the first user message (a repair round adds more after it). */
const promptOf = (body: ChatRequestBody) =>
  body.messages.find((message) => message.role === 'user')?.content ?? '';

/** Items for the request, as many as its prompt asks for (at most 3), in its schema. */
function validItems(body: ChatRequestBody): string {
  const count = Math.min(3, Number(/at most (\d+)/.exec(promptOf(body))?.[1] ?? 3));
  const properties = body.response_format?.json_schema?.schema?.properties?.items?.items
    ?.properties as Record<string, unknown> | undefined;
  return JSON.stringify({
    items: Array.from({ length: count }, (_, index) => ({
      title: `Step ${index + 1}`,
      description: `What step ${index + 1} involves, in a sentence.`,
      ...(properties && 'estimatedMinutes' in properties
        ? { estimatedMinutes: 15 * (index + 1) }
        : {}),
    })),
  });
}

export class FakeOpenAi {
  readonly scenario: FakeOpenAiScenario = FakeOpenAi.defaultScenario();
  readonly calls: FakeOpenAiCalls = { chatCompletions: 0, abandoned: 0, pieces: 0 };
  readonly requests: RecordedChatRequest[] = [];
  /** HTTP status of every answer, in order. */
  readonly statuses: number[] = [];
  /** The whole text of every answer that ran to its end, in order. */
  readonly answered: string[] = [];
  /** The `usage` of every streamed answer that ended, as sent (when the client asked for it). */
  readonly reportedUsage: { prompt_tokens: number; completion_tokens: number }[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  url = '';

  static defaultScenario(): FakeOpenAiScenario {
    return { failures: [], answers: [], answerFor: null, pieceChars: 16, pieceDelayMs: 0 };
  }

  /** Back to the default answers, keeping the counters. */
  resetScenario(): void {
    Object.assign(this.scenario, FakeOpenAi.defaultScenario());
  }

  /** The base URL the client is given: up to `/v1`. */
  get baseUrl(): string {
    return `${this.url}/v1`;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) this.json(response, 500, { error: { message: String(error) } });
        else response.destroy();
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private json(response: ServerResponse, status: number, body: unknown, headers = {}): void {
    this.statuses.push(status);
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      this.json(response, 404, {
        error: { message: `fake-openai: no route for ${request.method} ${request.url}` },
      });
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody;
    this.calls.chatCompletions += 1;
    this.requests.push({ body, authorization: request.headers.authorization });

    const failure = this.scenario.failures.shift();
    if (failure) {
      this.json(
        response,
        failure.status,
        {
          error: {
            message: failure.message ?? `fake-openai: failure ${failure.status}`,
            type: failure.type ?? (failure.status === 429 ? 'rate_limit_exceeded' : 'server_error'),
            code: failure.code ?? null,
            param: null,
          },
        },
        failure.retryAfter ? { 'retry-after': failure.retryAfter } : {},
      );
      return;
    }
    let answer = this.scenario.answerFor?.(promptOf(body)) ??
      this.scenario.answers.shift() ?? { kind: 'valid' };

    let clientGone = false;
    let ended = false;
    const gone = new Promise<void>((resolve) =>
      response.once('close', () => {
        clientGone = true;
        if (!ended) this.calls.abandoned += 1;
        resolve();
      }),
    );
    if (answer.kind === 'hang') {
      await gone;
      return;
    }
    if (answer.kind === 'held') {
      await Promise.race([answer.until, gone]);
      if (clientGone) return;
      answer = answer.then;
    }
    const finish = (): void => {
      ended = true;
    };

    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    if (!body.stream) {
      const text = answer.kind === 'valid' ? validItems(body) : 'text' in answer ? answer.text : '';
      finish();
      this.json(response, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text },
            finish_reason: answer.kind === 'filtered' ? 'content_filter' : 'stop',
          },
        ],
      });
      return;
    }

    this.statuses.push(200);
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (delta: object, finishReason: string | null = null) =>
      response.write(
        `data: ${JSON.stringify({
          id,
          object: 'chat.completion.chunk',
          created,
          model: body.model,
          choices: [{ index: 0, delta, finish_reason: finishReason }],
        })}\n\n`,
      );
    const stream = async (text: string) => {
      for (let at = 0; at < text.length && !clientGone; at += this.scenario.pieceChars) {
        if (this.scenario.pieceDelayMs > 0) await delay(this.scenario.pieceDelayMs);
        if (clientGone) return;
        send({ content: text.slice(at, at + this.scenario.pieceChars) });
        this.calls.pieces += 1;
      }
    };
    send({ role: 'assistant', content: '' });
    switch (answer.kind) {
      case 'stall':
        await stream(answer.text);
        await gone;
        return;
      case 'endless':
        while (!clientGone) {
          await stream('{"items": [                                                ');
          await delay(1);
        }
        return;
      case 'stream-error':
        await stream(answer.text);
        finish();
        response.end(
          `data: ${JSON.stringify({ error: { message: answer.message, code: answer.code } })}\n\n`,
        );
        return;
      case 'filtered':
        await stream('{"items": [');
        send({}, 'content_filter');
        break;
      case 'paused':
        await stream(answer.text);
        await Promise.race([answer.until, gone]);
        await stream(answer.rest);
        if (clientGone) return;
        send({}, 'stop');
        this.answered.push(answer.text + answer.rest);
        break;
      default: {
        const text = answer.kind === 'valid' ? validItems(body) : answer.text;
        await stream(text);
        send({}, 'stop');
        if (!clientGone) this.answered.push(text);
        if (!clientGone && body.stream_options?.include_usage) {
          // As OpenAI sends it: after the finish reason, a chunk with empty choices.
          const prompt_tokens = Math.ceil(
            body.messages.reduce((chars, message) => chars + message.content.length, 0) / 4,
          );
          const completion_tokens = Math.ceil(text.length / 4);
          const usage = {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
          };
          this.reportedUsage.push(usage);
          response.write(
            `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage })}\n\n`,
          );
        }
      }
    }
    if (clientGone) return;
    finish();
    response.end('data: [DONE]\n\n');
  }
}
