import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { FailureCode } from '../jobs/failures.js';
import { classifyOpenAiError } from './openai-errors.js';
import { withTimeLimit } from './time-limit.js';
import { estimatedCallUsage } from '../costs/estimates.js';
import {
  answerPiece,
  ProviderError,
  sentChars,
  type TextGenerationRequest,
  type TextGenerator,
} from './types.js';

/** The JSON Schema as a chat-completions server takes it: without the dialect marker. */
function responseSchema(schema: unknown): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema as Record<string, unknown>;
  return rest;
}

/**
 * Any server speaking OpenAI's chat-completions protocol (OpenAI, vLLM, Ollama, LM Studio,
 * llama.cpp's server) through the `openai` client. The answer is constrained to the request's
 * JSON schema with `response_format` and streamed: each piece is handed on as it arrives, and
 * reading stops (aborting the request) once the answer is longer than the request allows.
 *
 * `strict` stays off: OpenAI's strict mode refuses schema keywords (string lengths) that the
 * zod schemas use, and the answer is validated against them anyway.
 */
export class OpenAiCompatibleTextGenerator implements TextGenerator {
  readonly name: string;

  constructor(
    /** The client, once its server is there (the embedded model's starts on first use). */
    private readonly connect: () => Promise<OpenAI>,
    readonly model: string,
    /** The whole request's limit, streamed answer included (the client's own stops at headers). */
    private readonly requestTimeoutMs: number,
    /** Names the provider in `name` and messages: `openai` or `embedded`. */
    readonly provider: 'openai' | 'embedded',
    readonly notice: string | null = null,
  ) {
    this.name = `${provider}:${model}`;
  }

  async generateJson(request: TextGenerationRequest): Promise<string> {
    const what = `${this.provider === 'embedded' ? 'The embedded model' : 'The model'}'s ${request.what}`;
    const client = await this.connect().catch((error: unknown) => {
      throw new ProviderError(
        FailureCode.PROVIDER_UNAVAILABLE,
        `${what}: ${error instanceof Error ? error.message : String(error)}`,
        true,
      );
    });
    const messages: ChatCompletionMessageParam[] = [
      { role: 'system', content: request.systemInstruction },
      { role: 'user', content: request.prompt },
      ...(request.repair
        ? ([
            { role: 'assistant', content: request.repair.answer },
            { role: 'user', content: request.repair.instruction },
          ] as const)
        : []),
    ];
    let text = '';
    let finishReason: string | null = null;
    // Whether the server took the request, and whether it said what the call consumed.
    let opened = false;
    let reported = false;
    try {
      await withTimeLimit(request.signal, this.requestTimeoutMs, what, async (signal) => {
        const stream = await client.chat.completions.create(
          {
            model: this.model,
            messages,
            stream: true,
            // The last chunk then carries the call's token counts.
            stream_options: { include_usage: true },
            temperature: 0.7,
            response_format: {
              type: 'json_schema',
              json_schema: {
                name: 'answer',
                schema: responseSchema(request.responseJsonSchema),
                strict: false,
              },
            },
          },
          { signal },
        );
        opened = true;
        for await (const chunk of stream) {
          if (chunk.usage) {
            reported = true;
            request.onUsage?.({
              inputTokens: chunk.usage.prompt_tokens,
              outputTokens: chunk.usage.completion_tokens,
            });
          }
          const choice = chunk.choices[0];
          const piece = answerPiece(choice?.delta?.content, text, request.maxAnswerChars);
          if (piece) {
            text += piece;
            request.onText?.(piece);
            // Leaving the loop ends the stream, which aborts the request.
            if (text.length > request.maxAnswerChars) break;
          }
          finishReason = choice?.finish_reason ?? finishReason;
        }
      });
    } catch (error) {
      throw classifyOpenAiError(error, what);
    } finally {
      // Its usage comes in the stream's last chunk: a call cut off before it is charged so.
      if (opened && !reported) {
        request.onUsage?.(
          estimatedCallUsage({ promptChars: sentChars(request), answerChars: text.length }),
        );
      }
    }
    if (finishReason === 'content_filter') {
      throw new ProviderError(
        FailureCode.SAFETY_BLOCKED,
        `${what} was stopped by the provider's content filter`,
        false,
      );
    }
    return text;
  }
}
