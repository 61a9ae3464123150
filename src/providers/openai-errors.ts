import { APIError } from 'openai';
import { FailureCode } from '../jobs/failures.js';
import {
  inputTooLongError,
  ProviderError,
  quotedProviderMessage,
  serverFailure,
  transportFailure,
} from './types.js';

/**
 * The provider's advice on when to try again: `retry-after-ms` (OpenAI's), else `retry-after`
 * in seconds or as an HTTP date.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Narrows to the client's own error type, with its status and headers typed. */
function isApiError(error: unknown): error is APIError {
  return error instanceof APIError;
}

/** A string field of the error body the server sent, if it has one. */
function bodyField(error: APIError, name: 'message' | 'code' | 'type'): string | undefined {
  const body: unknown = error.error;
  const value: unknown =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function providerMessage(error: APIError): string {
  return quotedProviderMessage(bodyField(error, 'message') ?? error.message);
}

/**
 * The HTTP status an error stands for. An error the server sent inside a stream (`data:
 * {"error": …}`, after a 200) has none of its own: its body may carry it (vLLM's numeric `code`,
 * a `status` field), or name a rate limit.
 */
function statusOf(error: APIError): number | undefined {
  if (error.status !== undefined) return error.status;
  const body: unknown = error.error;
  if (typeof body !== 'object' || body === null) return undefined;
  const { code, status } = body as Record<string, unknown>;
  for (const value of [status, code]) {
    const number = typeof value === 'string' ? Number(value) : value;
    if (typeof number === 'number' && Number.isInteger(number) && number >= 400 && number < 600)
      return number;
  }
  return code === 'rate_limit_exceeded' ? 429 : undefined;
}

/**
 * Whether a refusal says the request is longer than the model reads at once: OpenAI's
 * `context_length_exceeded`, llama.cpp's `exceed_context_size_error`, vLLM's "maximum context
 * length" message.
 */
function exceedsContext(error: APIError): boolean {
  return (
    bodyField(error, 'code') === 'context_length_exceeded' ||
    bodyField(error, 'type') === 'exceed_context_size_error' ||
    /maximum context length/i.test(providerMessage(error))
  );
}

/**
 * Classifies an error of the `openai` client against any OpenAI-compatible server: 429 is the
 * rate limit (with the server's retry hint), 5xx and lost connections are worth retrying, any
 * other 4xx is not and keeps the server's message. A 429 for a quota that is used up for good
 * (`insufficient_quota`, a billing matter) is a refusal, not a rate limit; a request longer
 * than the model reads is PROVIDER_INPUT_TOO_LONG.
 */
export function classifyOpenAiError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const status = isApiError(error) ? statusOf(error) : undefined;
  if (!isApiError(error) || status === undefined) {
    const message = isApiError(error) ? providerMessage(error) : transportFailure(error);
    return new ProviderError(FailureCode.PROVIDER_UNAVAILABLE, `${what}: ${message}`, true);
  }
  const message = `${what}: ${providerMessage(error)}`;
  const code = bodyField(error, 'code');
  if (status === 429 && code === 'insufficient_quota')
    return new ProviderError(FailureCode.PROVIDER_PERMISSION_DENIED, message, false);
  if (status === 429)
    return new ProviderError(
      FailureCode.PROVIDER_RATE_LIMITED,
      message,
      true,
      retryAfterMs(error.headers),
    );
  if (status >= 500) {
    return serverFailure(what, status, providerMessage(error), retryAfterMs(error.headers));
  }
  if (status === 408)
    return new ProviderError(
      FailureCode.PROVIDER_UNAVAILABLE,
      message,
      true,
      retryAfterMs(error.headers),
    );
  if (status === 401 || status === 403)
    return new ProviderError(FailureCode.PROVIDER_PERMISSION_DENIED, message, false);
  if (status === 404) return new ProviderError(FailureCode.PROVIDER_NOT_FOUND, message, false);
  if (exceedsContext(error)) return inputTooLongError(what, providerMessage(error));
  return new ProviderError(FailureCode.PROVIDER_INVALID_ARGUMENT, message, false);
}
