// Whether a photo needs the photo decoder at all, from its first bytes: starting a decoder
// process costs a third of a second, and most photos are JPEGs or PNGs ffmpeg shows as stored.
import { open } from 'node:fs/promises';

/** EXIF sits in the first segments of a JPEG; a photo whose orientation lies further is decoded. */
const headerBytes = 128 * 1024;

const pngSignature = Buffer.from('89504e470d0a1a0a', 'hex');

/**
 * True when ffmpeg shows the photo as a person sees it: a JPEG whose EXIF orientation is 1 or
 * absent, or a PNG with no EXIF chunk. False for anything else (another orientation, another
 * format, a header this does not follow), which the photo decoder then reads in full.
 */
export async function shownAsStored(file: string): Promise<boolean> {
  const handle = await open(file);
  try {
    const header = Buffer.alloc(headerBytes);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    const bytes = header.subarray(0, bytesRead);
    if (bytes[0] === 0xff && bytes[1] === 0xd8) return jpegOrientation(bytes) === 1;
    if (bytes.subarray(0, 8).equals(pngSignature)) return !pngHasExif(bytes);
    return false;
  } finally {
    await handle.close();
  }
}

/** A JPEG's EXIF orientation: 1 when it has none, null when its header cannot be followed. */
export function jpegOrientation(bytes: Buffer): number | null {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1]!;
    // Fill bytes, and markers without a length.
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    // Start of scan: the metadata segments all come before it.
    if (marker === 0xda) return 1;
    const length = bytes.readUInt16BE(at + 2);
    if (length < 2) return null;
    const data = bytes.subarray(at + 4, at + 2 + length);
    if (marker === 0xe1 && data.subarray(0, 6).toString('latin1') === 'Exif\0\0') {
      return exifOrientation(data.subarray(6));
    }
    at += 2 + length;
  }
  return null;
}

/** The orientation tag (0x0112) of a TIFF header's first directory; 1 when it has none. */
function exifOrientation(tiff: Buffer): number | null {
  if (tiff.length < 8) return null;
  const order = tiff.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') return null;
  const little = order === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  if (u16(2) !== 42) return null;
  const directory = u32(4);
  if (directory + 2 > tiff.length) return null;
  const entries = u16(directory);
  for (let entry = 0; entry < entries; entry += 1) {
    const at = directory + 2 + entry * 12;
    if (at + 12 > tiff.length) return null;
    // A SHORT's value sits in the first two bytes of the entry's value field.
    if (u16(at) === 0x0112) return u16(at + 8);
  }
  return 1;
}

/** Whether a PNG has an `eXIf` chunk before its image data (where it must be). */
function pngHasExif(bytes: Buffer): boolean {
  let at = 8;
  while (at + 8 <= bytes.length) {
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (type === 'eXIf') return true;
    if (type === 'IDAT') return false;
    at += 12 + bytes.readUInt32BE(at);
  }
  // The header did not reach the image data: let the decoder read it.
  return true;
}
