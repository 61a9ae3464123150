import type { GoogleGenAI } from '@google/genai';
import { answerText } from './gemini-response.js';
import { classifyGoogleError } from './google-errors.js';
import type { TextGenerationRequest, TextGenerator } from './types.js';

/** Gemini with structured output: the answer is JSON constrained to the request's schema. */
export class GeminiTextGenerator implements TextGenerator {
  readonly name: string;
  readonly provider = 'gemini';
  readonly notice = null;

  constructor(
    private readonly ai: GoogleGenAI,
    readonly model: string,
  ) {
    this.name = `gemini:${model}`;
  }

  async generateJson(request: TextGenerationRequest): Promise<string> {
    const response = await this.ai.models
      .generateContent({
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
          abortSignal: request.signal,
        },
      })
      .catch((error: unknown) => {
        throw classifyGoogleError(error, `Gemini ${request.what}`);
      });
    return answerText(response, request.what);
  }
}
