// `npm run bench -- photos`: what making a phone's photo ffmpeg-ready costs a local vlog, next
// to a bare ffmpeg command decoding an upright JPEG of the same size to PNG, run alternately:
// a 12-megapixel JPEG stored on its side (EXIF orientation 6) and the same photo as AVIF, each
// through `uprightPhoto` (the photo decoder's process); an upright JPEG, which only has its header
// read. HEIC is decoded by the same process (libheif); no HEIC encoder is installed to make one.
// `--repeats=N` (default 5) sets the runs of each; --smoke: a 1-megapixel photo, one run.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { defaultMaxImagePixels } from '../../../src/config.js';
import { findMediaTools, uprightPhoto } from '../../../src/media/tools.js';
import type { Scenario } from '../scenario.js';
import { median, printFigure } from '../stats.js';

export const photosScenario: Scenario = {
  name: 'photos',
  summary: 'a sideways 12 MP JPEG and an AVIF made upright PNGs ÷ ffmpeg decoding a JPEG',
  async run({ size, smoke }) {
    const repeats = size('repeats', 5, 1);
    const tools = await findMediaTools();
    if (!tools) throw new Error('No ffmpeg found');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bench-photos-'));
    try {
      const [width, height] = smoke ? [1200, 900] : [4000, 3000];
      // A photo's detail, so the encoders have something to code: noise over a gradient.
      const pixels = Buffer.alloc(width * height * 3);
      for (let at = 0; at < pixels.length; at += 1) {
        pixels[at] = ((at / 3) % width) / 16 + ((at * 2654435761) >>> 28);
      }
      const photo = () => sharp(pixels, { raw: { width, height, channels: 3 } });
      const originals = {
        upright: path.join(dir, 'upright.jpg'),
        sideways: path.join(dir, 'sideways.jpg'),
        avif: path.join(dir, 'photo.avif'),
      };
      await photo().jpeg({ quality: 90 }).toFile(originals.upright);
      await photo()
        .jpeg({ quality: 90 })
        .withMetadata({ orientation: 6 })
        .toFile(originals.sideways);
      await photo().avif({ quality: 60 }).toFile(originals.avif);

      const run = promisify(execFile);
      const bare = async () => {
        const started = performance.now();
        await run(tools.ffmpeg, [
          ...['-hide_banner', '-loglevel', 'error', '-y', '-i', originals.upright],
          ...['-frames:v', '1', path.join(dir, 'bare.png')],
        ]);
        return (performance.now() - started) / 1000;
      };
      const upright = async (original: string) => {
        const file = path.join(dir, 'work');
        await copyFile(original, file);
        const started = performance.now();
        await uprightPhoto(tools, file, defaultMaxImagePixels);
        return (performance.now() - started) / 1000;
      };

      const times = {
        bare: [] as number[],
        sideways: [] as number[],
        avif: [] as number[],
        upright: [] as number[],
      };
      // One unmeasured run each, so every one starts from a warm page cache.
      await bare();
      await upright(originals.sideways);
      for (let round = 0; round < repeats; round += 1) {
        times.bare.push(await bare());
        times.sideways.push(await upright(originals.sideways));
        times.avif.push(await upright(originals.avif));
        times.upright.push(await upright(originals.upright));
      }
      const megapixels = `${((width * height) / 1e6).toFixed(0)} MP`;
      const baseline = {
        label: `ffmpeg decoding the upright JPEG to PNG, median of ${repeats}`,
        value: median(times.bare),
        unit: 's',
      };
      printFigure(
        'photos sideways jpeg',
        {
          label: `${megapixels} JPEG, orientation 6, made upright`,
          value: median(times.sideways),
          unit: 's',
        },
        baseline,
      );
      printFigure(
        'photos avif',
        { label: `${megapixels} AVIF made a PNG`, value: median(times.avif), unit: 's' },
        baseline,
      );
      printFigure(
        'photos upright jpeg',
        {
          label: `${megapixels} upright JPEG, header read only`,
          value: median(times.upright),
          unit: 's',
        },
        baseline,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
