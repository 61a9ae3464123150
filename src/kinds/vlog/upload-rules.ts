/**
 * What a vlog upload may hold, and the words a refusal uses. Pure, so that the API that
 * enforces the rules and the web page that checks files before sending them (src/web) say the
 * same thing; the numbers themselves are configuration, which the page reads from
 * `GET /api/vlogs/upload-limits`.
 */

export type MediaKind = 'image' | 'video';

/** The multipart field that carries the files. */
export const mediaFieldName = 'media';

/** Longest file name kept: what most file systems allow. */
const maxFileNameLength = 255;

/**
 * What no file name fit to show may hold: control characters (a terminal escape, a line break
 * in a log line), Unicode's line and paragraph separators, and the direction overrides and
 * isolates that make a name read otherwise than it is (`clip\u202Egnp.exe` reads as
 * `clipexe.png`).
 */
const unshowableInFileName = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

/** Whether a file name is fit to keep and show back (in job views, the web page, logs). */
export function isFileName(name: string): boolean {
  return name.length <= maxFileNameLength && !unshowableInFileName.test(name);
}

/** The field a refused file name is reported under, and the rule it broke. */
export const fileNameField = `${mediaFieldName} file name`;
export const fileNameRule = `must be at most ${maxFileNameLength} characters, none of them a control character, a line or paragraph separator or a direction override`;

/** Where the files of one upload request are stored, whatever became of the request. */
export function uploadFolder(batchId: string): string {
  return `uploads/${batchId}/`;
}

/** What may be uploaded, decided by the bytes themselves, never by the name or declared type. */
export const acceptedMediaTypes: Readonly<Record<string, MediaKind>> = {
  'image/jpeg': 'image',
  'image/png': 'image',
  'image/webp': 'image',
  'image/gif': 'image',
  'image/heic': 'image',
  'image/heif': 'image',
  'image/avif': 'image',
  'video/mp4': 'video',
  'video/quicktime': 'video',
  'video/webm': 'video',
};

/** File name extensions that say what a file is; a file whose content says otherwise is refused. */
export const mediaExtensionKinds: Readonly<Record<string, MediaKind>> = {
  jpg: 'image',
  jpeg: 'image',
  png: 'image',
  webp: 'image',
  gif: 'image',
  heic: 'image',
  heif: 'image',
  avif: 'image',
  mp4: 'video',
  m4v: 'video',
  mov: 'video',
  webm: 'video',
};

/** The configured limits of one upload and of each file in it. */
export interface UploadLimits {
  /** Most files in one vlog (VLOG_MAX_FILES). */
  maxFiles: number;
  /** Largest file, in bytes (VLOG_MAX_FILE_BYTES). */
  maxFileBytes: number;
  /** Longest clip, in seconds (VLOG_MAX_VIDEO_SECONDS). */
  maxVideoSeconds: number;
  /** Longest side of a clip, in pixels as displayed (VLOG_MAX_VIDEO_SIDE). */
  maxVideoSide: number;
  /** Most pixels in a photo (VLOG_MAX_IMAGE_PIXELS). */
  maxImagePixels: number;
}

/** A limit in bytes as a person reads it too: `209715200 bytes (200 MiB)`. */
function bytesInWords(bytes: number): string {
  const units = [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const;
  const [unit, size] = units.find(([, size]) => bytes >= size) ?? [];
  if (unit === undefined || size === undefined) return `${bytes} bytes`;
  return `${bytes} bytes (${Number((bytes / size).toFixed(1))} ${unit})`;
}

/** The messages of the refusals, each with the error code the API answers it with. */
export const uploadRefusals = {
  noMedia: () => `${mediaFieldName}: at least one image or video file is required`,
  tooManyFiles: (maxFiles: number) => `${mediaFieldName}: at most ${maxFiles} files per vlog`,
  fileTooLarge: (name: string, maxFileBytes: number) =>
    `${mediaFieldName}: ${name} is larger than the limit of ${bytesInWords(maxFileBytes)}`,
  notMedia: (name: string, detected: string | undefined) =>
    `${mediaFieldName}: ${name} is not an image or video (its content is ${detected ?? 'not a recognised media format'})`,
  namedOtherwise: (name: string, named: MediaKind, detected: string) =>
    `${mediaFieldName}: ${name} is named like ${named === 'video' ? 'a video' : 'an image'} but its content is ${detected}`,
  photoTooLarge: (name: string, width: number, height: number, limit: number) =>
    `${mediaFieldName}: ${name} is ${width}×${height} (${width * height} pixels), over the limit of ${limit} pixels for a photo`,
  clipTooLarge: (name: string, width: number, height: number, limit: number) =>
    `${mediaFieldName}: ${name} is ${width}×${height}, over the limit of ${limit} pixels on a clip's longest side`,
  clipTooLong: (name: string, durationSeconds: number, limit: number) =>
    `${mediaFieldName}: ${name} lasts ${Math.round(durationSeconds * 10) / 10} s, over the limit of ${limit} s for a clip`,
} as const;

/** What is measured of a photo or clip: its size as displayed and, for a clip, its length. */
export interface MeasuredMedia {
  width: number;
  height: number;
  durationSeconds: number | null;
}

/** A refusal of a measured file, with the API's error code and details. */
export type OverLimit =
  | {
      code: 'MEDIA_RESOLUTION_TOO_HIGH';
      message: string;
      details: { file: string; width: number; height: number; limit: number };
    }
  | {
      code: 'MEDIA_TOO_LONG';
      message: string;
      details: { file: string; durationSeconds: number; limit: number };
    };

/** The first limit a measured file is over, as the API refuses it; null within all of them. */
export function overLimit(
  file: { name: string; kind: MediaKind },
  { width, height, durationSeconds }: MeasuredMedia,
  limits: Pick<UploadLimits, 'maxVideoSeconds' | 'maxVideoSide' | 'maxImagePixels'>,
): OverLimit | null {
  const { name, kind } = file;
  if (kind === 'image' && width * height > limits.maxImagePixels) {
    return {
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message: uploadRefusals.photoTooLarge(name, width, height, limits.maxImagePixels),
      details: { file: name, width, height, limit: limits.maxImagePixels },
    };
  }
  if (kind === 'video' && Math.max(width, height) > limits.maxVideoSide) {
    return {
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message: uploadRefusals.clipTooLarge(name, width, height, limits.maxVideoSide),
      details: { file: name, width, height, limit: limits.maxVideoSide },
    };
  }
  if (durationSeconds !== null && durationSeconds > limits.maxVideoSeconds) {
    return {
      code: 'MEDIA_TOO_LONG',
      message: uploadRefusals.clipTooLong(name, durationSeconds, limits.maxVideoSeconds),
      details: { file: name, durationSeconds, limit: limits.maxVideoSeconds },
    };
  }
  return null;
}

/** The kind a file's name says it is, if its extension is one of `mediaExtensionKinds`. */
export function kindNamedBy(name: string): MediaKind | undefined {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? undefined : mediaExtensionKinds[name.slice(dot + 1).toLowerCase()];
}
