import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import type { MediaRef, VlogAnalysis } from '../../src/jobs/messages.js';
import { planVlog, renderFps } from '../../src/media/plan.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { LocalMediaAnalyzer } from '../../src/providers/local-analyzer.js';
import { ProviderError, vlogAnalysisSchema } from '../../src/providers/types.js';
import { mp4Bytes, renderTestPhoto, renderTestVideo } from '../fixtures/media.js';

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
  ): Promise<VlogAnalysis> {
    const media: MediaRef[] = files.map((file, index) => ({
      key: String(index),
      name: file.name,
      kind: file.kind,
      contentType: file.kind === 'image' ? 'image/png' : 'video/mp4',
      size: file.bytes.length,
      sha256: '',
    }));
    const text = await new LocalMediaAnalyzer(tools).analyze({
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
