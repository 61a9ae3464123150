import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { MediaRef } from '../jobs/contracts.js';
import type { MediaFacts, VlogAnalysis, VlogPlan } from '../kinds/vlog/declaration.js';
import { brightness, dominantColors, frameChanges, motion, sceneChanges } from '../media/frames.js';
import { planVlog, type PlannableMedia } from '../media/plan.js';
import {
  defaultMediaToolTimeouts,
  probeMedia,
  sampleFrames,
  type FrameSampling,
  type MediaProbe,
  type MediaTools,
  type MediaToolTimeouts,
  uprightPhoto,
} from '../media/tools.js';
import { mediaToolFailure } from './media-tool-errors.js';
import type { AnalysisRequest, MediaAnalyzer } from './types.js';

/** Sampled frames are this small: enough for colours and motion, cheap to decode and compare. */
const sampleSize = { width: 32, height: 32 };
/** A clip is sampled at most this many times in all. */
const maxSamples = 60;
/** Clips up to this long are decoded whole, `maxDecodeFps` frames a second kept... */
const decodeWholeSeconds = 15;
const maxDecodeFps = 4;
/**
 * ...unless decoding them whole costs more pixels than 15 s of 4K at 30 frames a second: a
 * 15-s 4K clip at 120 had cost four times that, and ten of them in one upload held the media
 * slot for minutes. A clip whose container states no frame rate is taken as 30.
 */
const maxDecodedPixels = decodeWholeSeconds * 30 * 3840 * 2160;
const assumedFps = 30;
/**
 * Longer clips are sampled by seeking, which lands on keyframes: points closer than phones' usual
 * keyframe interval (about a second) would land on the same frame twice.
 */
const maxSeekFps = 1;

/** How a clip is sampled and how many samples a second that makes (null for a photo). */
export function samplingFor(
  probe: Pick<MediaProbe, 'width' | 'height' | 'durationSeconds' | 'framesPerSecond'>,
): {
  sampling: FrameSampling;
  fps: number | null;
} {
  const { durationSeconds } = probe;
  if (durationSeconds === null) return { sampling: { kind: 'still' }, fps: null };
  const decodedPixels =
    durationSeconds * (probe.framesPerSecond ?? assumedFps) * probe.width * probe.height;
  if (durationSeconds <= decodeWholeSeconds && decodedPixels <= maxDecodedPixels) {
    const fps = Math.min(maxDecodeFps, maxSamples / durationSeconds);
    return { sampling: { kind: 'decode', fps }, fps };
  }
  const fps = Math.min(maxSeekFps, maxSamples / durationSeconds);
  const count = Math.min(maxSamples, Math.floor(durationSeconds * maxSeekFps));
  const atSeconds = Array.from({ length: count }, (_, index) => index / fps);
  return { sampling: { kind: 'seek', atSeconds }, fps };
}

interface Measured {
  facts: MediaFacts;
  plannable: PlannableMedia;
}

function orientation(width: number, height: number): MediaFacts['orientation'] {
  if (width > height * 1.05) return 'landscape';
  if (height > width * 1.05) return 'portrait';
  return 'square';
}

async function measure(
  tools: MediaTools,
  { timeouts, maxImagePixels }: LocalMediaAnalyzerOptions,
  file: string,
  ref: MediaRef,
  mediaIndex: number,
  signal: AbortSignal,
): Promise<Measured> {
  try {
    if (ref.kind === 'image') {
      await uprightPhoto(tools, file, maxImagePixels, signal, timeouts.probeMs);
    }
    const probe = await probeMedia(tools, file, ref.kind, signal, timeouts.probeMs);
    const { sampling, fps: sampleFps } = samplingFor(probe);
    const frames = await sampleFrames(
      tools,
      file,
      { ...sampleSize, sampling },
      signal,
      timeouts.sampleMs,
    );
    const changes = frameChanges(frames);
    return {
      facts: {
        mediaIndex,
        kind: ref.kind,
        durationSeconds:
          probe.durationSeconds === null ? null : Math.round(probe.durationSeconds * 1000) / 1000,
        width: probe.width,
        height: probe.height,
        orientation: orientation(probe.width, probe.height),
        hasAudio: probe.hasAudio,
        brightness: brightness(frames),
        dominantColors: dominantColors(frames),
        motion: sampleFps === null ? null : motion(changes),
        sceneChangesSeconds:
          sampleFps === null ? [] : sceneChanges(changes, sampleFps).slice(0, 100),
      },
      plannable: { kind: ref.kind, durationSeconds: probe.durationSeconds, changes, sampleFps },
    };
  } catch (error) {
    throw mediaToolFailure(
      error,
      ref.name,
      `${ref.name} cannot be read as ${ref.kind === 'video' ? 'a video' : 'an image'}`,
    );
  }
}

function describeLight(value: number): string {
  if (value >= 0.6) return 'bright';
  if (value >= 0.35) return 'softly lit';
  return 'dark';
}

function describePace(value: number): string {
  if (value >= 0.08) return 'lively';
  if (value >= 0.02) return 'gentle';
  return 'still';
}

function describeItem(facts: MediaFacts, ref: MediaRef): string {
  const size = `${facts.width}×${facts.height} ${facts.orientation}`;
  const colours =
    facts.dominantColors.length > 0 ? `, colours ${facts.dominantColors.join(' ')}` : '';
  if (facts.kind === 'image')
    return `Photo "${ref.name}", ${size}, ${describeLight(facts.brightness)} (${facts.brightness})${colours}`;
  const cuts = facts.sceneChangesSeconds.length;
  return (
    `Clip "${ref.name}", ${facts.durationSeconds} s ${size}${facts.hasAudio ? ' with sound' : ', silent'}, ` +
    `${describeLight(facts.brightness)}, ${describePace(facts.motion ?? 0)} (motion ${facts.motion})${colours}` +
    (cuts > 0
      ? `, ${cuts} cut${cuts === 1 ? '' : 's'} at ${facts.sceneChangesSeconds.join(', ')} s`
      : '')
  );
}

function describeCut(plan: VlogPlan, media: MediaRef[], title: string): string {
  const items = plan.items.map((item) => {
    const ref = media[item.mediaIndex]!;
    if (item.segments.length === 0) return `"${ref.name}" for ${item.seconds} s with a slow zoom`;
    const kept = item.segments.map((s) => `${s.startSeconds}–${s.endSeconds} s`).join(', ');
    return `"${ref.name}" (${kept})`;
  });
  return `Title card "${title}" for ${plan.titleSeconds} s, then ${items.join(', then ')}; fades through black between items.`.slice(
    0,
    4_000,
  );
}

export interface LocalMediaAnalyzerOptions {
  /** Most pixels a photo may have (VLOG_MAX_IMAGE_PIXELS): a larger one is not decoded. */
  maxImagePixels: number;
  timeouts: MediaToolTimeouts;
}

/**
 * Analysis without a model: ffprobe and frames sampled with ffmpeg give each item's kind,
 * duration, size, orientation, brightness, dominant colours, motion and cuts; from those it
 * plans the cut the local generator renders. It describes only what it measured.
 */
export class LocalMediaAnalyzer implements MediaAnalyzer {
  readonly name = 'local:ffmpeg';

  private readonly options: LocalMediaAnalyzerOptions;

  constructor(
    private readonly tools: MediaTools,
    options: Pick<LocalMediaAnalyzerOptions, 'maxImagePixels'> & Partial<LocalMediaAnalyzerOptions>,
  ) {
    this.options = { timeouts: defaultMediaToolTimeouts, ...options };
  }

  async analyze(request: AnalysisRequest): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-analysis-'));
    try {
      const measured: Measured[] = [];
      for (const [index, ref] of request.media.entries()) {
        request.progress(`measuring ${ref.name}`);
        const file = path.join(dir, `media-${index}`);
        await pipeline(await request.openMedia(ref), createWriteStream(file), {
          signal: request.signal,
        });
        measured.push(await measure(this.tools, this.options, file, ref, index, request.signal));
      }
      const facts = measured.map((item) => item.facts);
      const plan = planVlog(
        measured.map((item) => item.plannable),
        request.brief.durationSeconds,
      );
      const photos = facts.filter((item) => item.kind === 'image').length;
      const clips = facts.length - photos;
      const footage = facts.reduce((sum, item) => sum + (item.durationSeconds ?? 0), 0);
      const light = facts.reduce((sum, item) => sum + item.brightness, 0) / facts.length;
      const moving = facts.filter((item) => item.motion !== null);
      const pace =
        moving.length > 0
          ? moving.reduce((sum, item) => sum + (item.motion ?? 0), 0) / moving.length
          : 0;
      const analysis: VlogAnalysis = {
        summary:
          `${photos} photo${photos === 1 ? '' : 's'} and ${clips} clip${clips === 1 ? '' : 's'}` +
          (clips > 0 ? ` (${Math.round(footage * 10) / 10} s of footage)` : '') +
          ` for "${request.brief.title}", ${describeLight(light)} overall` +
          (moving.length > 0 ? ` with ${describePace(pace)} motion.` : '.'),
        mood: `${describeLight(light)} and ${moving.length > 0 ? describePace(pace) : 'still'}`,
        subjects: [],
        scenes: facts.map((item) => ({
          mediaIndex: item.mediaIndex,
          description: describeItem(item, request.media[item.mediaIndex]!).slice(0, 1_000),
        })),
        videoPrompt: describeCut(plan, request.media, request.brief.title),
        media: facts,
        plan,
      };
      return JSON.stringify(analysis);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
