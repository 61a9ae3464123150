/**
 * Every error code the API answers with and every failure code a job can end with, as a
 * sentence for the person using the page. The compiler refuses a code of src/api/errors.ts or
 * src/jobs/failures.ts without its sentence, and test/unit/web-error-sentences.test.ts one of
 * docs/error-codes.md. The API's own message, which names the field or file, is shown beside it.
 */
import type { ErrorCode } from '../../api/errors.js';
import type { FailureCode } from '../../jobs/failures.js';

/** Codes of the page's own: what goes wrong before an answer arrives. */
export type PageErrorCode = 'NETWORK_ERROR' | 'UNEXPECTED_ANSWER';

export const errorSentences: Record<ErrorCode | FailureCode | PageErrorCode, string> = {
  // The API's refusals.
  VALIDATION_FAILED: 'Some of what you entered is not accepted; the details say which field.',
  INVALID_JSON:
    'The page sent a request the service could not read. Reload the page and try again.',
  INVALID_MULTIPART: 'The upload could not be read. Try sending the files again.',
  NO_MEDIA: 'Add at least one photo or clip.',
  TOO_MANY_FILES: 'That is more files than one vlog can take. Remove some and try again.',
  BAD_REQUEST: 'The service could not understand the request. Reload the page and try again.',
  INVALID_URL: 'That address is not valid.',
  MEDIA_KEY_INVALID: 'That media link is not valid.',
  TOKEN_MISSING: 'You are not signed in. Sign in with your access token.',
  TOKEN_INVALID: 'That access token is not valid. Check that you copied all of it.',
  TOKEN_EXPIRED: 'Your access token has expired. Sign in again with a new one.',
  TOKEN_NOT_YET_VALID: 'Your access token is not valid yet. Check your clock, or wait a moment.',
  TOKEN_EXPIRY_MISSING: 'That access token has no expiry, which this service does not accept.',
  TOKEN_LIFETIME_TOO_LONG:
    'That access token lasts longer than this service allows. Ask for a shorter one.',
  TOKEN_SUBJECT_INVALID: 'That access token does not name a user this service accepts.',
  TOKEN_CLAIM_INVALID: 'That access token was issued for another service.',
  BUDGET_EXCEEDED:
    'That would cost more than what is left of your spending budget. Wait for the next day or month, or ask an operator to raise it.',
  MEDIA_LINK_INVALID: 'The link to this media has expired. Reload to get a fresh one.',
  STREAM_LINK_INVALID: 'The live progress link has expired; the page asks for a new one.',
  ADMIN_REQUIRED: 'Only operators can do that.',
  NOT_FOUND: 'It could not be found: it may belong to another user, or the address is wrong.',
  ROUTE_NOT_FOUND: 'The service does not offer that. The page may be out of date: reload it.',
  METHOD_NOT_ALLOWED: 'The service does not offer that. The page may be out of date: reload it.',
  REQUEST_TIMEOUT: 'The request took too long to arrive. Check your connection and try again.',
  JOB_NOT_CANCELLABLE: 'It has already finished, so it can no longer be cancelled.',
  JOB_NOT_RETRYABLE:
    'It cannot be retried: only a failed job can, a few times, within a while of failing.',
  JOB_NOT_REDRIVABLE: 'That job cannot be started again.',
  IDEMPOTENCY_KEY_IN_USE: 'The same request is still being accepted. Wait a moment.',
  MEDIA_EXPIRED: 'This media was deleted at the end of its retention period.',
  PAYLOAD_TOO_LARGE: 'That is more text than the service accepts. Shorten it and try again.',
  FILE_TOO_LARGE: 'A file is larger than the service accepts. Remove it or send a smaller one.',
  URL_TOO_LONG: 'That address is too long.',
  UNSUPPORTED_MEDIA_TYPE: 'A file is not a photo or a clip the service can use.',
  RANGE_NOT_SATISFIABLE: 'The player asked for a part of the video that does not exist. Reload it.',
  EXPECTATION_FAILED:
    'The service could not understand the request. Reload the page and try again.',
  IDEMPOTENCY_KEY_REUSED:
    'That request conflicts with an earlier one. Reload the page and try again.',
  MEDIA_TOO_LONG: 'A clip is longer than the service accepts. Trim it and try again.',
  MEDIA_INSPECTION_TIMEOUT:
    'A file took too long to read to be checked. Save it again from the app that made it, then try again.',
  MEDIA_RESOLUTION_TOO_HIGH:
    'A photo or clip is larger in pixels than the service accepts. Scale it down and try again.',
  TOO_MANY_REQUESTS: 'You are sending requests too fast. Wait a moment and try again.',
  TOO_MANY_JOBS_IN_FLIGHT: 'You have as many jobs running as you may. Wait for one to finish.',
  CLIENT_CLOSED_REQUEST: 'The request was stopped as the connection closed. Send it again.',
  TOO_MANY_UPLOADS:
    'You are uploading as many vlogs at once as you may. Wait for one to finish, then send this again.',
  TOO_MANY_STREAMS:
    'You are following as many jobs live as you may. Close another tab, or wait: this one still updates.',
  HEADERS_TOO_LARGE: 'The request was too large to read. Sign in again and retry.',
  INTERNAL_ERROR: 'Something went wrong on our side. Try again in a moment.',
  NOT_READY: 'The service is starting or is not ready. Try again in a moment.',
  SHUTTING_DOWN: 'The service is restarting. Try again in a moment.',
  TEMPORAL_UNAVAILABLE: 'The service cannot start or control jobs just now. Try again in a moment.',
  JOB_CONTROL_TIMEOUT: 'The service did not confirm in time. Try again in a moment.',
  DATABASE_UNAVAILABLE: 'The service cannot reach its database just now. Try again in a moment.',
  VIDEO_PROVIDER_NOT_CONFIGURED:
    'Vlogs cannot be made on this service just now: it is not set up for them.',
  AI_PROVIDER_NOT_CONFIGURED: 'Planning with AI is turned off on this service.',
  AUTH_UNAVAILABLE: 'Sign-in cannot be checked just now. Try again in a moment.',
  STREAM_CAPACITY_REACHED: 'The service is busy following jobs live. This one still updates.',
  MEDIA_INSPECTION_UNAVAILABLE:
    'Your files could not be checked just now, so nothing was kept. Send them again in a moment.',
  // Why a job failed.
  INVALID_INPUT: 'The job could not be done with what was given.',
  MEDIA_UNREADABLE:
    'One of the files could not be read. Check it plays or opens, then try with another copy.',
  MEDIA_PROCESSING_TIMEOUT: 'A file took too long to process.',
  MEDIA_PROCESSING_INTERRUPTED: 'Processing the files was interrupted every time it was tried.',
  SAFETY_BLOCKED: 'The content was refused on safety grounds.',
  CONTENT_FILTERED: 'The generated video was removed by a content filter (you are not charged).',
  PROVIDER_INVALID_ARGUMENT: 'The AI provider refused the request.',
  PROVIDER_INPUT_TOO_LONG:
    'What was given is too long for the AI model to read. Shorten it and try again.',
  PROVIDER_PERMISSION_DENIED:
    'The service is not allowed to use its AI provider (access or billing).',
  PROVIDER_NOT_FOUND: 'The AI model the service is set up with does not exist.',
  PROVIDER_NOT_CONFIGURED: 'The service is not fully set up for this kind of job.',
  PROVIDER_RATE_LIMITED: 'The AI provider is busy; it was asked again several times without luck.',
  PROVIDER_UNAVAILABLE:
    'The AI provider did not answer; it was asked again several times without luck.',
  INVALID_PROVIDER_OUTPUT:
    'The AI model gave answers that could not be used, even when asked again.',
  GENERATION_FAILED: 'Making the video failed.',
  TRANSFER_FAILED: 'The finished video could not be delivered.',
  VLOG_DEADLINE_EXCEEDED: 'Making the vlog took longer than allowed.',
  JOB_TIMEOUT: 'The job took longer than allowed.',
  CANCELLED: 'It was cancelled.',
  JOB_FAILED: 'The job failed.',
  WORKFLOW_TERMINATED: 'The job was stopped by an operator.',
  WORKFLOW_TIMED_OUT: 'The job ran out of time.',
  WORKFLOW_NOT_FOUND: 'The job’s records are gone, so it cannot go on.',
  // The page's own.
  // Said of a button's request as well as of a view that asks again: the detail tells which.
  NETWORK_ERROR: 'The service cannot be reached. Check your connection.',
  UNEXPECTED_ANSWER: 'The service gave an answer the page does not understand. Reload the page.',
};

/** The sentence for a code; an unknown code (a newer service) still gets one. */
export function sentenceFor(code: string): string {
  return (
    (errorSentences as Record<string, string | undefined>)[code] ??
    'Something went wrong. Try again in a moment.'
  );
}
