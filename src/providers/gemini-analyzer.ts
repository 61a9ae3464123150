import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { FileState, type GoogleGenAI, type Part } from '@google/genai';
import { z } from 'zod';
import { FailureCode } from '../jobs/failures.js';
import type { MediaRef } from '../jobs/contracts.js';
import { putStreamUnlessAborted, type ObjectStorage } from '../storage/object-storage.js';
import { answerText, usageOf } from './gemini-response.js';
import { classifyGoogleError } from './google-errors.js';
import {
  ProviderError,
  vlogAnalysisSchema,
  type AnalysisRequest,
  type MediaAnalyzer,
} from './types.js';

/** Images up to this size go inline in the request; larger media are uploaded first. */
const inlineLimitBytes = 15 * 1024 * 1024;
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
    private readonly largeMedia: LargeMediaRoute,
  ) {
    this.name = `gemini:${model}`;
  }

  async analyze(request: AnalysisRequest): Promise<string> {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const parts: Part[] = [];
      for (const [index, ref] of request.media.entries()) {
        parts.push({ text: `Media ${index}: ${ref.kind} "${ref.name}"` });
        parts.push(await this.mediaPart(request, ref, cleanups));
      }
      parts.push({ text: this.briefText(request) });
      const response = await this.ai.models
        .generateContent({
          model: this.model,
          contents: [{ role: 'user', parts }],
          config: {
            systemInstruction,
            responseMimeType: 'application/json',
            responseJsonSchema,
            temperature: 0.4,
            abortSignal: request.signal,
          },
        })
        .catch((error: unknown) => {
          throw classifyGoogleError(error, 'Gemini analysis');
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

  private async mediaPart(
    request: AnalysisRequest,
    ref: MediaRef,
    cleanups: (() => Promise<unknown>)[],
  ): Promise<Part> {
    if (ref.kind === 'image' && ref.size <= inlineLimitBytes) {
      const bytes = await readAll(await request.openMedia(ref), request.signal);
      return { inlineData: { mimeType: ref.contentType, data: bytes.toString('base64') } };
    }
    if (this.largeMedia.kind === 'gcs') {
      const { storage, bucket, prefix } = this.largeMedia;
      const key = `${prefix}analysis-inputs/${request.jobId}/${path.posix.basename(ref.key)}`;
      request.progress(`copying ${ref.name} to ${storage.location}`);
      await putStreamUnlessAborted(
        storage,
        key,
        await request.openMedia(ref),
        ref.contentType,
        request.signal,
      );
      cleanups.push(() => storage.delete(key));
      return { fileData: { fileUri: `gs://${bucket}/${key}`, mimeType: ref.contentType } };
    }
    return this.uploadToFilesApi(request, ref, cleanups);
  }

  private async uploadToFilesApi(
    request: AnalysisRequest,
    ref: MediaRef,
    cleanups: (() => Promise<unknown>)[],
  ): Promise<Part> {
    // The SDK uploads from a path in 8 MiB chunks, so the media never sits whole in memory.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-upload-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'media');
    await pipeline(await request.openMedia(ref), createWriteStream(file), {
      signal: request.signal,
    });
    request.progress(`uploading ${ref.name} to the Gemini Files API`);
    let uploaded = await this.ai.files
      .upload({
        file,
        config: { mimeType: ref.contentType, displayName: ref.name, abortSignal: request.signal },
      })
      .catch((error: unknown) => {
        throw classifyGoogleError(error, `Uploading ${ref.name}`);
      });
    const name = uploaded.name;
    if (!name)
      throw new ProviderError(
        FailureCode.PROVIDER_UNAVAILABLE,
        'The Files API returned no file name',
        true,
      );
    cleanups.push(() => this.ai.files.delete({ name }));
    while (uploaded.state === FileState.PROCESSING) {
      request.progress(`waiting for the Files API to process ${ref.name}`);
      await delay(filePollIntervalMs, undefined, { signal: request.signal });
      uploaded = await this.ai.files
        .get({ name, config: { abortSignal: request.signal } })
        .catch((error: unknown) => {
          throw classifyGoogleError(error, `Checking ${ref.name}`);
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
