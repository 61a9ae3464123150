import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type {} from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { fileTypeFromBuffer } from 'file-type';
import type { z } from 'zod';
import type { MediaRef } from '../../../jobs/contracts.js';
import { reservedKeySuffixes, type MediaStorage } from '../../../storage/object-storage.js';
import {
  ApiError,
  schemaIssues,
  unsupportedBodyTypeError,
  validationFailed,
} from '../../../api/errors.js';
import { isStorableText, unstorableTextError } from '../../../api/plugins/storable-text.js';
import {
  acceptedMediaTypes,
  fileNameField,
  fileNameRule,
  isFileName,
  kindNamedBy,
  mediaFieldName,
  uploadFolder,
  uploadRefusals,
} from '../upload-rules.js';

/**
 * Looks at an upload's files once all are stored (`batchId` names the upload); throws an
 * ApiError to refuse them, and with them the whole request.
 */
export type MediaInspector = (batchId: string, media: MediaRef[]) => Promise<void>;

export interface ReceivedUpload {
  media: MediaRef[];
  fields: Record<string, string>;
  /** Removes every object this request stored: for a rejected request or an idempotent replay. */
  discard(): Promise<void>;
}

/** Bytes a type sniffer needs from the start of a file. */
const sampleBytes = 4_100;

/**
 * Reads the first bytes of a stream to sniff its type and returns them with a stream of the
 * whole content (sample included). An empty file yields an empty sample.
 */
async function sniff(
  stream: Readable,
): Promise<{ mime: string | undefined; content: Readable; drain(): Promise<void> }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headLength = 0;
  let ended = false;
  while (headLength < sampleBytes) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    headLength += next.value.length;
  }
  const sample = Buffer.concat(head);
  const rest = async function* () {
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      yield next.value;
  };
  return {
    mime: sample.length > 0 ? (await fileTypeFromBuffer(sample))?.mime : undefined,
    content: Readable.from(
      (async function* () {
        if (sample.length > 0) yield sample;
        yield* rest();
      })(),
    ),
    drain: async () => {
      for await (const _chunk of rest()) {
        // Read to the end so the next part of the form can be parsed.
      }
    },
  };
}

/**
 * A file name as the last part of a storage key: letters, digits, `.`, `_` and `-`, never
 * ending in a suffix storage keeps for itself (`x.partial`, a browser's half download, is
 * stored as `x_partial`).
 */
function safeName(name: string): string {
  const cleaned = (name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'file').slice(
    -80,
  );
  const reserved = reservedKeySuffixes.find((suffix) => cleaned.endsWith(suffix));
  return reserved
    ? `${cleaned.slice(0, -reserved.length)}${reserved.replaceAll('.', '_')}`
    : cleaned;
}

/**
 * @fastify/multipart's and busboy's errors as the API's own. Any other error (storage's, a
 * bug's) is returned as it is, for the error handler to log and answer 500 without its details.
 */
function multipartError(
  error: unknown,
  limits: { maxFiles: number; maxFileBytes: number },
  /** The errors the body's parser raised: a client's, to be told what is wrong with its form. */
  bodyErrors: WeakSet<object>,
  current?: string,
  /** The request's Content-Type, which a refusal of it names. */
  contentType?: string,
): unknown {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'FST_FILES_LIMIT':
      return new ApiError('TOO_MANY_FILES', uploadRefusals.tooManyFiles(limits.maxFiles));
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ApiError(
        'FILE_TOO_LARGE',
        uploadRefusals.fileTooLarge(current ?? 'a file', limits.maxFileBytes),
        current === undefined ? undefined : { file: current },
      );
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return unsupportedBodyTypeError(contentType, 'multipart/form-data');
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ApiError(
        'INVALID_MULTIPART',
        'The form has more fields than a vlog request takes',
      );
    case 'FST_PROTO_VIOLATION':
      return new ApiError('INVALID_MULTIPART', 'The form has a field name that is not allowed');
    default:
      if (error instanceof Error && (code?.startsWith('FST_') || bodyErrors.has(error))) {
        return new ApiError(
          'INVALID_MULTIPART',
          `The multipart body could not be read: ${error.message}`,
        );
      }
      return error;
  }
}

/** The parts of a request's form; an error reading them is added to `bodyErrors`. */
async function* formParts(request: FastifyRequest, bodyErrors: WeakSet<object>) {
  try {
    yield* request.parts();
  } catch (error) {
    if (error instanceof Error) bodyErrors.add(error);
    throw error;
  }
}

/**
 * busboy decodes a form's text as UTF-8 (or the charset a part declares) and turns bytes that
 * are not into U+FFFD, so a title or file name sent in another encoding would be kept garbled;
 * it is refused instead, as a JSON body's would be. A U+FFFD sent as such is refused with it:
 * once decoded, nothing tells the two apart.
 */
function isDecodedText(text: string): boolean {
  return !text.includes('\uFFFD');
}

const undecodedTextIssue = (field: string) =>
  validationFailed([
    {
      field,
      message:
        'must be UTF-8 text (or name its charset): it has bytes that are not UTF-8, shown as U+FFFD',
    },
  ]);

/**
 * Streams each uploaded file into media storage as it arrives (never buffered whole), checking
 * its type by content and hashing it on the way. Fields are collected as text, each checked
 * against its own schema as it arrives, so a bad field sent before the files refuses the
 * upload before any is read. On any error, everything stored so far is deleted before the
 * error is thrown. Rules across the form, and a look at what the files hold (a
 * MediaInspector), are the caller's once it has them.
 */
export async function receiveUpload(
  request: FastifyRequest,
  storage: MediaStorage,
  limits: { maxFiles: number; maxFileBytes: number },
  /**
   * The text fields the form may carry, each once, with its schema; any other field refuses the
   * upload. Rules across fields (one that is required) are the caller's, once all have come.
   */
  fieldSchemas: Readonly<Record<string, z.ZodType>>,
  /** Names the upload: its files are stored in its `uploadFolder`. */
  batchId: string,
): Promise<ReceivedUpload> {
  const fieldNames = Object.keys(fieldSchemas);
  const unknownField = (field: string, message: string) =>
    validationFailed([{ field: `body.${field}`, message }]);
  const batch = uploadFolder(batchId);
  const media: MediaRef[] = [];
  const fields: Record<string, string> = {};
  const discard = async () => {
    await storage.deletePrefix(batch);
  };
  let current: string | undefined;
  const bodyErrors = new WeakSet<object>();
  let file: Readable | undefined;
  try {
    for await (const part of formParts(request, bodyErrors)) {
      if (!part.fieldname) {
        if (part.type === 'file') part.file.resume();
        throw validationFailed([
          {
            field: 'body',
            message: 'a form part without a name (Content-Disposition: form-data; name="…")',
          },
        ]);
      }
      if (part.type === 'field') {
        if (part.fieldname === mediaFieldName) {
          throw unknownField(part.fieldname, 'must be a file, not text');
        }
        const schema = Object.hasOwn(fieldSchemas, part.fieldname)
          ? fieldSchemas[part.fieldname]
          : undefined;
        if (!schema) {
          throw unknownField(
            part.fieldname,
            `unknown field: a vlog upload takes ${fieldNames.join(', ')} and its files as "${mediaFieldName}"`,
          );
        }
        if (part.fieldname in fields) {
          throw validationFailed([
            { field: `body.${part.fieldname}`, message: 'given more than once' },
          ]);
        }
        if (typeof part.value === 'string' && !isStorableText(part.value)) {
          throw unstorableTextError(`body.${part.fieldname}`);
        }
        const value = typeof part.value === 'string' ? part.value : String(part.value);
        if (!isDecodedText(value)) throw undecodedTextIssue(`body.${part.fieldname}`);
        const checked = schema.safeParse(value);
        if (!checked.success) {
          const [first, ...rest] = checked.error.issues.flatMap((issue) =>
            schemaIssues(`body.${part.fieldname}`, issue),
          );
          throw validationFailed([first!, ...rest]);
        }
        fields[part.fieldname] = value;
        continue;
      }
      // The file's stream fails only when the body does (cut off, its closing boundary missing),
      // whether it is destroyed with the error (`errored`, below) or busboy only emits it.
      part.file.on('error', (error) => bodyErrors.add(error));
      if (!isStorableText(part.filename)) {
        part.file.resume();
        throw unstorableTextError(`${mediaFieldName} file name`);
      }
      if (!isDecodedText(part.filename)) {
        part.file.resume();
        throw undecodedTextIssue(`${mediaFieldName} file name`);
      }
      if (!isFileName(part.filename)) {
        part.file.resume();
        // `file` names it as sent, so a client can mark which of its files it was.
        throw validationFailed([{ field: fileNameField, message: fileNameRule }], {
          file: part.filename,
        });
      }
      const name = part.filename || `file ${media.length + 1}`;
      current = name;
      if (part.fieldname !== mediaFieldName) {
        part.file.resume();
        throw unknownField(
          part.fieldname,
          `unknown file field: send media files as "${mediaFieldName}"`,
        );
      }
      file = part.file;
      const typed = await sniff(part.file);
      const detected = typed.mime;
      const kind = detected ? acceptedMediaTypes[detected] : undefined;
      if (!detected || !kind) {
        await typed.drain();
        throw new ApiError('UNSUPPORTED_MEDIA_TYPE', uploadRefusals.notMedia(name, detected), {
          file: name,
          detected: detected ?? null,
        });
      }
      const named = kindNamedBy(name);
      if (named && named !== kind) {
        await typed.drain();
        throw new ApiError(
          'UNSUPPORTED_MEDIA_TYPE',
          uploadRefusals.namedOtherwise(name, named, detected),
          { file: name, detected },
        );
      }
      const hash = createHash('sha256');
      // Hashed as storage pulls each chunk, in one stream: a cut-off body fails the chunk
      // storage is waiting for, and a broken store stops the reading, with no second stream
      // piped alongside whose error could go unheard.
      const hashed = Readable.from(
        (async function* () {
          for await (const chunk of typed.content as AsyncIterable<Buffer>) {
            hash.update(chunk);
            yield chunk;
          }
        })(),
      );
      const key = `${batch}${String(media.length).padStart(2, '0')}-${safeName(name)}`;
      const { size } = await storage.putStream(key, hashed, detected);
      if (part.file.truncated)
        throw multipartError({ code: 'FST_REQ_FILE_TOO_LARGE' }, limits, bodyErrors, name);
      media.push({ key, name, contentType: detected, kind, size, sha256: hash.digest('hex') });
    }
  } catch (error) {
    if (file?.errored) bodyErrors.add(file.errored);
    await discard();
    throw multipartError(error, limits, bodyErrors, current, request.headers['content-type']);
  }
  return { media, fields, discard };
}
