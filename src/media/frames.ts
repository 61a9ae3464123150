/**
 * Facts measured from small RGB frames (3 bytes a pixel) that ffmpeg sampled from a photo or
 * clip: how bright, which colours, how much moves, where the cuts are. Pure functions.
 */

/** A change between consecutive samples above this (mean per channel, 0–1) counts as a cut. */
const sceneChangeThreshold = 0.2;

/** Mean luma (Rec. 709), 0 (black) to 1 (white). */
export function brightness(frames: Buffer[]): number {
  let sum = 0;
  let pixels = 0;
  for (const frame of frames) {
    for (let i = 0; i + 2 < frame.length; i += 3) {
      sum += 0.2126 * frame[i]! + 0.7152 * frame[i + 1]! + 0.0722 * frame[i + 2]!;
      pixels += 1;
    }
  }
  return pixels === 0 ? 0 : round(sum / pixels / 255);
}

/**
 * The most common colours: pixels fall into 64 bins (4 levels a channel); a bin's colour is the
 * mean of its pixels. Bins under 5 % of the pixels are left out.
 */
export function dominantColors(frames: Buffer[], count = 3): string[] {
  const bins = new Map<number, { n: number; r: number; g: number; b: number }>();
  let pixels = 0;
  for (const frame of frames) {
    for (let i = 0; i + 2 < frame.length; i += 3) {
      const [r, g, b] = [frame[i]!, frame[i + 1]!, frame[i + 2]!];
      const bin = ((r >> 6) << 4) | ((g >> 6) << 2) | (b >> 6);
      const entry = bins.get(bin) ?? { n: 0, r: 0, g: 0, b: 0 };
      entry.n += 1;
      entry.r += r;
      entry.g += g;
      entry.b += b;
      bins.set(bin, entry);
      pixels += 1;
    }
  }
  const hex = (value: number) => Math.round(value).toString(16).padStart(2, '0');
  return [...bins.values()]
    .filter((entry) => entry.n >= pixels * 0.05)
    .sort((a, b) => b.n - a.n)
    .slice(0, count)
    .map((entry) => `#${hex(entry.r / entry.n)}${hex(entry.g / entry.n)}${hex(entry.b / entry.n)}`);
}

/** Mean absolute change between each pair of consecutive frames, 0 to 1. */
export function frameChanges(frames: Buffer[]): number[] {
  const changes: number[] = [];
  for (let f = 1; f < frames.length; f += 1) {
    const [a, b] = [frames[f - 1]!, frames[f]!];
    let sum = 0;
    for (let i = 0; i < a.length; i += 1) sum += Math.abs(a[i]! - b[i]!);
    changes.push(a.length === 0 ? 0 : sum / a.length / 255);
  }
  return changes;
}

export function motion(changes: number[]): number {
  return changes.length === 0 ? 0 : round(changes.reduce((a, b) => a + b, 0) / changes.length);
}

/** Seconds at which the picture changes abruptly, for frames sampled `fps` times a second. */
export function sceneChanges(changes: number[], fps: number): number[] {
  return changes.flatMap((change, index) =>
    change > sceneChangeThreshold ? [round((index + 1) / fps)] : [],
  );
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
