import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import type { MediaRef } from '../../src/jobs/contracts.js';
import type { VlogAnalysis } from '../../src/kinds/vlog/declaration.js';
import { brightness } from '../../src/media/frames.js';
import { planVlog, renderFps } from '../../src/media/plan.js';
import {
  findMediaTools,
  probeMedia,
  sampleFrames,
  type MediaTools,
} from '../../src/media/tools.js';
import { LocalMediaAnalyzer, samplingFor } from '../../src/providers/local-analyzer.js';
import { ProviderError, vlogAnalysisSchema } from '../../src/providers/types.js';
import { hangingMediaTools, recordingFfmpeg, signalledMediaTools } from '../fakes/media-tools.js';
import { mp4Bytes, renderTestPhoto, renderTestVideo } from '../fixtures/media.js';
import { defaultMaxImagePixels } from '../../src/config.js';

const frames = (seconds: number) => Math.round(seconds * renderFps);

describe('the local analyzer measures what the media show', () => {
  let tools: MediaTools;
  before(async () => {
    const found = await findMediaTools();
    assert.ok(found);
    tools = found;
  });

  async function analyze(
    files: { name: string; kind: 'image' | 'video'; bytes: Buffer }[],
    durationSeconds = 8,
    analyzer = new LocalMediaAnalyzer(tools, { maxImagePixels: defaultMaxImagePixels }),
  ): Promise<VlogAnalysis> {
    const media: MediaRef[] = files.map((file, index) => ({
      key: String(index),
      name: file.name,
      kind: file.kind,
      contentType: file.kind === 'image' ? 'image/png' : 'video/mp4',
      size: file.bytes.length,
      sha256: '',
    }));
    const text = await analyzer.analyze({
      jobId: 'analysis-test',
      media,
      brief: { title: 'Facts', prompt: null, style: null, durationSeconds },
      openMedia: async (ref) => Readable.from([files[Number(ref.key)]!.bytes]),
      progress: () => undefined,
      signal: new AbortController().signal,
    });
    return vlogAnalysisSchema.parse(JSON.parse(text));
  }

  it('tells bright from dark, finds the dominant colour, the orientation and the size', async () => {
    const analysis = await analyze([
      {
        name: 'white.png',
        kind: 'image',
        bytes: await renderTestPhoto(tools.ffmpeg, 'png', {
          source: 'color=c=white',
          size: '400x300',
        }),
      },
      {
        name: 'night.png',
        kind: 'image',
        bytes: await renderTestPhoto(tools.ffmpeg, 'png', {
          source: 'color=c=0x101010',
          size: '300x400',
        }),
      },
      {
        name: 'red.png',
        kind: 'image',
        bytes: await renderTestPhoto(tools.ffmpeg, 'png', { source: 'color=c=red', size: '64x64' }),
      },
    ]);
    const [white, night, red] = analysis.media!;
    assert.ok(white!.brightness > 0.95, `white: ${white!.brightness}`);
    assert.ok(night!.brightness < 0.1, `night: ${night!.brightness}`);
    assert.deepEqual(
      [white!.orientation, night!.orientation, red!.orientation],
      ['landscape', 'portrait', 'square'],
    );
    assert.deepEqual([night!.width, night!.height], [300, 400]);
    assert.match(red!.dominantColors[0] ?? '', /^#f[0-9a-f]0[0-9a-f]0[0-9a-f]$/);
    assert.equal(white!.motion, null);
    assert.equal(white!.durationSeconds, null);
  });

  it('measures a clip: duration, sound and motion', async () => {
    const [stillClip, movingClip] = await Promise.all([
      renderTestVideo(tools.ffmpeg, 2, { source: 'color=c=red', audio: true }),
      renderTestVideo(tools.ffmpeg, 2, { source: 'testsrc' }),
    ]);
    const analysis = await analyze([
      { name: 'still.mp4', kind: 'video', bytes: stillClip },
      { name: 'moving.mp4', kind: 'video', bytes: movingClip },
    ]);
    const [still, moving] = analysis.media!;
    assert.equal(still!.durationSeconds, 2);
    assert.equal(still!.hasAudio, true);
    assert.equal(moving!.hasAudio, false);
    assert.equal(still!.motion, 0);
    assert.ok((moving!.motion ?? 0) > 0, `testsrc moves: ${moving!.motion}`);
    assert.deepEqual(still!.sceneChangesSeconds, []);
  });

  it('finds where a clip cuts from one shot to another', async () => {
    const cut = await renderTestVideo(tools.ffmpeg, 4, {
      source: "color=c=black,geq=lum='if(gt(T,2),230,20)':cb=128:cr=128",
    });
    const analysis = await analyze([{ name: 'cut.mp4', kind: 'video', bytes: cut }]);
    const changes = analysis.media![0]!.sceneChangesSeconds;
    assert.equal(changes.length, 1, JSON.stringify(changes));
    assert.ok(Math.abs(changes[0]! - 2) <= 0.25, `cut at ${changes[0]} s`);
  });

  it('plans the whole requested duration, frame-exact, with clips inside their length', async () => {
    const analysis = await analyze(
      [
        {
          name: 'a.png',
          kind: 'image',
          bytes: await renderTestPhoto(tools.ffmpeg, 'png', { size: '64x64' }),
        },
        { name: 'b.mp4', kind: 'video', bytes: await renderTestVideo(tools.ffmpeg, 3) },
      ],
      6,
    );
    const plan = analysis.plan!;
    assert.deepEqual(
      plan.items.map((item) => item.mediaIndex),
      [0, 1],
    );
    const total = frames(plan.titleSeconds) + plan.items.reduce((s, i) => s + frames(i.seconds), 0);
    assert.equal(total, 6 * renderFps);
    const clip = plan.items[1]!;
    assert.equal(clip.segments.length, 1);
    assert.ok(clip.segments[0]!.endSeconds <= 3);
    assert.equal(
      frames(clip.segments[0]!.endSeconds - clip.segments[0]!.startSeconds),
      frames(clip.seconds),
    );
  });

  it('decodes a short clip whole only within the decoding budget of 15 s of 4K at 30 frames a second', async () => {
    const clip = (seconds: number, framesPerSecond: number | null, width = 3840, height = 2160) =>
      samplingFor({ durationSeconds: seconds, framesPerSecond, width, height }).sampling.kind;
    assert.equal(clip(10, 30), 'decode');
    assert.equal(clip(15, 30), 'decode');
    assert.equal(clip(15, 120), 'seek', 'four times the budget: the frames seeked, not decoded');
    assert.equal(clip(15, 120, 1920, 1080), 'decode');
    assert.equal(clip(15, null), 'decode', 'no stated rate: taken as 30');
    assert.equal(clip(16, 24, 64, 36), 'seek', 'longer than 15 s');
    assert.equal(
      samplingFor({ durationSeconds: null, framesPerSecond: null, width: 1, height: 1 }).sampling
        .kind,
      'still',
    );
    // The rate comes from the clip's own container.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-rate-'));
    try {
      const file = path.join(dir, 'clip.mp4');
      await writeFile(file, await renderTestVideo(tools.ffmpeg, 1));
      assert.equal((await probeMedia(tools, file, 'video')).framesPerSecond, 24);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('samples a long clip by seeking: 10 minutes cost the decoding of 2, and its cut is found', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-seek-'));
    try {
      const recording = await recordingFfmpeg(tools, dir);
      for (const seconds of [120, 600]) {
        const cutAt = Math.round(seconds * 0.7);
        const clip = await renderTestVideo(tools.ffmpeg, seconds, {
          size: '64x36',
          source: `color=c=black,geq=lum='if(gt(T,${cutAt}),230,20)':cb=128:cr=128`,
          keyframeSeconds: 1,
        });
        const analysis = await analyze(
          [{ name: `${seconds}s.mp4`, kind: 'video', bytes: clip }],
          8,
          new LocalMediaAnalyzer(recording.tools, { maxImagePixels: defaultMaxImagePixels }),
        );
        const facts = analysis.media![0]!;
        assert.equal(facts.durationSeconds, seconds);
        assert.equal(facts.sceneChangesSeconds.length, 1, JSON.stringify(facts));
        // Samples are `seconds / 60` apart: the cut shows between the two around it.
        const spacing = seconds / 60;
        assert.ok(
          Math.abs(facts.sceneChangesSeconds[0]! - cutAt) <= spacing,
          `cut at ${facts.sceneChangesSeconds[0]} s, made at ${cutAt} s`,
        );
      }
      // The whole clips hold 2 880 and 14 400 frames; sampling decodes one a sample.
      assert.deepEqual(await recording.decodedFrames(), [60, 60]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('seeks to each point and returns its keyframe, in order', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-seek-'));
    try {
      const file = path.join(dir, 'ramp.mp4');
      // Luma rises 3 steps a second, from 16 (black) at 0 s to 196 at 60 s; a keyframe a second.
      await writeFile(
        file,
        await renderTestVideo(tools.ffmpeg, 60, {
          size: '64x36',
          source: "color=c=black,geq=lum='16+3*T':cb=128:cr=128",
          keyframeSeconds: 1,
        }),
      );
      const atSeconds = [0, 7.5, 13, 31.2, 59];
      const frames = await sampleFrames(tools, file, {
        width: 8,
        height: 8,
        sampling: { kind: 'seek', atSeconds },
      });
      assert.equal(frames.length, atSeconds.length);
      const measured = frames.map((frame) => brightness([frame]));
      const expected = atSeconds.map((at) => (3 * Math.floor(at)) / 219);
      for (const [index, value] of measured.entries()) {
        assert.ok(
          Math.abs(value - expected[index]!) < 0.01,
          `sample at ${atSeconds[index]} s: brightness ${value}, keyframe at ${Math.floor(atSeconds[index]!)} s has ${expected[index]}`,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a tool that runs out of time as a retryable timeout naming the file and the step', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-hang-'));
    try {
      const hanging = await hangingMediaTools(tools, dir);
      const clip = await renderTestVideo(tools.ffmpeg, 1);
      const timeouts = { probeMs: 300, sampleMs: 300 };
      for (const [step, stuck] of [
        ['probe', hanging],
        ['sample frames', { ...tools, ffmpeg: hanging.ffmpeg }],
      ] as const) {
        await assert.rejects(
          analyze(
            [{ name: 'big.mp4', kind: 'video', bytes: clip }],
            8,
            new LocalMediaAnalyzer(stuck, { maxImagePixels: defaultMaxImagePixels, timeouts }),
          ),
          (error: unknown) => {
            assert.ok(error instanceof ProviderError, String(error));
            assert.equal(error.code, 'MEDIA_PROCESSING_TIMEOUT');
            assert.equal(error.retryable, true);
            assert.equal(error.message, `big.mp4: ${step} timed out after 0.3 s`);
            return true;
          },
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a tool stopped by a signal from elsewhere as a retryable interruption naming the signal, not its last words', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-signalled-'));
    try {
      const clip = await renderTestVideo(tools.ffmpeg, 1);
      const killed = await signalledMediaTools(tools, dir, 'SIGINT');
      const caught = await signalledMediaTools(tools, dir, 'exit 255');
      for (const [stopped, message] of [
        [killed, 'probe interrupted: ffprobe was stopped by signal SIGINT'],
        [
          { ...tools, ffmpeg: caught.ffmpeg },
          'sample frames interrupted: ffmpeg was stopped by a signal (SIGINT or SIGTERM, exit code 255)',
        ],
      ] as const) {
        await assert.rejects(
          analyze(
            [{ name: 'clip.mp4', kind: 'video', bytes: clip }],
            8,
            new LocalMediaAnalyzer(stopped, { maxImagePixels: defaultMaxImagePixels }),
          ),
          (error: unknown) => {
            assert.ok(error instanceof ProviderError, String(error));
            assert.equal(error.code, 'MEDIA_PROCESSING_INTERRUPTED');
            assert.equal(error.retryable, true);
            assert.equal(error.message, `clip.mp4: ${message}`);
            return true;
          },
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails on a file that only looks like a video, naming it, as a permanent error', async () => {
    await assert.rejects(
      analyze([{ name: 'fake.mp4', kind: 'video', bytes: mp4Bytes(16 * 1024) }]),
      (error: unknown) =>
        error instanceof ProviderError &&
        error.code === 'MEDIA_UNREADABLE' &&
        !error.retryable &&
        /^fake\.mp4 cannot be read as a video/.test(error.message),
    );
  });
});

describe('planVlog', () => {
  it('gives short clips all they have and the rest to the photos', () => {
    const plan = planVlog(
      [
        { kind: 'video', durationSeconds: 1, changes: [], sampleFps: null },
        { kind: 'image', durationSeconds: null, changes: [], sampleFps: null },
      ],
      8,
    );
    assert.equal(plan.items[0]!.seconds, 1);
    assert.equal(
      frames(plan.titleSeconds) + frames(1) + frames(plan.items[1]!.seconds),
      8 * renderFps,
    );
  });

  it('keeps the liveliest stretch of a clip', () => {
    // Sampled at 2 fps over 10 s: all the change is between 6 and 8 s.
    const changes = Array.from({ length: 19 }, (_, index) =>
      index >= 11 && index <= 14 ? 0.3 : 0,
    );
    const plan = planVlog([{ kind: 'video', durationSeconds: 10, changes, sampleFps: 2 }], 4);
    const [segment] = plan.items[0]!.segments;
    assert.ok(segment!.startSeconds >= 4.5 && segment!.endSeconds <= 10, JSON.stringify(segment));
    assert.ok(segment!.startSeconds <= 6 && segment!.endSeconds >= 7.5, JSON.stringify(segment));
  });

  it('leaves out items that would be on screen for less than half a second', () => {
    const photos = Array.from({ length: 20 }, () => ({
      kind: 'image' as const,
      durationSeconds: null,
      changes: [],
      sampleFps: null,
    }));
    const plan = planVlog(photos, 4);
    assert.ok(plan.items.every((item) => item.seconds >= 0.5));
    assert.ok(plan.items.length < 20);
  });
});
