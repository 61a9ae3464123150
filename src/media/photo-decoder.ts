// Run as its own process by `uprightPhoto` and `photoSize` (src/media/tools.ts), as ffmpeg is:
// within the media pool's bound and priority, killed at its time limit, and a decode's memory (a
// 12-megapixel HEIC takes about 50 MB inside libheif) is given back when it exits instead of
// staying in the worker. `upright <photo> <most pixels>` rewrites the photo in place as an
// upright PNG unless ffmpeg shows it as it is; `png <photo> <most pixels>` always does;
// `size <photo>` prints its size as seen, as JSON, decoding nothing. A refusal is one line on stderr and exit code 1.
import { open, readFile, rename, rm } from 'node:fs/promises';
import type { HeifImage } from 'heic-decode';
import sharp, { type Sharp } from 'sharp';

sharp.cache(false);
sharp.concurrency(1);

/** Formats (as sharp names them) npm's ffmpeg decodes. */
const readByFfmpeg = new Set(['jpeg', 'png', 'webp', 'gif']);

/** libheif, compiled to WebAssembly: loaded only for an HEIC photo, it takes longer than the rest. */
async function heicDecoder() {
  return (await import('heic-decode')).default;
}

/** ISO base media brands of HEVC-coded HEIF (HEIC), which sharp's libheif is built without. */
const heicBrands = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs']);

/** Whether the file is an HEIC photo, from its `ftyp` box's major and compatible brands. */
async function isHeic(file: string): Promise<boolean> {
  const handle = await open(file);
  try {
    const header = Buffer.alloc(64);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    if (bytesRead < 16 || header.toString('latin1', 4, 8) !== 'ftyp') return false;
    const boxEnd = Math.min(header.readUInt32BE(0), bytesRead);
    const brands = [header.toString('latin1', 8, 12)];
    for (let at = 16; at + 4 <= boxEnd; at += 4) brands.push(header.toString('latin1', at, at + 4));
    return brands.some((brand) => heicBrands.has(brand)) && !brands.includes('avif');
  } finally {
    await handle.close();
  }
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new Error(
      `the photo is ${width}×${height}, more than the ${maxPixels} pixels a photo may have`,
    );
  }
}

/** Writes the PNG beside the photo first: a decode cut short never leaves half a photo. */
async function replaceWith(file: string, image: Sharp): Promise<void> {
  const written = `${file}.upright.png`;
  try {
    await image.png({ compressionLevel: 1 }).toFile(written);
    await rename(written, file);
  } finally {
    await rm(written, { force: true });
  }
}

/** Runs `use` on an HEIC file's primary image, undecoded until it asks, and frees libheif's copy. */
async function withHeicImage<T>(file: string, use: (image: HeifImage) => Promise<T>): Promise<T> {
  const images = await (await heicDecoder()).all({ buffer: await readFile(file) });
  try {
    const [primary] = images;
    if (!primary) throw new Error('the HEIC file holds no image');
    return await use(primary);
  } finally {
    images.dispose();
  }
}

function uprightHeic(file: string, maxPixels: number): Promise<void> {
  return withHeicImage(file, async (image) => {
    checkPixels(image.width, image.height, maxPixels);
    // libheif applies the photo's rotation and mirroring as it decodes.
    const { width, height, data } = await image.decode();
    await replaceWith(
      file,
      sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
        raw: { width, height, channels: 4 },
      }),
    );
  });
}

/** The photo's size as a person sees it: a quarter turn (EXIF orientation 5–8) swaps the sides. */
async function size(file: string): Promise<{ width: number; height: number }> {
  if (await isHeic(file)) {
    return withHeicImage(file, async ({ width, height }) => ({ width, height }));
  }
  const { width, height, orientation = 1 } = await sharp(file).metadata();
  return orientation >= 5 ? { width: height, height: width } : { width, height };
}

/** `always`: rewrite it even when ffmpeg would show it as it is (for a reader that would not). */
async function upright(file: string, maxPixels: number, always: boolean): Promise<void> {
  if (await isHeic(file)) return uprightHeic(file, maxPixels);
  const metadata = await sharp(file).metadata();
  checkPixels(metadata.width, metadata.height, maxPixels);
  // EXIF orientation 1 (or none) is upright; npm's ffmpeg applies no other.
  const shown = readByFfmpeg.has(metadata.format) && (metadata.orientation ?? 1) === 1;
  if (shown && !always) return;
  await replaceWith(file, sharp(file, { limitInputPixels: maxPixels }).rotate());
}

async function main([command, file, maxPixelsText]: string[]): Promise<void> {
  const maxPixels = Number(maxPixelsText);
  if (command === 'size' && file) {
    process.stdout.write(`${JSON.stringify(await size(file))}\n`);
  } else if ((command === 'upright' || command === 'png') && file && maxPixels > 0) {
    await upright(file, maxPixels, command === 'png');
  } else {
    throw new Error(
      'usage: photo-decoder size <photo> | upright <photo> <most pixels> | png <photo> <most pixels>',
    );
  }
}

await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`decode photo: ${String((error as Error).message).split('\n')[0]}\n`);
  process.exitCode = 1;
});
