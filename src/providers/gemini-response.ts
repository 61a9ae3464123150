import { FinishReason, type GenerateContentResponse } from '@google/genai';
import { FailureCode } from '../jobs/failures.js';
import { ProviderError, type TokenUsage } from './types.js';

/**
 * The tokens a Gemini answer is billed for, from its `usageMetadata`: the prompt's, and the
 * answer's with its thinking. A streamed answer repeats the counts in its chunks, the last one
 * complete; null when the response carries none.
 */
export function usageOf(response: GenerateContentResponse): TokenUsage | null {
  const usage = response.usageMetadata;
  if (!usage) return null;
  return {
    inputTokens: usage.promptTokenCount ?? 0,
    outputTokens: (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0),
  };
}

const blockingFinishReasons = new Set<string>([
  FinishReason.SAFETY,
  FinishReason.PROHIBITED_CONTENT,
  FinishReason.BLOCKLIST,
  FinishReason.IMAGE_SAFETY,
  FinishReason.SPII,
]);

/**
 * Throws a non-retryable SAFETY_BLOCKED failure when Gemini blocked the prompt or stopped the
 * answer on safety grounds: asking again would be refused again. A streamed answer says so in
 * whichever chunk it happens, so each chunk is checked.
 */
export function throwIfBlocked(response: GenerateContentResponse, what: string): void {
  const blockReason = response.promptFeedback?.blockReason;
  if (blockReason) {
    throw new ProviderError(
      FailureCode.SAFETY_BLOCKED,
      `Gemini blocked the ${what} (${blockReason})`,
      false,
    );
  }
  const finishReason = response.candidates?.[0]?.finishReason;
  if (finishReason && blockingFinishReasons.has(finishReason)) {
    throw new ProviderError(
      FailureCode.SAFETY_BLOCKED,
      `Gemini stopped the ${what} (${finishReason})`,
      false,
    );
  }
}

/** The text of a whole Gemini answer, unless it was blocked (`throwIfBlocked`). */
export function answerText(response: GenerateContentResponse, what: string): string {
  throwIfBlocked(response, what);
  return response.text ?? '';
}
