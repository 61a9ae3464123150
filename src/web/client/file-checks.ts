/**
 * The checks a vlog upload's files get before they are sent: the API's own rules and messages
 * (src/kinds/vlog/upload-rules.ts), with the limits and types the API reports
 * (`GET /api/vlogs/upload-limits`). What only the bytes tell (a file named .jpg that is a
 * video) is left to the API, whose refusal the page then shows.
 */
import {
  fileNameField,
  fileNameRule,
  isFileName,
  overLimit,
  uploadRefusals,
  type MeasuredMedia,
  type MediaKind,
  type UploadLimits,
} from '../../kinds/vlog/upload-rules.js';

/** The limits and the accepted types, as the API reports them. */
export interface UploadRules extends UploadLimits {
  mediaTypes: Record<string, MediaKind>;
  extensions: Record<string, MediaKind>;
}

/** What the page knows of a picked file before reading it. */
export interface PickedFile {
  name: string;
  size: number;
  /** The browser's guess from the name; `''` when it has none. */
  type: string;
}

export interface FileProblem {
  code:
    | 'VALIDATION_FAILED'
    | 'UNSUPPORTED_MEDIA_TYPE'
    | 'FILE_TOO_LARGE'
    | 'MEDIA_RESOLUTION_TOO_HIGH'
    | 'MEDIA_TOO_LONG';
  /** Word for word what the API answers for the same file. */
  message: string;
}

function namedKind(name: string, rules: UploadRules): MediaKind | undefined {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? undefined : rules.extensions[name.slice(dot + 1).toLowerCase()];
}

/** Whether a file goes as a photo or a clip: by the browser's type, else by its name. */
export function kindOf(file: PickedFile, rules: UploadRules): MediaKind | undefined {
  return (file.type ? rules.mediaTypes[file.type] : undefined) ?? namedKind(file.name, rules);
}

/**
 * The problem of one file, or null when it may go. A file is refused when neither the browser's
 * type nor its name makes it a photo or clip the API takes (an empty file never is).
 */
export function checkFile(file: PickedFile, rules: UploadRules): FileProblem | null {
  // A name the API would not keep (a direction override, a control character, too long).
  if (!isFileName(file.name)) {
    return { code: 'VALIDATION_FAILED', message: `${fileNameField}: ${fileNameRule}` };
  }
  const typed = file.type ? rules.mediaTypes[file.type] : undefined;
  const named = namedKind(file.name, rules);
  if (file.size === 0 || (!typed && !named)) {
    // The API names the type it read from the bytes; a photo or video type is what the browser
    // would read too, anything else the API does not recognise as media at all.
    const detected = file.size > 0 && /^(image|video)\//.test(file.type) ? file.type : undefined;
    return {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: uploadRefusals.notMedia(file.name, detected),
    };
  }
  if (typed && named && typed !== named) {
    return {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: uploadRefusals.namedOtherwise(file.name, named, file.type),
    };
  }
  if (file.size > rules.maxFileBytes) {
    return {
      code: 'FILE_TOO_LARGE',
      message: uploadRefusals.fileTooLarge(file.name, rules.maxFileBytes),
    };
  }
  return null;
}

/**
 * The problem of a file the browser measured (its pixels, a clip's length), as the API words it
 * once it has read the file; null within the limits.
 */
export function checkMeasured(
  file: PickedFile,
  measured: MeasuredMedia,
  rules: UploadRules,
): FileProblem | null {
  const kind = kindOf(file, rules);
  const over = kind ? overLimit({ name: file.name, kind }, measured, rules) : null;
  return over && { code: over.code, message: over.message };
}

/** The problem of the whole selection (no file, too many), as the API words it. */
export function checkSelection(
  files: readonly PickedFile[],
  rules: UploadRules,
): { code: 'NO_MEDIA' | 'TOO_MANY_FILES'; message: string } | null {
  if (files.length === 0) return { code: 'NO_MEDIA', message: uploadRefusals.noMedia() };
  if (files.length > rules.maxFiles) {
    return { code: 'TOO_MANY_FILES', message: uploadRefusals.tooManyFiles(rules.maxFiles) };
  }
  return null;
}

/** The file input's `accept`: the types and extensions the API takes. */
export function acceptAttribute(rules: UploadRules): string {
  return [
    ...Object.keys(rules.mediaTypes),
    ...Object.keys(rules.extensions).map((extension) => `.${extension}`),
  ].join(',');
}
