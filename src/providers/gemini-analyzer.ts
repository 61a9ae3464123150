import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { FileState, type GoogleGenAI, type Part } from '@google/genai';
import { z } from 'zod';
import { FailureCode } from '../jobs/failures.js';
import type { MediaRef } from '../jobs/contracts.js';
import { photoAsPng, type MediaTools } from '../media/tools.js';
import { putStreamUnlessAborted, type ObjectStorage } from '../storage/object-storage.js';
import { answerText, usageOf } from './gemini-response.js';
import { classifyGoogleError } from './google-errors.js';
import { mediaToolFailure } from './media-tool-errors.js';
import { withTimeLimit } from './time-limit.js';
import {
  ProviderError,
  vlogAnalysisSchema,
  type AnalysisRequest,
  type MediaAnalyzer,
} from './types.js';

/** Images up to this size go inline in the request; larger media are uploaded first. */
const inlineLimitBytes = 15 * 1024 * 1024;
/** The Files API upload's request size in @google/genai: each request gets the time limit. */
const uploadChunkBytes = 8 * 1024 * 1024;
const filePollIntervalMs = 2_000;

// Measured facts and the cut are the local analyzer's: Veo renders from the prompt alone.
const responseJsonSchema = z.toJSONSchema(vlogAnalysisSchema.omit({ media: true, plan: true }));

const systemInstruction = [
  "You plan short vlogs from a person's photos and clips.",
  'Describe what the media shows, the mood and the recurring subjects, one scene per media item in',
  'the order given, and write one vivid prompt for a video model that turns them into a vlog.',
  'Answer with JSON only, following the schema.',
].join(' ');

async function readAll(stream: Readable, signal: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of addAbortSignal(signal, stream)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The photo types Gemini reads; an upload's others (GIF, AVIF) are sent to it as PNG. */
const geminiPhotoTypes = new Set([
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/heic',
  'image/heif',
]);

/**
 * The name Gemini knows an upload's video type by, where it differs: its documented list names
 * QuickTime `video/mov`, where uploads (and browsers) say `video/quicktime`.
 */
const geminiVideoTypes: Readonly<Record<string, string>> = { 'video/quicktime': 'video/mov' };

/** How the analyzer makes a photo Gemini does not read a PNG: the worker's photo decoder. */
export interface PhotoConversion {
  tools: MediaTools;
  /** Most pixels a photo may have (VLOG_MAX_IMAGE_PIXELS): a larger one is not decoded. */
  maxImagePixels: number;
}

/** A medium as it is sent: the upload itself, or a PNG made of it. */
interface SentMedium {
  ref: MediaRef;
  open: () => Promise<Readable>;
}

export type LargeMediaRoute =
  /** Gemini API: upload through the Files API and wait until the file is ACTIVE. */
  | { kind: 'files-api' }
  /** Vertex AI: copy into Cloud Storage and reference the gs:// URI. */
  | { kind: 'gcs'; storage: ObjectStorage; bucket: string; prefix: string };

/** Media analysis with Gemini vision and structured JSON output. */
export class GeminiMediaAnalyzer implements MediaAnalyzer {
  readonly name: string;

  constructor(
    private readonly ai: GoogleGenAI,
    private readonly model: string,
    /** One request's time limit (PROVIDER_REQUEST_TIMEOUT_MS). */
    private readonly requestTimeoutMs: number,
    private readonly largeMedia: LargeMediaRoute,
    /** Null: no photo decoder on this worker, so a GIF or AVIF photo fails MEDIA_UNREADABLE. */
    private readonly photos: PhotoConversion | null,
  ) {
    this.name = `gemini:${model}`;
  }

  async analyze(request: AnalysisRequest): Promise<string> {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const parts: Part[] = [];
      for (const [index, ref] of request.media.entries()) {
        parts.push({ text: `Media ${index}: ${ref.kind} "${ref.name}"` });
        parts.push(
          await this.mediaPart(request, await this.sent(request, ref, cleanups), cleanups),
        );
      }
      parts.push({ text: this.briefText(request) });
      const what = 'Gemini analysis';
      const response = await withTimeLimit(request.signal, this.requestTimeoutMs, what, (signal) =>
        this.ai.models.generateContent({
          model: this.model,
          contents: [{ role: 'user', parts }],
          config: {
            systemInstruction,
            responseMimeType: 'application/json',
            responseJsonSchema,
            temperature: 0.4,
            abortSignal: signal,
          },
        }),
      ).catch((error: unknown) => {
        throw classifyGoogleError(error, what);
      });
      const usage = usageOf(response);
      if (usage) request.onUsage?.(usage);
      return answerText(response, 'media analysis');
    } finally {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    }
  }

  private briefText({ brief }: AnalysisRequest): string {
    return [
      `Vlog title: ${brief.title}`,
      brief.prompt ? `What the author wants: ${brief.prompt}` : null,
      brief.style ? `Style: ${brief.style}` : null,
    ]
      .filter(Boolean)
      .join('\n');
  }

  /**
   * The medium as Gemini reads it: the upload under Gemini's name for its type, or for a photo
   * type it does not read, a PNG.
   */
  private async sent(
    request: AnalysisRequest,
    ref: MediaRef,
    cleanups: (() => Promise<unknown>)[],
  ): Promise<SentMedium> {
    if (ref.kind !== 'image') {
      const contentType = geminiVideoTypes[ref.contentType] ?? ref.contentType;
      return { ref: { ...ref, contentType }, open: () => request.openMedia(ref) };
    }
    if (geminiPhotoTypes.has(ref.contentType)) return { ref, open: () => request.openMedia(ref) };
    const unreadable = `Gemini reads no ${ref.contentType} photo, and ${ref.name} cannot be made a PNG`;
    if (!this.photos)
      throw new ProviderError(
        FailureCode.MEDIA_UNREADABLE,
        `${unreadable}: this worker has no photo decoder`,
        false,
      );
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-photo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'photo');
    await pipeline(await request.openMedia(ref), createWriteStream(file), {
      signal: request.signal,
    });
    request.progress(`making ${ref.name} a PNG for Gemini`);
    await photoAsPng(this.photos.tools, file, this.photos.maxImagePixels, request.signal).catch(
      (error: unknown) => {
        throw mediaToolFailure(error, ref.name, unreadable);
      },
    );
    return {
      ref: { ...ref, contentType: 'image/png', size: (await stat(file)).size },
      open: async () => createReadStream(file),
    };
  }

  private async mediaPart(
    request: AnalysisRequest,
    { ref, open }: SentMedium,
    cleanups: (() => Promise<unknown>)[],
  ): Promise<Part> {
    if (ref.kind === 'image' && ref.size <= inlineLimitBytes) {
      const bytes = await readAll(await open(), request.signal);
      return { inlineData: { mimeType: ref.contentType, data: bytes.toString('base64') } };
    }
    if (this.largeMedia.kind === 'gcs') {
      const { storage, bucket, prefix } = this.largeMedia;
      const key = `${prefix}analysis-inputs/${request.jobId}/${path.posix.basename(ref.key)}`;
      request.progress(`copying ${ref.name} to ${storage.location}`);
      await putStreamUnlessAborted(storage, key, await open(), ref.contentType, request.signal);
      cleanups.push(() => storage.delete(key));
      return { fileData: { fileUri: `gs://${bucket}/${key}`, mimeType: ref.contentType } };
    }
    return this.uploadToFilesApi(request, { ref, open }, cleanups);
  }

  private async uploadToFilesApi(
    request: AnalysisRequest,
    { ref, open }: SentMedium,
    cleanups: (() => Promise<unknown>)[],
  ): Promise<Part> {
    // The SDK uploads from a path in 8 MiB chunks, so the media never sits whole in memory.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-upload-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'media');
    await pipeline(await open(), createWriteStream(file), { signal: request.signal });
    request.progress(`uploading ${ref.name} to the Gemini Files API`);
    const uploading = `Uploading ${ref.name}`;
    const requests = Math.max(1, Math.ceil(ref.size / uploadChunkBytes));
    let uploaded = await withTimeLimit(
      request.signal,
      this.requestTimeoutMs * requests,
      uploading,
      (signal) =>
        this.ai.files.upload({
          file,
          config: { mimeType: ref.contentType, displayName: ref.name, abortSignal: signal },
        }),
    ).catch((error: unknown) => {
      throw classifyGoogleError(error, uploading);
    });
    const name = uploaded.name;
    if (!name)
      throw new ProviderError(
        FailureCode.PROVIDER_UNAVAILABLE,
        'The Files API returned no file name',
        true,
      );
    const deleting = `Deleting ${ref.name} from the Files API`;
    cleanups.push(() =>
      withTimeLimit(new AbortController().signal, this.requestTimeoutMs, deleting, (signal) =>
        this.ai.files.delete({ name, config: { abortSignal: signal } }),
      ),
    );
    const checking = `Checking ${ref.name}`;
    while (uploaded.state === FileState.PROCESSING) {
      request.progress(`waiting for the Files API to process ${ref.name}`);
      await delay(filePollIntervalMs, undefined, { signal: request.signal });
      uploaded = await withTimeLimit(request.signal, this.requestTimeoutMs, checking, (signal) =>
        this.ai.files.get({ name, config: { abortSignal: signal } }),
      ).catch((error: unknown) => {
        throw classifyGoogleError(error, checking);
      });
    }
    if (uploaded.state !== FileState.ACTIVE || !uploaded.uri) {
      throw new ProviderError(
        FailureCode.MEDIA_UNREADABLE,
        `Gemini could not process ${ref.name} (file state ${uploaded.state ?? 'unknown'})`,
        false,
      );
    }
    return { fileData: { fileUri: uploaded.uri, mimeType: ref.contentType } };
  }
}
