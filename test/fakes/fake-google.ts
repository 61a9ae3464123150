// A fake of the Gemini API and Vertex AI (generateContent, streamGenerateContent, the Files API,
// Veo's long-running operations) speaking their REST protocol, so tests drive the real
// @google/genai client. Scenario controls decide what each call answers; counters tell what was
// called. A streamed answer is Server-Sent Events, `data: <GenerateContentResponse JSON>` each,
// the usage counts complete on the last one and no end marker; an error before the stream
// begins is the HTTP error generateContent answers, one after it an `error` object in an event.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** An HTTP error the fake answers with, in Google's error format. */
export interface FakeFailure {
  status: 400 | 403 | 404 | 409 | 422 | 429 | 500 | 503;
  /** The error's message; `fake <STATUS>` by default. */
  message?: string;
  /** Sent as google.rpc.RetryInfo, e.g. "1s". */
  retryDelay?: string;
}

type ImmediateAnswer =
  | { kind: 'valid' }
  | { kind: 'text'; text: string }
  /** The prompt blocked: `promptFeedback.blockReason` SAFETY, no candidates. */
  | { kind: 'blocked' };

/**
 * `hang` never answers; `held` answers `then` once `until` settles (or the client gives up).
 * The others are streamed answers only: `unsafe` begins, then stops with `finishReason`
 * SAFETY; `unfinished` streams a valid answer and sends its last event (`finishReason` STOP,
 * no text) once `until` settles; `stall` streams `text` then nothing more; `endless` streams
 * without end; `stream-error` streams `text`, then the failure as an event.
 */
export type AnalysisAnswer =
  | ImmediateAnswer
  | { kind: 'hang' }
  | { kind: 'held'; until: Promise<unknown>; then: ImmediateAnswer }
  | { kind: 'unsafe' }
  | { kind: 'unfinished'; until: Promise<unknown> }
  | { kind: 'stall'; text: string }
  | { kind: 'endless' }
  | { kind: 'stream-error'; text: string; failure: FakeFailure };

export type GenerationOutcome =
  | { kind: 'success' }
  | { kind: 'error'; message: string }
  | { kind: 'filtered'; reasons: string[] };

export interface FakeGoogleScenario {
  /** Added before every answer. */
  latencyMs: number;
  /**
   * Failures answered by the next model calls, in order: generateContent (analyses) and
   * streamGenerateContent (AI generations) alike, before a stream begins.
   */
  analysisFailures: FakeFailure[];
  /** Answers of the next model calls (either method), in order; a valid answer when empty. */
  analysisAnswers: AnalysisAnswer[];
  /** Characters in each piece of a streamed answer. */
  pieceChars: number;
  /** Pause before each piece of a streamed answer. */
  pieceDelayMs: number;
  /** Failures answered by the next predictLongRunning calls. */
  startFailures: FakeFailure[];
  /** While set, predictLongRunning calls are never answered: the client gives up on them. */
  holdStarts: boolean;
  /**
   * How long a predictLongRunning call that Veo accepted (its operation made and paid for) waits
   * before its answer is sent: a client that gives up meanwhile never learns the operation.
   */
  startAnswerDelayMs: number;
  /** Failures answered by the next fetchPredictOperation calls. */
  pollFailures: FakeFailure[];
  /** Polls answered "not done" before an operation is done. */
  pollsBeforeDone: number;
  /** Added before every answer to fetchPredictOperation: a Veo slow to say how a generation goes. */
  pollLatencyMs: number;
  /**
   * An operation also answers "not done" until this long after it was accepted: a slow Veo,
   * whose generations take their time however often they are looked at.
   */
  generationMs: number;
  /** What the next operations end with, in order; success when empty. */
  generationOutcomes: GenerationOutcome[];
  /** Size of the generated video written to Cloud Storage (random bytes)... */
  videoBytes: number;
  /** ...unless this real video is given to write instead. */
  videoContent: Buffer | null;
  /** Files API gets answered PROCESSING before ACTIVE. */
  fileProcessingPolls: number;
  /** Whether a successful operation writes its video (false: it reports a video that is not there). */
  writeVideo: boolean;
  /**
   * While set, every model call, predictLongRunning and fetchPredictOperation call is answered
   * with these failures in turn: a provider outage (429/5xx storm) until cleared.
   */
  storm: FakeFailure[] | null;
  /** Picks a model call's answer by the request's prompt (after failures, before `analysisAnswers`). */
  answerFor: ((prompt: string) => AnalysisAnswer | undefined) | null;
  /** Picks the generated video's size per operation (default `videoBytes`). */
  videoBytesFor: ((operation: { prompt: string; storageUri: string }) => number | undefined) | null;
}

/** The two ways of asking the model: a whole answer, or one streamed as it is written. */
export type ModelMethod = 'generateContent' | 'streamGenerateContent';

/**
 * A call Google bills: a model call answered with a model response, or a Veo generation
 * accepted. Tests count these per job to prove nothing was paid for twice.
 */
export interface PaidCall {
  method: ModelMethod | 'predictLongRunning';
  /** The request's prompt text (for Veo, followed by its output URI): whose call it was. */
  subject: string;
  at: number;
}

export interface FakeGoogleCalls {
  /** Model calls for a whole answer: media analyses. */
  generateContent: number;
  /** Model calls for a streamed answer: AI generations. */
  streamGenerateContent: number;
  predictLongRunning: number;
  fetchPredictOperation: number;
  fileUploads: number;
  fileGets: number;
  fileDeletes: number;
  /** Model calls (either method) answered with `hang` that the client gave up on (closed the connection). */
  abandonedAnalyses: number;
  /** Streamed answers the client closed after they began and before their end (an abort, a cut-off). */
  abandonedStreams: number;
  /** Pieces of streamed answers sent, over all calls. */
  streamedPieces: number;
}

/** Writes a generated video where Veo would: the GCS emulator, through the real client. */
export type VideoWriter = (gcsUri: string, bytes: Buffer) => Promise<void>;

interface Operation {
  polls: number;
  /** When the submission was accepted (ms since the epoch). */
  acceptedAt: number;
  /** Whether a poll has answered `done` (the operation no longer counts as running). */
  done: boolean;
  prompt: string;
  storageUri: string;
  outcome: GenerationOutcome;
  /** Where the generation's video is (written unless `writeVideo` was off), once it is done. */
  videoUri: string | null;
  /** The video's write, once begun. */
  video: Promise<string> | null;
  /** The `durationSeconds` asked for: what Veo bills per video it returns. */
  durationSeconds: number;
}

/** A model answer's `usageMetadata`, as Gemini reports it. */
export interface UsageMetadata {
  promptTokenCount: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  totalTokenCount: number;
}

/** Tokens as Gemini counts them, roughly: 4 characters of text, 258 a media part. */
const tokensOf = (text: string) => Math.ceil(text.length / 4);
const mediaPartTokens = 258;
/** Thinking tokens the fake reports for every complete answer (billed as output). */
const fakeThoughtsTokens = 40;

function promptTokensOf(body: GenerateContentBody): number {
  const parts = body.contents.flatMap((content) => content.parts);
  return parts.reduce(
    (total, part) => total + (part.text === undefined ? mediaPartTokens : tokensOf(part.text)),
    0,
  );
}

/** The usage of a complete answer of `text` to `body`. */
function completeUsage(body: GenerateContentBody, text: string): UsageMetadata {
  const promptTokenCount = promptTokensOf(body);
  const candidatesTokenCount = tokensOf(text);
  return {
    promptTokenCount,
    candidatesTokenCount,
    thoughtsTokenCount: fakeThoughtsTokens,
    totalTokenCount: promptTokenCount + candidatesTokenCount + fakeThoughtsTokens,
  };
}

const validAnalysis = (mediaCount: number, title: string | undefined) => ({
  summary: 'A sunny day at the beach with friends, from breakfast to sunset.',
  mood: 'warm and playful',
  subjects: ['friends', 'the sea'],
  scenes: Array.from({ length: Math.max(1, mediaCount) }, (_, index) => ({
    mediaIndex: index,
    description: `Scene ${index + 1} of the day`,
  })),
  videoPrompt: `A warm, sunlit vlog of friends at the beach, handheld camera, golden hour.${
    title ? ` Title: ${title}` : ''
  }`,
});

/** The google.rpc status name of each HTTP status the fake answers with. */
const googleStatuses: Record<FakeFailure['status'], string> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  422: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** Every text part of a request, joined: what the model is asked. */
const promptOf = (body: GenerateContentBody) =>
  body.contents.flatMap((content) => content.parts.map((part) => part.text ?? '')).join('\n');

interface GenerateContentBody {
  contents: {
    parts: {
      text?: string;
      inlineData?: { mimeType?: string };
      fileData?: { mimeType?: string };
    }[];
  }[];
  generationConfig?: {
    responseJsonSchema?: { properties?: { items?: { items?: { properties?: object } } } };
  };
}

/** The image types Gemini reads: it refuses a request with any other image, as Gemini does. */
const readableImageTypes = new Set([
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/heic',
  'image/heif',
]);

/** The video types Gemini's documentation lists; it names QuickTime `video/mov`. */
const readableVideoTypes = new Set([
  'video/mp4',
  'video/mpeg',
  'video/mov',
  'video/avi',
  'video/x-flv',
  'video/mpg',
  'video/webm',
  'video/wmv',
  'video/3gpp',
]);

/** The first image or video type in the request Gemini does not read, if any. */
const unreadableMediaType = (body: GenerateContentBody) =>
  body.contents
    .flatMap((content) => content.parts)
    .map((part) => part.inlineData?.mimeType ?? part.fileData?.mimeType)
    .find(
      (type) =>
        (type?.startsWith('image/') && !readableImageTypes.has(type)) ||
        (type?.startsWith('video/') && !readableVideoTypes.has(type)),
    );

/** Items for an AI generation request, as many as it asks for (at most 3), in its schema. */
const validItems = (body: GenerateContentBody) => {
  const prompt = body.contents[0]?.parts.map((part) => part.text ?? '').join('\n') ?? '';
  const count = Math.min(3, Number(/at most (\d+)/.exec(prompt)?.[1] ?? 3));
  const itemProperties = body.generationConfig?.responseJsonSchema?.properties?.items?.items
    ?.properties as Record<string, unknown> | undefined;
  return {
    items: Array.from({ length: count }, (_, index) => ({
      title: `Step ${index + 1}`,
      description: `What step ${index + 1} involves, in a sentence.`,
      ...(itemProperties && 'estimatedMinutes' in itemProperties
        ? { estimatedMinutes: 15 * (index + 1) }
        : {}),
    })),
  };
};

/** A valid answer to what the request asks for: AI generation items, or a media analysis. */
const validAnswer = (body: GenerateContentBody) => {
  if (body.generationConfig?.responseJsonSchema?.properties?.items) return validItems(body);
  const mediaCount =
    body.contents[0]?.parts.filter((part) => part.inlineData || part.fileData).length ?? 1;
  return validAnalysis(mediaCount, /^Vlog title: (.*)$/m.exec(promptOf(body))?.[1]);
};

export class FakeGoogle {
  readonly scenario: FakeGoogleScenario = FakeGoogle.defaultScenario();

  /** Answers that make every call succeed at once. */
  static defaultScenario(): FakeGoogleScenario {
    return {
      latencyMs: 0,
      analysisFailures: [],
      analysisAnswers: [],
      startFailures: [],
      holdStarts: false,
      startAnswerDelayMs: 0,
      pollFailures: [],
      pollsBeforeDone: 1,
      pollLatencyMs: 0,
      generationMs: 0,
      generationOutcomes: [],
      videoBytes: 256 * 1024,
      videoContent: null,
      fileProcessingPolls: 1,
      writeVideo: true,
      storm: null,
      answerFor: null,
      videoBytesFor: null,
      pieceChars: 16,
      pieceDelayMs: 0,
    };
  }

  /** Back to the default answers, keeping the counters. */
  resetScenario(): void {
    Object.assign(this.scenario, FakeGoogle.defaultScenario());
  }
  readonly calls: FakeGoogleCalls = {
    generateContent: 0,
    streamGenerateContent: 0,
    predictLongRunning: 0,
    fetchPredictOperation: 0,
    fileUploads: 0,
    fileGets: 0,
    fileDeletes: 0,
    abandonedAnalyses: 0,
    abandonedStreams: 0,
    streamedPieces: 0,
  };
  /** Calls refused by a `storm`, by method. */
  readonly stormRefusalsByMethod = {
    generateContent: 0,
    streamGenerateContent: 0,
    predictLongRunning: 0,
    fetchPredictOperation: 0,
  };
  /** JSON answers sent, by HTTP status: every failure a storm served, and any error of the fake. */
  readonly responsesByStatus = new Map<number, number>();
  /** Every billed call, in order. */
  readonly paidCalls: PaidCall[] = [];
  /** The storm being served and its next failure: a new storm starts at its first failure. */
  private stormTurn = { storm: null as FakeFailure[] | null, next: 0 };
  /** Every model call's request body (either method), for assertions on what the client sent. */
  readonly analysisRequests: GenerateContentBody[] = [];
  /** The whole text of every streamed answer that ran to its end, in order. */
  readonly streamedAnswers: string[] = [];
  /** The complete `usageMetadata` of every model answer that ended, in order (what is billed). */
  readonly reportedUsage: UsageMetadata[] = [];
  /** When each predictLongRunning call arrived (ms since the epoch), to check retry delays. */
  readonly submissionTimes: number[] = [];
  /**
   * When each Veo request (predictLongRunning or fetchPredictOperation) arrived, in ms since the
   * epoch: the rate Veo saw, whatever it answered.
   */
  readonly veoRequestTimes: number[] = [];
  readonly operations = new Map<string, Operation>();
  /** The most Veo operations that ran at once (accepted, not yet reported done). */
  maxRunningOperations = 0;
  private readonly files = new Map<string, { gets: number; mimeType: string; size: number }>();
  private readonly uploads = new Map<
    string,
    { received: number; mimeType: string; displayName: string }
  >();
  private server: Server | undefined;
  url = '';

  constructor(private readonly writeVideo: VideoWriter) {}

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        this.sendJson(response, 500, {
          error: { code: 500, message: String(error), status: 'INTERNAL' },
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  /**
   * A wait before an answer that does not keep the test's process alive: an answer held for
   * minutes, whose client is gone, held a finished test file open until it was sent.
   */
  private pause(ms: number): Promise<void> {
    return delay(ms, undefined, { ref: false });
  }

  private sendJson(
    response: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) {
    if (response.headersSent) return;
    this.responsesByStatus.set(status, (this.responsesByStatus.get(status) ?? 0) + 1);
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  }

  /** Model calls of either method: every time the model was asked. */
  modelCalls(): number {
    return this.calls.generateContent + this.calls.streamGenerateContent;
  }

  /** Veo operations accepted and not yet reported done. */
  runningOperations(): number {
    return [...this.operations.values()].filter((operation) => !operation.done).length;
  }

  /**
   * The most Veo requests that arrived within any second at `ratePerSecond` (1 or more), and
   * the window they were counted in. The governor lets requests go one interval apart, but one
   * may reach the fake later than the next (the sender's database round trip, timers and event
   * loop, the HTTP hop and the fake's own event loop: up to about 400 ms at a load average of
   * 29 on 2 cores), so they are counted over windows half an interval short of a second. A
   * burst (requests let go together) still shows: its requests arrive within milliseconds.
   */
  mostVeoRequestsInASecond(ratePerSecond: number): { most: number; windowMs: number } {
    if (ratePerSecond < 1) throw new Error(`a rate of ${ratePerSecond} a second is under one`);
    const windowMs = 1_000 - 500 / ratePerSecond;
    return { most: this.mostVeoRequestsWithin(windowMs), windowMs };
  }

  /** The most Veo requests that arrived within any `windowMs` (a sliding window). */
  mostVeoRequestsWithin(windowMs: number): number {
    const times = [...this.veoRequestTimes].sort((a, b) => a - b);
    let most = 0;
    for (let first = 0, last = 0; last < times.length; last += 1) {
      while (times[last]! - times[first]! >= windowMs) first += 1;
      most = Math.max(most, last - first + 1);
    }
    return most;
  }

  /** Billed calls whose prompt (or Veo output URI) contains `text`. */
  paidCallsMentioning(text: string): PaidCall[] {
    return this.paidCalls.filter((call) => call.subject.includes(text));
  }

  /** Answers with the storm's next failure if a storm is on. */
  private refusedByStorm(
    response: ServerResponse,
    method: keyof FakeGoogle['stormRefusalsByMethod'],
  ): boolean {
    const storm = this.scenario.storm;
    if (!storm || storm.length === 0) return false;
    this.stormRefusalsByMethod[method] += 1;
    if (this.stormTurn.storm !== storm) this.stormTurn = { storm, next: 0 };
    this.sendFailure(response, storm[this.stormTurn.next++ % storm.length]!);
    return true;
  }

  private sendFailure(response: ServerResponse, failure: FakeFailure) {
    const details = failure.retryDelay
      ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: failure.retryDelay }]
      : [];
    this.sendJson(response, failure.status, {
      error: {
        code: failure.status,
        message: failure.message ?? `fake ${googleStatuses[failure.status]}`,
        status: googleStatuses[failure.status],
        details,
      },
    });
  }

  private async body(request: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const route = `${request.method} ${url.pathname}`;
    const body = await this.body(request);
    if (this.scenario.latencyMs > 0) await this.pause(this.scenario.latencyMs);

    const vertex =
      /^\/v1beta1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(\w+)$/.exec(
        url.pathname,
      );
    const gemini = /^\/v1beta\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
    if (vertex && request.headers.authorization !== 'Bearer test-token') {
      return this.sendJson(response, 401, {
        error: { code: 401, message: 'no bearer token', status: 'UNAUTHENTICATED' },
      });
    }
    if (
      (gemini || url.pathname.includes('/files')) &&
      !vertex &&
      request.headers['x-goog-api-key'] !== 'test-key'
    ) {
      return this.sendJson(response, 403, {
        error: { code: 403, message: 'bad API key', status: 'PERMISSION_DENIED' },
      });
    }
    const method = vertex?.[2] ?? gemini?.[2];
    if (
      request.method === 'POST' &&
      (method === 'generateContent' ||
        (method === 'streamGenerateContent' && url.searchParams.get('alt') === 'sse'))
    ) {
      return this.modelCall(
        method,
        JSON.parse(body.toString('utf8')) as GenerateContentBody,
        response,
        request,
      );
    }
    if (request.method === 'POST' && vertex && method === 'predictLongRunning') {
      if (this.scenario.holdStarts) {
        this.calls.predictLongRunning += 1;
        return;
      }
      return this.predictLongRunning(
        JSON.parse(body.toString('utf8')) as PredictRequest,
        url,
        response,
      );
    }
    if (request.method === 'POST' && vertex && method === 'fetchPredictOperation') {
      return this.fetchOperation(
        (JSON.parse(body.toString('utf8')) as { operationName: string }).operationName,
        response,
      );
    }
    if (request.method === 'POST' && url.pathname === '/upload/v1beta/files') {
      return this.startUpload(
        JSON.parse(body.toString('utf8')) as { file: { mimeType: string; displayName: string } },
        response,
      );
    }
    const session = /^\/upload-session\/([\w-]+)$/.exec(url.pathname);
    if (request.method === 'POST' && session)
      return this.uploadChunk(session[1]!, body, request, response);
    const file = /^\/v1beta\/files\/([\w-]+)$/.exec(url.pathname);
    if (file && request.method === 'GET') return this.getFile(file[1]!, response);
    if (file && request.method === 'DELETE') {
      this.calls.fileDeletes += 1;
      this.files.delete(file[1]!);
      return this.sendJson(response, 200, {});
    }
    this.sendJson(response, 404, {
      error: { code: 404, message: `FAKE GOOGLE: no route for ${route}`, status: 'NOT_FOUND' },
    });
  }

  private async modelCall(
    method: ModelMethod,
    body: GenerateContentBody,
    response: ServerResponse,
    request: IncomingMessage,
  ) {
    this.calls[method] += 1;
    this.analysisRequests.push(body);
    const unreadable = unreadableMediaType(body);
    if (unreadable)
      return this.sendFailure(response, {
        status: 400,
        message: `Unsupported MIME type: ${unreadable}`,
      });
    if (this.refusedByStorm(response, method)) return;
    const failure = this.scenario.analysisFailures.shift();
    if (failure) return this.sendFailure(response, failure);
    const prompt = promptOf(body);
    let answer = this.scenario.answerFor?.(prompt) ??
      this.scenario.analysisAnswers.shift() ?? { kind: 'valid' };
    if (answer.kind === 'held') {
      const abandoned = new Promise((resolve) => request.socket.once('close', resolve));
      await Promise.race([answer.until, abandoned]);
      if (request.socket.destroyed) return;
      answer = answer.then;
    }
    if (answer.kind === 'hang') {
      // Never answers; the client gives up (its abort signal or timeout) and closes the socket.
      await new Promise((resolve) => request.socket.once('close', resolve));
      this.calls.abandonedAnalyses += 1;
      return;
    }
    this.paidCalls.push({ method, subject: prompt, at: Date.now() });
    if (method === 'streamGenerateContent') return this.streamAnswer(answer, body, response);
    if (answer.kind === 'blocked') {
      return this.sendJson(response, 200, {
        promptFeedback: { blockReason: 'SAFETY' },
        modelVersion: 'fake',
      });
    }
    if (answer.kind !== 'valid' && answer.kind !== 'text') {
      throw new Error(`FAKE GOOGLE: a "${answer.kind}" answer is streamed only`);
    }
    const text = answer.kind === 'text' ? answer.text : JSON.stringify(validAnswer(body));
    const usageMetadata = completeUsage(body, text);
    this.reportedUsage.push(usageMetadata);
    this.sendJson(response, 200, {
      candidates: [
        { content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 },
      ],
      usageMetadata,
      modelVersion: 'fake',
      responseId: randomUUID(),
    });
  }

  /** A streamGenerateContent answer, as `?alt=sse` sends it: one event per GenerateContentResponse. */
  private async streamAnswer(
    answer: Exclude<AnalysisAnswer, { kind: 'hang' } | { kind: 'held' }>,
    body: GenerateContentBody,
    response: ServerResponse,
  ) {
    let ended = false;
    let clientGone = false;
    const gone = new Promise<void>((resolve) =>
      response.once('close', () => {
        clientGone = true;
        if (!ended) this.calls.abandonedStreams += 1;
        resolve();
      }),
    );
    this.responsesByStatus.set(200, (this.responsesByStatus.get(200) ?? 0) + 1);
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'content-disposition': 'attachment',
    });
    const responseId = randomUUID();
    // Chunks before the last carry the prompt's count only, as Gemini's do; the last one the
    // complete counts.
    const promptTokenCount = promptTokensOf(body);
    const usage = { promptTokenCount, totalTokenCount: promptTokenCount };
    const send = (chunk: object) =>
      response.write(
        `data: ${JSON.stringify({ ...chunk, modelVersion: 'fake', responseId })}\r\n\r\n`,
      );
    const candidate = (text: string) => ({
      content: { role: 'model', parts: [{ text }] },
      index: 0,
    });
    const stream = async (text: string) => {
      for (let at = 0; at < text.length && !clientGone; at += this.scenario.pieceChars) {
        if (this.scenario.pieceDelayMs > 0) await delay(this.scenario.pieceDelayMs);
        if (clientGone) return;
        send({
          candidates: [candidate(text.slice(at, at + this.scenario.pieceChars))],
          usageMetadata: usage,
        });
        this.calls.streamedPieces += 1;
      }
    };
    const end = (last: object) => {
      if (clientGone) return;
      ended = true;
      response.end(
        `data: ${JSON.stringify({ ...last, modelVersion: 'fake', responseId })}\r\n\r\n`,
      );
    };
    switch (answer.kind) {
      case 'blocked':
        return end({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: usage });
      case 'unsafe':
        await stream('{"items": [{"title": ');
        return end({
          candidates: [{ finishReason: 'SAFETY', index: 0 }],
          usageMetadata: completeUsage(body, '{"items": [{"title": '),
        });
      case 'stall':
        await stream(answer.text);
        return gone;
      case 'endless':
        while (!clientGone) {
          await stream('{"items": [                                                ');
          await delay(1);
        }
        return;
      case 'stream-error': {
        await stream(answer.text);
        const { failure } = answer;
        if (clientGone) return;
        ended = true;
        response.end(
          `data: ${JSON.stringify({
            error: {
              code: failure.status,
              message: `fake ${failure.status} in the stream`,
              status: googleStatuses[failure.status],
            },
          })}\r\n\r\n`,
        );
        return;
      }
      default: {
        const text = answer.kind === 'text' ? answer.text : JSON.stringify(validAnswer(body));
        await stream(text);
        if (answer.kind === 'unfinished') await Promise.race([answer.until, gone]);
        // The last event ends the answer: its finish reason and complete usage counts, no text.
        const usageMetadata = completeUsage(body, text);
        end({
          candidates: [{ ...candidate(''), finishReason: 'STOP' }],
          usageMetadata,
        });
        if (clientGone) return;
        this.streamedAnswers.push(text);
        this.reportedUsage.push(usageMetadata);
      }
    }
  }

  private async predictLongRunning(body: PredictRequest, url: URL, response: ServerResponse) {
    this.calls.predictLongRunning += 1;
    this.submissionTimes.push(Date.now());
    this.veoRequestTimes.push(Date.now());
    if (this.refusedByStorm(response, 'predictLongRunning')) return;
    const failure = this.scenario.startFailures.shift();
    if (failure) return this.sendFailure(response, failure);
    const storageUri = body.parameters?.storageUri;
    if (!storageUri) return this.sendFailure(response, { status: 400 });
    const base = url.pathname.replace(/^\/v1beta1\//, '').replace(/:predictLongRunning$/, '');
    const name = `${base}/operations/${randomUUID()}`;
    const prompt = body.instances?.map((instance) => instance.prompt ?? '').join('\n') ?? '';
    this.paidCalls.push({
      method: 'predictLongRunning',
      subject: `${prompt}\n${storageUri}`,
      at: Date.now(),
    });
    const operation: Operation = {
      polls: 0,
      acceptedAt: Date.now(),
      done: false,
      prompt,
      storageUri,
      outcome: this.scenario.generationOutcomes.shift() ?? { kind: 'success' },
      videoUri: null,
      video: null,
      durationSeconds: body.parameters?.durationSeconds ?? 8,
    };
    this.operations.set(name, operation);
    // Veo writes the video once the generation is done, whether or not anyone asks about it
    // (a client that never learned the operation finds it in the bucket).
    if (operation.outcome.kind === 'success')
      setTimeout(() => {
        this.writtenVideo(operation).catch(() => undefined);
      }, this.scenario.generationMs).unref();
    this.maxRunningOperations = Math.max(this.maxRunningOperations, this.runningOperations());
    if (this.scenario.startAnswerDelayMs > 0) await this.pause(this.scenario.startAnswerDelayMs);
    this.sendJson(response, 200, { name });
  }

  private async fetchOperation(name: string, response: ServerResponse) {
    this.calls.fetchPredictOperation += 1;
    this.veoRequestTimes.push(Date.now());
    if (this.refusedByStorm(response, 'fetchPredictOperation')) return;
    if (this.scenario.pollLatencyMs > 0) await this.pause(this.scenario.pollLatencyMs);
    const failure = this.scenario.pollFailures.shift();
    if (failure) return this.sendFailure(response, failure);
    const operation = this.operations.get(name);
    if (!operation) return this.sendFailure(response, { status: 404 });
    operation.polls += 1;
    if (
      operation.polls < this.scenario.pollsBeforeDone ||
      Date.now() - operation.acceptedAt < this.scenario.generationMs
    )
      return this.sendJson(response, 200, { name });
    operation.done = true;
    const { outcome } = operation;
    if (outcome.kind === 'error') {
      return this.sendJson(response, 200, {
        name,
        done: true,
        error: { code: 13, message: outcome.message },
      });
    }
    if (outcome.kind === 'filtered') {
      return this.sendJson(response, 200, {
        name,
        done: true,
        response: { raiMediaFilteredCount: 1, raiMediaFilteredReasons: outcome.reasons },
      });
    }
    const videoUri = await this.writtenVideo(operation);
    this.sendJson(response, 200, {
      name,
      done: true,
      response: {
        raiMediaFilteredCount: 0,
        videos: [{ gcsUri: videoUri, mimeType: 'video/mp4' }],
      },
    });
  }

  /** The generation's video, written once, the first time it is asked for. */
  private writtenVideo(operation: Operation): Promise<string> {
    operation.video ??= (async () => {
      const videoUri = `${operation.storageUri.replace(/\/?$/, '/')}sample_0.mp4`;
      if (this.scenario.writeVideo)
        await this.writeVideo(
          videoUri,
          this.scenario.videoContent ??
            randomBytes(this.scenario.videoBytesFor?.(operation) ?? this.scenario.videoBytes),
        );
      operation.videoUri = videoUri;
      return videoUri;
    })().catch((error: unknown) => {
      operation.video = null;
      throw error;
    });
    return operation.video;
  }

  private startUpload(
    body: { file: { mimeType: string; displayName: string } },
    response: ServerResponse,
  ) {
    const id = randomUUID();
    this.uploads.set(id, {
      received: 0,
      mimeType: body.file.mimeType,
      displayName: body.file.displayName,
    });
    response.writeHead(200, {
      'x-goog-upload-url': `${this.url}/upload-session/${id}`,
      'x-goog-upload-status': 'active',
    });
    response.end();
  }

  private uploadChunk(
    id: string,
    body: Buffer,
    request: IncomingMessage,
    response: ServerResponse,
  ) {
    const upload = this.uploads.get(id);
    if (!upload) return this.sendFailure(response, { status: 404 });
    upload.received += body.length;
    if (!String(request.headers['x-goog-upload-command']).includes('finalize')) {
      response.writeHead(200, { 'x-goog-upload-status': 'active' });
      response.end();
      return;
    }
    this.calls.fileUploads += 1;
    this.uploads.delete(id);
    const fileId = id.replaceAll('-', '').slice(0, 16);
    this.files.set(fileId, { gets: 0, mimeType: upload.mimeType, size: upload.received });
    this.sendJson(
      response,
      200,
      { file: this.fileResource(fileId) },
      { 'x-goog-upload-status': 'final' },
    );
  }

  private fileResource(id: string) {
    const file = this.files.get(id)!;
    return {
      name: `files/${id}`,
      uri: `${this.url}/v1beta/files/${id}`,
      mimeType: file.mimeType,
      sizeBytes: String(file.size),
      state: file.gets >= this.scenario.fileProcessingPolls ? 'ACTIVE' : 'PROCESSING',
    };
  }

  private getFile(id: string, response: ServerResponse) {
    this.calls.fileGets += 1;
    const file = this.files.get(id);
    if (!file) return this.sendFailure(response, { status: 404 });
    file.gets += 1;
    this.sendJson(response, 200, this.fileResource(id));
  }
}

interface PredictRequest {
  instances?: { prompt?: string }[];
  parameters?: { storageUri?: string; durationSeconds?: number; aspectRatio?: string };
}
