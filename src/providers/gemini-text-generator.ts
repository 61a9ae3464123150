import type { GoogleGenAI } from '@google/genai';
import { throwIfBlocked, usageOf } from './gemini-response.js';
import { classifyGoogleError } from './google-errors.js';
import { withTimeLimit } from './time-limit.js';
import { estimatedCallUsage } from '../costs/estimates.js';
import {
  answerPiece,
  sentChars,
  type TextGenerationRequest,
  type TextGenerator,
  type TokenUsage,
} from './types.js';

/**
 * Gemini with structured output: the answer is JSON constrained to the request's schema,
 * streamed (`streamGenerateContent`): each piece is handed on as it arrives, and reading stops
 * (aborting the request) once the answer is longer than the request allows.
 */
export class GeminiTextGenerator implements TextGenerator {
  readonly name: string;
  readonly provider = 'gemini';
  readonly notice = null;

  constructor(
    private readonly ai: GoogleGenAI,
    readonly model: string,
    /** One request's time limit (PROVIDER_REQUEST_TIMEOUT_MS), the streamed answer included. */
    private readonly requestTimeoutMs: number,
  ) {
    this.name = `gemini:${model}`;
  }

  async generateJson(request: TextGenerationRequest): Promise<string> {
    const what = `Gemini ${request.what}`;
    let text = '';
    let usage: TokenUsage | null = null;
    let opened = false;
    try {
      await withTimeLimit(request.signal, this.requestTimeoutMs, what, async (signal) => {
        // Its own controller, so that an answer too long can be cut off too. Not
        // AbortSignal.any: @google/genai never removes its listener from the signal it is given,
        // and Node 20 keeps a combined signal with a listener for as long as it may abort.
        const answer = new AbortController();
        signal.addEventListener('abort', () => answer.abort(signal.reason), { once: true });
        const stream = await this.ai.models.generateContentStream({
          model: this.model,
          contents: [
            { role: 'user', parts: [{ text: request.prompt }] },
            ...(request.repair
              ? [
                  { role: 'model', parts: [{ text: request.repair.answer }] },
                  { role: 'user', parts: [{ text: request.repair.instruction }] },
                ]
              : []),
          ],
          config: {
            systemInstruction: request.systemInstruction,
            responseMimeType: 'application/json',
            responseJsonSchema: request.responseJsonSchema,
            temperature: 0.7,
            abortSignal: answer.signal,
          },
        });
        opened = true;
        for await (const chunk of stream) {
          usage = usageOf(chunk) ?? usage;
          throwIfBlocked(chunk, request.what);
          const piece = answerPiece(chunk.text, text, request.maxAnswerChars);
          if (piece) {
            text += piece;
            request.onText?.(piece);
            if (text.length > request.maxAnswerChars) {
              // Leaving the loop only releases the body: the abort closes the connection.
              answer.abort();
              break;
            }
          }
        }
      });
    } catch (error) {
      throw classifyGoogleError(error, what);
    } finally {
      // A stream cut off before its first usage report is charged what it was sent and wrote.
      if (!usage && opened) {
        usage = estimatedCallUsage({ promptChars: sentChars(request), answerChars: text.length });
      }
      if (usage) request.onUsage?.(usage);
    }
    return text;
  }
}
