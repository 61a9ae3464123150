import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { defaultMaxImagePixels } from '../../src/config.js';
import type { MediaRef } from '../../src/jobs/contracts.js';
import { shownAsStored } from '../../src/media/photo-header.js';
import { findMediaTools, uprightPhoto, type MediaTools } from '../../src/media/tools.js';
import { LocalMediaAnalyzer } from '../../src/providers/local-analyzer.js';
import { LocalVideoGenerator } from '../../src/providers/local-generator.js';
import { ProviderError, vlogAnalysisSchema } from '../../src/providers/types.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';

const heicFixture = new URL('../fixtures/red-64x48.heic', import.meta.url);

/**
 * A phone's portrait photo as cameras store it: the pixels the sensor read (64×48, blue on the
 * left, red on the right) and EXIF orientation 6, "turn a quarter clockwise to view", so a
 * person sees it 48×64, blue on top and red below.
 */
async function sidewaysJpeg(): Promise<Buffer> {
  const half = await sharp({
    create: { width: 32, height: 48, channels: 3, background: '#e01010' },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width: 64, height: 48, channels: 3, background: '#1010e0' } })
    .composite([{ input: half, left: 32, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

const ref = (name: string, contentType: string, index: number): MediaRef => ({
  key: String(index),
  name,
  kind: 'image',
  contentType,
  size: 0,
  sha256: '',
});

// npm's ffmpeg ignores EXIF orientation and decodes no HEIC or AVIF photo: a local vlog made
// from a phone's photos had them on their side, or failed MEDIA_UNREADABLE.
describe('photos as phones take them, in a local vlog', () => {
  let tools: MediaTools;
  let dir: string;
  const photos: { name: string; contentType: string; bytes: Buffer }[] = [];

  before(async () => {
    const found = await findMediaTools();
    assert.ok(found);
    tools = found;
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-phone-photos-'));
    photos.push(
      { name: 'IMG_0001.JPG', contentType: 'image/jpeg', bytes: await sidewaysJpeg() },
      { name: 'IMG_0002.HEIC', contentType: 'image/heic', bytes: await readFile(heicFixture) },
      {
        name: 'IMG_0003.AVIF',
        contentType: 'image/avif',
        bytes: await sharp({
          create: { width: 64, height: 48, channels: 3, background: '#1010e0' },
        })
          .avif()
          .toBuffer(),
      },
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const openMedia = async (media: MediaRef) => Readable.from([photos[Number(media.key)]!.bytes]);

  it('measures each photo upright, HEIC and AVIF included', async () => {
    const media = photos.map((photo, index) => ref(photo.name, photo.contentType, index));
    const text = await new LocalMediaAnalyzer(tools, {
      maxImagePixels: defaultMaxImagePixels,
    }).analyze({
      jobId: 'phone-photos',
      media,
      brief: { title: 'Phone', prompt: null, style: null, durationSeconds: 8 },
      openMedia,
      progress: () => undefined,
      signal: new AbortController().signal,
    });
    const [jpeg, heic, avif] = vlogAnalysisSchema.parse(JSON.parse(text)).media!;
    assert.deepEqual([jpeg!.width, jpeg!.height, jpeg!.orientation], [48, 64, 'portrait']);
    assert.deepEqual([heic!.width, heic!.height, heic!.orientation], [64, 48, 'landscape']);
    assert.deepEqual([avif!.width, avif!.height, avif!.orientation], [64, 48, 'landscape']);
    assert.match(heic!.dominantColors[0] ?? '', /^#[d-f][0-9a-f][0-3][0-9a-f][0-3][0-9a-f]$/);
    assert.match(avif!.dominantColors[0] ?? '', /^#[0-3][0-9a-f][0-3][0-9a-f][c-f][0-9a-f]$/);
  });

  it('renders a sideways-stored photo the way it is seen', async () => {
    const storage = new LocalMediaStorage(path.join(dir, 'storage'), {
      publicUrl: 'http://127.0.0.1:1',
      secret: 'phone-photos',
    });
    const generator = new LocalVideoGenerator({
      tools,
      storage,
      workDir: path.join(dir, 'work'),
      height: 144,
      maxImagePixels: defaultMaxImagePixels,
    });
    const operation = await generator.start(
      {
        prompt: 'a vlog',
        aspectRatio: '9:16',
        durationSeconds: 4,
        outputUri: 'media:renders/phone-photos/attempt-1/',
        title: 'Phone',
        media: [ref(photos[0]!.name, photos[0]!.contentType, 0)],
        analysis: null,
      },
      { signal: new AbortController().signal, openMedia, progress: () => undefined },
    );
    const status = await generator.check(operation);
    assert.equal(status.state, 'succeeded', JSON.stringify(status));
    const video = path.join(dir, 'storage', 'renders/phone-photos/attempt-1/video.mp4');
    // The last second shows the photo alone (the title card comes first), filling the frame.
    const frame = path.join(dir, 'frame.png');
    await promisify(execFile)(tools.ffmpeg, [
      '-v',
      'error',
      '-sseof',
      '-0.5',
      '-i',
      video,
      '-frames:v',
      '1',
      '-y',
      frame,
    ]);
    const { data, info } = await sharp(frame).raw().toBuffer({ resolveWithObject: true });
    const pixel = (x: number, y: number) => {
      const at =
        (Math.round(y * (info.height - 1)) * info.width + Math.round(x * (info.width - 1))) *
        info.channels;
      return [data[at]!, data[at + 2]!] as const;
    };
    // Upright: blue on top, red below, across the whole width; on its side, blue left, red right.
    for (const x of [0.2, 0.8]) {
      const [topRed, topBlue] = pixel(x, 0.15);
      const [bottomRed, bottomBlue] = pixel(x, 0.85);
      assert.ok(topBlue > 150 && topRed < 90, `top at ${x}: red ${topRed}, blue ${topBlue}`);
      assert.ok(
        bottomRed > 150 && bottomBlue < 90,
        `bottom at ${x}: red ${bottomRed}, blue ${bottomBlue}`,
      );
    }
  });

  it('leaves a photo ffmpeg shows as it is untouched', async () => {
    const file = path.join(dir, 'upright.jpg');
    const bytes = await sharp({
      create: { width: 64, height: 48, channels: 3, background: '#808080' },
    })
      .jpeg()
      .toBuffer();
    await writeFile(file, bytes);
    await uprightPhoto(tools, file, defaultMaxImagePixels);
    assert.deepEqual(await readFile(file), bytes);
  });

  it('fails a photo it cannot decode, or one over the pixel limit, naming it', async () => {
    const broken = Buffer.concat([
      (await readFile(heicFixture)).subarray(0, 200),
      Buffer.alloc(64),
    ]);
    for (const [name, bytes, maxImagePixels, reason] of [
      ['broken.heic', broken, defaultMaxImagePixels, /^broken\.heic cannot be read as an image: /],
      [
        'IMG_0002.HEIC',
        photos[1]!.bytes,
        3_000,
        /^IMG_0002\.HEIC cannot be read as an image: the photo is 64×48, more than the 3000 pixels a photo may have$/,
      ],
    ] as const) {
      await assert.rejects(
        new LocalMediaAnalyzer(tools, { maxImagePixels }).analyze({
          jobId: 'phone-photos',
          media: [ref(name, 'image/heic', 0)],
          brief: { title: 'Phone', prompt: null, style: null, durationSeconds: 8 },
          openMedia: async () => Readable.from([bytes]),
          progress: () => undefined,
          signal: new AbortController().signal,
        }),
        (error: unknown) => {
          assert.ok(error instanceof ProviderError, String(error));
          assert.equal(error.code, 'MEDIA_UNREADABLE');
          assert.equal(error.retryable, false);
          assert.match(error.message, reason);
          return true;
        },
      );
    }
  });
});

describe('which photos the decoder is spared', () => {
  it('knows an upright JPEG or PNG from its header, and leaves every other photo to the decoder', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-photo-header-'));
    try {
      const grey = () =>
        sharp({ create: { width: 16, height: 8, channels: 3, background: '#808080' } });
      const cases: [string, Buffer, boolean][] = [
        ['jpeg, no EXIF', await grey().jpeg().toBuffer(), true],
        ['png', await grey().png().toBuffer(), true],
        ['webp', await grey().webp().toBuffer(), false],
        ['heic', await readFile(heicFixture), false],
        [
          'cut-off jpeg',
          (await grey().jpeg().withMetadata({ orientation: 1 }).toBuffer()).subarray(0, 30),
          false,
        ],
      ];
      for (let orientation = 1; orientation <= 8; orientation += 1) {
        const bytes = await grey().jpeg().withMetadata({ orientation }).toBuffer();
        cases.push([`jpeg, orientation ${orientation}`, bytes, orientation === 1]);
      }
      for (const [name, bytes, expected] of cases) {
        const file = path.join(dir, 'photo');
        await writeFile(file, bytes);
        assert.equal(await shownAsStored(file), expected, name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
