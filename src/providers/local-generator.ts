import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FailureCode } from '../jobs/failures.js';
import type { MediaRef } from '../jobs/contracts.js';
import type { VlogPlan } from '../kinds/vlog/declaration.js';
import { planVlog, renderFps } from '../media/plan.js';
import {
  MediaToolError,
  MediaToolInterrupted,
  probeMedia,
  runFfmpeg,
  uprightPhoto,
  type MediaProbe,
  type MediaTools,
} from '../media/tools.js';
import {
  mediaUri,
  parseMediaUri,
  putStreamUnlessAborted,
  type ObjectStorage,
} from '../storage/object-storage.js';
import { mediaToolFailure } from './media-tool-errors.js';
import {
  ProviderError,
  type GenerationContext,
  type VideoGenerationRequest,
  type VideoGenerationStatus,
  type VideoGenerator,
} from './types.js';
import { makeDirectory } from '../directories.js';
import type { Logger } from '../logger.js';

const operationPrefix = 'local-render:';
/** 48 kHz audio: one video frame at 30 fps is exactly 1 600 samples. */
const sampleRate = 48_000;
const samplesPerFrame = sampleRate / renderFps;

export interface LocalVideoGeneratorOptions {
  tools: MediaTools;
  /** Where renders are delivered (the media storage); `outputUri` is a `media:` prefix in it. */
  storage: ObjectStorage;
  /** Scratch folder on the worker's disk for inputs and the partial output. */
  workDir: string;
  /** Output height in pixels for 16:9 (width for 9:16). */
  height: number;
  /** Most pixels a photo may have (VLOG_MAX_IMAGE_PIXELS): a larger one is not decoded. */
  maxImagePixels: number;
}

/** One stretch of the output: the title card, a photo or one kept segment of a clip. */
type Piece =
  | { kind: 'title'; frames: number }
  | { kind: 'image'; frames: number; input: number }
  | { kind: 'video'; frames: number; input: number; startSeconds: number; hasAudio: boolean };

interface Input {
  /** Relative to the render's work folder, ffmpeg's working directory. */
  file: string;
  ref: MediaRef;
  probe: MediaProbe;
}

const even = (value: number) => Math.round(value / 2) * 2;

/**
 * Renders a vlog from its uploads with ffmpeg, following the analysis' plan: a title card,
 * photos with a slow zoom or pan, clips trimmed to their kept segments, fades through black
 * between items; H.264 + AAC MP4 at the requested aspect ratio. It renders inside `start`
 * (inside a heartbeating activity), always from scratch, and stores the result in media
 * storage for the transfer step.
 */
export class LocalVideoGenerator implements VideoGenerator {
  readonly name = 'local:ffmpeg';

  constructor(private readonly options: LocalVideoGeneratorOptions) {}

  async start(request: VideoGenerationRequest, context: GenerationContext): Promise<string> {
    const prefix = parseMediaUri(request.outputUri);
    if (prefix === null)
      throw new Error(`A local render goes to media storage, not ${request.outputUri}`);
    const key = `${prefix}video.mp4`;
    const work = path.join(this.options.workDir, prefix.split('/').filter(Boolean).join('-'));
    // A render that a dead worker left behind is never resumed: start again from nothing.
    await rm(work, { recursive: true, force: true });
    await makeDirectory(work);
    try {
      const inputs: Input[] = [];
      for (const [index, ref] of request.media.entries()) {
        const file = `input-${String(index).padStart(2, '0')}`;
        await pipeline(await context.openMedia(ref), createWriteStream(path.join(work, file)), {
          signal: context.signal,
        });
        const probe = await this.readable(path.join(work, file), ref, context.signal).catch(
          (error: unknown) => {
            throw mediaToolFailure(error, ref.name, `${ref.name} cannot be read`);
          },
        );
        inputs.push({ file, ref, probe });
      }
      const pieces = this.pieces(request, inputs);
      // The title goes in through a file: nothing in it can break the filter graph.
      await writeFile(path.join(work, 'title.txt'), request.title);
      const output = 'video.mp4';
      try {
        await runFfmpeg(this.options.tools, [...this.renderArgs(request, inputs, pieces), output], {
          totalSeconds: request.durationSeconds,
          cwd: work,
          signal: context.signal,
          onProgress: (progress) => context.progress(progress),
        });
      } catch (error) {
        if (error instanceof MediaToolError) {
          throw new ProviderError(
            FailureCode.GENERATION_FAILED,
            `ffmpeg could not render the vlog: ${error.message}`,
            false,
          );
        }
        // Killed from outside, not by what it rendered: the next attempt renders from scratch.
        if (error instanceof MediaToolInterrupted) {
          throw new ProviderError(
            FailureCode.MEDIA_PROCESSING_INTERRUPTED,
            `The render did not finish: ffmpeg was stopped by ${error.stoppedBy}`,
            true,
          );
        }
        throw error;
      }
      await putStreamUnlessAborted(
        this.options.storage,
        key,
        createReadStream(path.join(work, output)),
        'video/mp4',
        context.signal,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return `${operationPrefix}${key}`;
  }

  async check(operationName: string): Promise<VideoGenerationStatus> {
    const key = operationName.slice(operationPrefix.length);
    const stored = operationName.startsWith(operationPrefix)
      ? await this.options.storage.head(key)
      : null;
    return stored
      ? { state: 'succeeded', videoUri: mediaUri(key), mimeType: 'video/mp4' }
      : { state: 'failed', message: `the rendered video ${key} is missing` };
  }

  /** The plan as frame-exact pieces; the analysis' plan when it fits the media, else a new one. */
  /** A downloaded medium as ffmpeg renders it (a photo upright), and what ffprobe reads of it. */
  private async readable(file: string, ref: MediaRef, signal: AbortSignal): Promise<MediaProbe> {
    const { tools, maxImagePixels } = this.options;
    if (ref.kind === 'image') await uprightPhoto(tools, file, maxImagePixels, signal);
    return probeMedia(tools, file, ref.kind, signal);
  }

  private pieces(request: VideoGenerationRequest, inputs: Input[]): Piece[] {
    const total = Math.round(request.durationSeconds * renderFps);
    const planned = request.analysis?.plan;
    const fromAnalysis = planned ? piecesOf(planned, inputs, total) : null;
    if (fromAnalysis) return fromAnalysis;
    const plan = planVlog(
      inputs.map(({ ref, probe }) => ({
        kind: ref.kind,
        durationSeconds: probe.durationSeconds,
        changes: [],
        sampleFps: null,
      })),
      request.durationSeconds,
    );
    const pieces = piecesOf(plan, inputs, total);
    if (!pieces) throw new Error('The vlog plan does not fit its own media');
    return pieces;
  }

  private renderArgs(request: VideoGenerationRequest, inputs: Input[], pieces: Piece[]): string[] {
    const short = this.options.height;
    const long = even((short * 16) / 9);
    const [width, height] = request.aspectRatio === '16:9' ? [long, short] : [short, long];
    const size = `${width}x${height}`;
    const args: string[] = [];
    const filters: string[] = [];
    const inputIndex = new Map<Piece, number>();
    for (const piece of pieces) {
      if (piece.kind === 'title') continue;
      const { file } = inputs[piece.input]!;
      if (piece.kind === 'video')
        args.push('-ss', seconds(piece.startSeconds), '-t', seconds(piece.frames / renderFps));
      args.push('-i', file);
      inputIndex.set(piece, inputIndex.size);
    }
    pieces.forEach((piece, index) => {
      const n = piece.frames;
      const fadeFrames = Math.min(Math.round(renderFps * 0.3), Math.floor(n / 4));
      const fades =
        fadeFrames > 0
          ? `,fade=t=in:s=0:n=${fadeFrames},fade=t=out:s=${n - fadeFrames}:n=${fadeFrames}`
          : '';
      const finish = `setsar=1,format=yuv420p,trim=end_frame=${n},setpts=PTS-STARTPTS${fades}[v${index}]`;
      const silence = `anullsrc=r=${sampleRate}:cl=stereo,atrim=end_sample=${n * samplesPerFrame}[a${index}]`;
      if (piece.kind === 'title') {
        const fontSize = Math.round(
          Math.max(
            height / 30,
            Math.min(height / 9, (width * 0.9) / (0.55 * request.title.length)),
          ),
        );
        filters.push(
          `color=c=0x1d2433:s=${size}:r=${renderFps}:d=${seconds(n / renderFps + 1)},` +
            `drawtext=font=Sans:expansion=none:textfile=title.txt:fontcolor=white:` +
            `fontsize=${fontSize}:x=(w-text_w)/2:y=(h-text_h)/2,${finish}`,
          silence,
        );
        return;
      }
      const stream = inputIndex.get(piece)!;
      if (piece.kind === 'image') {
        // Ken Burns on one decoded frame: zoompan emits all n frames from it.
        const [zoomWidth, zoomHeight] = [even(width * 1.25), even(height * 1.25)];
        const motion =
          index % 2 === 1
            ? `z='1+0.12*on/${n}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'`
            : `z='1.12':x='(iw-iw/zoom)*on/${n}':y='ih/2-(ih/zoom/2)'`;
        filters.push(
          `[${stream}:v]trim=end_frame=1,scale=${zoomWidth}:${zoomHeight}:force_original_aspect_ratio=increase,` +
            `crop=${zoomWidth}:${zoomHeight},setsar=1,zoompan=${motion}:d=${n}:s=${size}:fps=${renderFps},${finish}`,
          silence,
        );
        return;
      }
      filters.push(
        `[${stream}:v]setpts=PTS-STARTPTS,scale=${width}:${height}:force_original_aspect_ratio=decrease,` +
          `pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2,fps=${renderFps},` +
          `tpad=stop_mode=clone:stop_duration=${seconds(n / renderFps)},${finish}`,
      );
      if (!piece.hasAudio) {
        filters.push(silence);
        return;
      }
      const fadeSeconds = fadeFrames / renderFps;
      filters.push(
        `[${stream}:a]aresample=${sampleRate},aformat=channel_layouts=stereo,asetpts=PTS-STARTPTS,apad,` +
          `atrim=end_sample=${n * samplesPerFrame}` +
          (fadeFrames > 0
            ? `,afade=t=in:d=${seconds(fadeSeconds)},afade=t=out:st=${seconds(n / renderFps - fadeSeconds)}:d=${seconds(fadeSeconds)}`
            : '') +
          `[a${index}]`,
      );
    });
    const concatInputs = pieces.map((_, index) => `[v${index}][a${index}]`).join('');
    filters.push(`${concatInputs}concat=n=${pieces.length}:v=1:a=1[v][a]`);
    return [
      ...args,
      '-filter_complex',
      filters.join(';'),
      '-map',
      '[v]',
      '-map',
      '[a]',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '23',
      '-pix_fmt',
      'yuv420p',
      '-r',
      String(renderFps),
      '-c:a',
      'aac',
      '-b:a',
      '128k',
      '-movflags',
      '+faststart',
      '-y',
    ];
  }
}

/**
 * A plan as frame-exact pieces for these inputs, or null when it does not fit them (an index
 * out of range, a clip without segments, more seconds than the vlog has). Segments are clamped
 * to the clip; the title card takes up whatever the items leave, so the total is exact.
 */
function piecesOf(plan: VlogPlan, inputs: Input[], totalFrames: number): Piece[] | null {
  const items: Piece[] = [];
  for (const item of plan.items) {
    const input = inputs[item.mediaIndex];
    if (!input) return null;
    if (input.ref.kind === 'image') {
      items.push({
        kind: 'image',
        frames: Math.round(item.seconds * renderFps),
        input: item.mediaIndex,
      });
      continue;
    }
    const duration = input.probe.durationSeconds ?? 0;
    if (item.segments.length === 0) return null;
    for (const segment of item.segments) {
      const start = Math.min(segment.startSeconds, duration);
      const frames = Math.round((Math.min(segment.endSeconds, duration) - start) * renderFps);
      if (frames <= 0) continue;
      items.push({
        kind: 'video',
        frames,
        input: item.mediaIndex,
        startSeconds: start,
        hasAudio: input.probe.hasAudio,
      });
    }
  }
  const titleFrames = totalFrames - items.reduce((sum, piece) => sum + piece.frames, 0);
  if (items.length === 0 || items.some((piece) => piece.frames <= 0) || titleFrames < 1)
    return null;
  return [{ kind: 'title', frames: titleFrames }, ...items];
}

function seconds(value: number): string {
  return value.toFixed(3);
}

/** How long a render's folder goes untouched before a starting worker takes it as abandoned. */
export const abandonedRenderMs = 10 * 60_000;

/**
 * Removes the folders of local renders that nothing has written to for `abandonedRenderMs`: a
 * worker killed mid-render leaves its folder (the inputs and part of the video), which only a
 * retry of the same attempt on this machine would remove. A live render writes into its folder
 * as ffmpeg works, so another worker's on the same data folder is newer than that.
 */
export async function removeAbandonedRenders(
  workDir: string,
  logger: Logger,
  now = Date.now(),
): Promise<void> {
  const folders = await readdir(workDir, { withFileTypes: true }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  });
  for (const folder of folders.filter((entry) => entry.isDirectory())) {
    const dir = path.join(workDir, folder.name);
    const files = await readdir(dir);
    const written = await Promise.all(
      [dir, ...files.map((file) => path.join(dir, file))].map(async (entry) =>
        stat(entry).then(
          ({ mtimeMs }) => mtimeMs,
          () => 0,
        ),
      ),
    );
    const untouchedMs = now - Math.max(...written);
    if (untouchedMs < abandonedRenderMs) continue;
    await rm(dir, { recursive: true, force: true });
    logger.info(
      { folder: dir, untouchedSeconds: Math.round(untouchedMs / 1000) },
      'removed the folder of an abandoned render',
    );
  }
}
