import { FinishReason, type GenerateContentResponse } from '@google/genai';
import { FailureCode } from '../jobs/failures.js';
import { ProviderError } from './types.js';

const blockingFinishReasons = new Set<string>([
  FinishReason.SAFETY,
  FinishReason.PROHIBITED_CONTENT,
  FinishReason.BLOCKLIST,
  FinishReason.IMAGE_SAFETY,
  FinishReason.SPII,
]);

/**
 * The text of a Gemini answer, or a non-retryable SAFETY_BLOCKED failure when the prompt was
 * blocked or the answer stopped on safety grounds: asking again would be refused again.
 */
export function answerText(response: GenerateContentResponse, what: string): string {
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
  return response.text ?? '';
}
