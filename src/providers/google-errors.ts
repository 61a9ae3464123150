import { ApiError } from '@google/genai';
import { FailureCode } from '../jobs/failures.js';
import {
  inputTooLongError,
  ProviderError,
  quotedProviderMessage,
  serverFailure,
  transportFailure,
} from './types.js';

interface GoogleErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    details?: { '@type'?: string; retryDelay?: string }[];
  };
}

/** Gemini's refusal of a prompt longer than the model reads: "The input token count (…) exceeds the maximum number of tokens allowed (…)". */
const exceedsContext = /input token count .*exceeds the maximum/i;

/** `"26s"` or `"1.5s"` (protobuf Duration JSON) in milliseconds. */
function parseDuration(value: string | undefined): number | undefined {
  const match = value ? /^(\d+(?:\.\d+)?)s$/.exec(value) : null;
  return match?.[1] ? Math.round(Number(match[1]) * 1000) : undefined;
}

/**
 * Classifies an error from @google/genai: what failed, whether a retry can help, and how long
 * the provider asked us to wait. The SDK carries the JSON error body in `message`, whether the
 * error was the HTTP answer or came inside a stream (`generateContentStream`).
 */
export function classifyGoogleError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error;
  if (!(error instanceof ApiError)) {
    return new ProviderError(
      FailureCode.PROVIDER_UNAVAILABLE,
      `${what}: ${transportFailure(error)}`,
      true,
    );
  }
  // An HTTP error's message is the JSON body; an error sent inside a stream is the same JSON
  // after "got status: INTERNAL. ".
  let body: GoogleErrorBody = {};
  try {
    body = JSON.parse(
      error.message.slice(Math.max(0, error.message.indexOf('{'))),
    ) as GoogleErrorBody;
  } catch {
    // Not JSON: keep the text as the message.
  }
  const message = `${what}: ${quotedProviderMessage(body.error?.message ?? error.message)}`;
  const retryInfo = body.error?.details?.find((detail) =>
    detail['@type']?.endsWith('google.rpc.RetryInfo'),
  );
  switch (error.status) {
    case 400:
      return exceedsContext.test(body.error?.message ?? '')
        ? inputTooLongError(what, body.error?.message ?? error.message)
        : new ProviderError(FailureCode.PROVIDER_INVALID_ARGUMENT, message, false);
    case 401:
    case 403:
      return new ProviderError(FailureCode.PROVIDER_PERMISSION_DENIED, message, false);
    case 404:
      return new ProviderError(FailureCode.PROVIDER_NOT_FOUND, message, false);
    case 429:
      return new ProviderError(
        FailureCode.PROVIDER_RATE_LIMITED,
        message,
        true,
        parseDuration(retryInfo?.retryDelay),
      );
    default:
      // Any other refusal of the request (409, 422…) is not helped by sending it again.
      if (error.status >= 400 && error.status < 500 && error.status !== 408) {
        return new ProviderError(FailureCode.PROVIDER_INVALID_ARGUMENT, message, false);
      }
      if (error.status >= 500) {
        return serverFailure(
          what,
          error.status,
          body.error?.message ?? error.message,
          parseDuration(retryInfo?.retryDelay),
        );
      }
      return new ProviderError(
        FailureCode.PROVIDER_UNAVAILABLE,
        message,
        true,
        parseDuration(retryInfo?.retryDelay),
      );
  }
}
