import { FailureCode } from '../jobs/failures.js';
import { MediaToolError, MediaToolInterrupted, MediaToolTimeout } from '../media/tools.js';
import { ProviderError } from './types.js';

/**
 * A local provider's failure for what ffmpeg or ffprobe threw while reading the medium `name`:
 * a file the tool refused fails for good with `unreadable` (which names it); a time limit or an
 * interruption says nothing about the file, so the step is tried again. Anything else is
 * returned as it is.
 */
export function mediaToolFailure(error: unknown, name: string, unreadable: string): unknown {
  if (error instanceof MediaToolError) {
    return new ProviderError(
      FailureCode.MEDIA_UNREADABLE,
      `${unreadable}: ${error.message}`,
      false,
    );
  }
  if (error instanceof MediaToolTimeout) {
    return new ProviderError(
      FailureCode.MEDIA_PROCESSING_TIMEOUT,
      `${name}: ${error.message}`,
      true,
    );
  }
  if (error instanceof MediaToolInterrupted) {
    return new ProviderError(
      FailureCode.MEDIA_PROCESSING_INTERRUPTED,
      `${name}: ${error.message}`,
      true,
    );
  }
  return error;
}
