// `npm run bench:analysis`: what the local analysis of a 10-minute 4K clip costs next to a
// 10-second one, measured side by side (runs alternate) with the real LocalMediaAnalyzer: copy
// to its work folder, ffprobe, frame sampling. Prints the medians and their ratio (target ≤ 2);
// asserts nothing. The clips are made once with ffmpeg and kept in the temporary folder.
// BENCH_REPEATS (default 5) sets the runs of each; BENCH_WHOLE_DECODE=1 also times, once, the
// way long clips were sampled before: decoding every frame.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { access, mkdir, rename, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MediaRef } from '../src/jobs/contracts.js';
import { findMediaTools, mediaToolsVersion, sampleFrames } from '../src/media/tools.js';
import { LocalMediaAnalyzer } from '../src/providers/local-analyzer.js';

const repeats = Number(process.env['BENCH_REPEATS'] ?? 5);
const tools = await findMediaTools();
if (!tools) throw new Error('No ffmpeg found');
const cache = path.join(os.tmpdir(), 'vlogflow-bench-analysis');
await mkdir(cache, { recursive: true });
const run = promisify(execFile);

/** Runs ffmpeg into `name` in the cache unless it is there; a run cut short leaves nothing. */
async function cached(name: string, args: string[]): Promise<string> {
  const file = path.join(cache, name);
  if (
    await access(file).then(
      () => true,
      () => false,
    )
  )
    return file;
  const partial = `${file}.partial.mp4`;
  console.log(`making ${file} (once)…`);
  await run(tools!.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', ...args, partial]);
  await rename(partial, file);
  return file;
}

// 4K UHD at 30 fps with a keyframe a second, as phones record; x264's `fast` preset.
const short = await cached('uhd-10s.mp4', [
  ...['-f', 'lavfi', '-i', 'testsrc=size=3840x2160:rate=30:duration=10'],
  ...['-c:v', 'libx264', '-preset', 'fast', '-g', '30', '-pix_fmt', 'yuv420p'],
]);
// The same 10 s sixty times over, stream-copied: a 10-minute clip without 10 minutes of encoding.
const long = await cached('uhd-600s.mp4', ['-stream_loop', '59', '-i', short, '-c', 'copy']);

const analyzer = new LocalMediaAnalyzer(tools);
async function analyze(file: string): Promise<number> {
  const ref: MediaRef = {
    key: path.basename(file),
    name: path.basename(file),
    kind: 'video',
    contentType: 'video/mp4',
    size: (await stat(file)).size,
    sha256: '',
  };
  const started = performance.now();
  await analyzer.analyze({
    jobId: 'bench',
    media: [ref],
    brief: { title: 'Bench', prompt: null, style: null, durationSeconds: 8 },
    openMedia: async () => createReadStream(file),
    progress: () => undefined,
    signal: new AbortController().signal,
  });
  return (performance.now() - started) / 1000;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

console.log(`ffmpeg: ${tools.ffmpeg}\n  ${await mediaToolsVersion(tools)}`);
console.log(
  `cores: ${os.cpus().length}; clips: 3840×2160 30 fps H.264, 10 s (${((await stat(short)).size / 1e6).toFixed(1)} MB) ` +
    `and 600 s (${((await stat(long)).size / 1e6).toFixed(1)} MB)\n`,
);
// One unmeasured run each, so both start from a warm page cache.
await analyze(short);
await analyze(long);
const times = { short: [] as number[], long: [] as number[] };
for (let round = 0; round < repeats; round += 1) {
  times.short.push(await analyze(short));
  times.long.push(await analyze(long));
}
const [shortSeconds, longSeconds] = [median(times.short), median(times.long)];
const list = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');
console.log(`analysis of one clip (copy, probe, sample frames), median of ${repeats} runs:`);
console.log(`  10 s clip    ${shortSeconds.toFixed(2)} s   (${list(times.short)})`);
console.log(`  600 s clip   ${longSeconds.toFixed(2)} s   (${list(times.long)})`);
console.log(`  600 s ÷ 10 s: ${(longSeconds / shortSeconds).toFixed(2)} (target ≤ 2)`);

if (process.env['BENCH_WHOLE_DECODE'] === '1') {
  const started = performance.now();
  await sampleFrames(
    tools,
    long,
    { width: 32, height: 32, sampling: { kind: 'decode', fps: 0.1 } },
    undefined,
    3_600_000,
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `\nbefore: decoding every frame of the 600 s clip, once: ${seconds.toFixed(1)} s ` +
      `(${(seconds / shortSeconds).toFixed(1)} × the 10 s clip's analysis)`,
  );
}
