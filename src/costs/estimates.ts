/**
 * What a job will cost, told to the client in its 202 answer and reserved against the owner's
 * budget before any work: from the request and the price table, with the models the
 * configuration selects. An estimate bounds one attempt's likely spend; the ledger's actual
 * cost replaces it when the job ends.
 */
import type { PriceBook, ProviderUsage } from './prices.js';

/** Characters a token stands for, roughly, in the prompts and answers of Gemini and GPT-class models. */
const charsPerToken = 4;
/** Tokens Gemini counts an image as (one 768×768 tile). */
const tokensPerImage = 258;
/** Tokens Gemini counts a second of video with its audio as (at its default resolution). */
const tokensPerVideoSecond = 263;
/** Seconds of each clip an analysis estimate allows for: the length of a clip is not known before it is read. */
const analysedSecondsPerClip = 60;
/** The analysis prompt, with the brief and the answer's schema. */
const analysisPromptTokens = 2_000;
/** The analysis answer (summary, scenes and the video prompt), thinking included. */
const analysisAnswerTokens = 8_000;

/**
 * What a model call cut off before the provider said what it consumed is charged: the tokens of
 * what was sent and of what came back, by their characters. The provider bills what it read
 * and wrote; a stream stopped at the answer limit, or timed out, never gets its usage chunk.
 */
export function estimatedCallUsage(sent: { promptChars: number; answerChars: number }): {
  inputTokens: number;
  outputTokens: number;
} {
  return {
    inputTokens: Math.ceil(sent.promptChars / charsPerToken),
    outputTokens: Math.ceil(sent.answerChars / charsPerToken),
  };
}

/** The model a kind's calls go to, or null when the configuration selects none. */
export interface CostedModel {
  provider: string;
  model: string;
}

const sum = (book: PriceBook, usages: ProviderUsage[]) =>
  usages.reduce((total, usage) => total + book.charge(usage).cost, 0n);

/** An AI job: one answer of the longest length accepted, to a prompt of its request's length. */
export function estimateAiJob(
  book: PriceBook,
  model: CostedModel,
  request: { promptChars: number; maxAnswerChars: number },
): bigint {
  return sum(book, [
    {
      ...model,
      inputTokens: Math.ceil(request.promptChars / charsPerToken),
      outputTokens: Math.ceil(request.maxAnswerChars / charsPerToken),
    },
  ]);
}

/** A vlog: the analysis of its media (when a model does it), and the seconds of video asked for. */
export function estimateVlog(
  book: PriceBook,
  models: { analysis: CostedModel | null; video: CostedModel },
  request: { images: number; clips: number; durationSeconds: number },
): bigint {
  const usages: ProviderUsage[] = [{ ...models.video, videoSeconds: request.durationSeconds }];
  if (models.analysis) {
    usages.push({
      ...models.analysis,
      inputTokens:
        analysisPromptTokens +
        request.images * tokensPerImage +
        request.clips * analysedSecondsPerClip * tokensPerVideoSecond,
      outputTokens: analysisAnswerTokens,
    });
  }
  return sum(book, usages);
}
