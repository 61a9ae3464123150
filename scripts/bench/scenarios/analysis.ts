// `npm run bench -- analysis`: what the local analysis of a 10-minute 4K clip costs next to a
// 10-second one, measured side by side (runs alternate) with the real LocalMediaAnalyzer: copy
// to its work folder, ffprobe, frame sampling. Prints the medians and their ratio (target ≤ 2).
// The clips are made once with ffmpeg and kept in the temporary folder (--smoke: 360p clips of
// 2 s and 20 s). `--repeats=N` (default 5) sets the runs of each; `--whole-decode=1` also times,
// once, the way long clips were sampled before: decoding every frame.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { access, mkdir, rename, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MediaRef } from '../../../src/jobs/contracts.js';
import { findMediaTools, mediaToolsVersion, sampleFrames } from '../../../src/media/tools.js';
import { LocalMediaAnalyzer } from '../../../src/providers/local-analyzer.js';

import type { Scenario } from '../scenario.js';
import { median, printFigure } from '../stats.js';
import { defaultMaxImagePixels } from '../../../src/config.js';

export const analysisScenario: Scenario = {
  name: 'analysis',
  summary: 'local analysis of a 10-minute 4K clip ÷ a 10-second one',
  async run({ size, smoke }) {
    const repeats = size('repeats', 5, 1);
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
    const [frame, shortSeconds, loops] = smoke ? ['640x360', 2, 10] : ['3840x2160', 10, 60];
    const short = await cached(`${frame}-${shortSeconds}s.mp4`, [
      ...['-f', 'lavfi', '-i', `testsrc=size=${frame}:rate=30:duration=${shortSeconds}`],
      ...['-c:v', 'libx264', '-preset', 'fast', '-g', '30', '-pix_fmt', 'yuv420p'],
    ]);
    // The same clip `loops` times over, stream-copied: a long clip without its encoding time.
    const longSeconds = shortSeconds * loops;
    const long = await cached(`${frame}-${longSeconds}s.mp4`, [
      ...['-stream_loop', String(loops - 1), '-i', short, '-c', 'copy'],
    ]);

    const analyzer = new LocalMediaAnalyzer(tools, { maxImagePixels: defaultMaxImagePixels });
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

    console.log(`ffmpeg: ${tools.ffmpeg}\n  ${await mediaToolsVersion(tools)}`);
    console.log(
      `clips: ${frame} 30 fps H.264, ${shortSeconds} s (${((await stat(short)).size / 1e6).toFixed(1)} MB) ` +
        `and ${longSeconds} s (${((await stat(long)).size / 1e6).toFixed(1)} MB)`,
    );
    // One unmeasured run each, so both start from a warm page cache.
    await analyze(short);
    await analyze(long);
    const times = { short: [] as number[], long: [] as number[] };
    for (let round = 0; round < repeats; round += 1) {
      times.short.push(await analyze(short));
      times.long.push(await analyze(long));
    }
    const list = (values: number[]) => values.map((value) => value.toFixed(2)).join(' ');
    const shortAnalysis = median(times.short);
    printFigure(
      'analysis long ÷ short',
      {
        label: `${longSeconds} s clip, median of ${repeats} (${list(times.long)})`,
        value: median(times.long),
        unit: 's',
      },
      { label: `${shortSeconds} s clip (${list(times.short)})`, value: shortAnalysis, unit: 's' },
      '≤ 2',
    );

    if (size('whole-decode', 0, 0) === 1) {
      const started = performance.now();
      await sampleFrames(
        tools,
        long,
        { width: 32, height: 32, sampling: { kind: 'decode', fps: 0.1 } },
        undefined,
        3_600_000,
      );
      const seconds = (performance.now() - started) / 1000;
      printFigure(
        'analysis whole decode (before)',
        {
          label: `decoding every frame of the ${longSeconds} s clip, once`,
          value: seconds,
          unit: 's',
        },
        { label: `the ${shortSeconds} s clip's analysis`, value: shortAnalysis, unit: 's' },
      );
    }
  },
};
