// Stand-ins for ffmpeg and ffprobe as the service runs them (executables taking their command
// line): one that does the real work and reports how much it decoded, one that never ends, one
// stopped by a signal, and one whose renders a test fails or holds back.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MediaTools } from '../../src/media/tools.js';

async function script(file: string, body: string): Promise<string> {
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

export interface RecordingFfmpeg {
  tools: MediaTools;
  /** Frames the runs so far decoded, one number a run, from ffmpeg's own final statistics. */
  decodedFrames(): Promise<number[]>;
}

/**
 * The real tools, with an ffmpeg that runs at verbose log level (its last `-loglevel` wins) and
 * appends its statistics to a log in `dir` instead of answering with them.
 */
export async function recordingFfmpeg(real: MediaTools, dir: string): Promise<RecordingFfmpeg> {
  const log = path.join(dir, 'ffmpeg-stats.log');
  await writeFile(log, '');
  const ffmpeg = await script(
    path.join(dir, 'ffmpeg'),
    `exec '${real.ffmpeg}' "$@" -loglevel verbose 2>>'${log}'`,
  );
  return {
    tools: { ...real, ffmpeg },
    async decodedFrames() {
      const text = await readFile(log, 'utf8');
      return [...text.matchAll(/Input stream #\d+:\d+ \(video\): .*?(\d+) frames decoded/g)].map(
        (match) => Number(match[1]),
      );
    },
  };
}

/** ffmpeg and ffprobe that start and never finish, as a tool stuck on a huge file would. */
export async function hangingMediaTools(real: MediaTools, dir: string): Promise<MediaTools> {
  const hang = await script(path.join(dir, 'hang'), 'exec sleep 600');
  return { ...real, ffmpeg: hang, ffprobe: hang };
}

/** A line ffmpeg's title card makes fontconfig print on some systems: noise, not a cause. */
export const fontconfigNoise =
  '"/etc/fonts/conf.d/70-no-bitmaps.conf", line 4: unknown element "description"';

/**
 * ffmpeg and ffprobe that print fontconfig's noise and then end as a signal from elsewhere (a
 * terminal's Ctrl-C, an operator) ends them: killed by `how`, or, as the real ffmpeg does after
 * SIGINT or SIGTERM, exiting 255.
 */
export async function signalledMediaTools(
  real: MediaTools,
  dir: string,
  how: 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'exit 255',
): Promise<MediaTools> {
  const stop = how === 'exit 255' ? 'exit 255' : `kill -s ${how.slice(3)} $$`;
  const stopped = await script(
    path.join(dir, `stopped-by-${how.replace(' ', '-')}`),
    `echo '${fontconfigNoise}' >&2\n${stop}`,
  );
  return { ...real, ffmpeg: stopped, ffprobe: stopped };
}

/** The real tools with an ffmpeg whose renders a test can fail or hold back. */
export interface ControlledRenders {
  tools: MediaTools;
  /** The next render exits with an error, as ffmpeg does on a file it cannot render. */
  failNextRender(): Promise<void>;
  /** Renders wait before they begin until `releaseRenders()`; cancelling one ends its wait. */
  holdRenders(): Promise<void>;
  releaseRenders(): Promise<void>;
}

/**
 * The real tools, with an ffmpeg that recognises a vlog's render by its output (`video.mp4`)
 * and obeys files in `dir`: one that fails the next render, one that holds renders back.
 */
export async function controlledRenders(real: MediaTools, dir: string): Promise<ControlledRenders> {
  const failNext = path.join(dir, 'fail-next-render');
  const hold = path.join(dir, 'hold-renders');
  const ffmpeg = await script(
    path.join(dir, 'ffmpeg'),
    [
      'for output; do :; done',
      'if [ "$output" = video.mp4 ]; then',
      `  if rm '${failNext}' 2>/dev/null; then`,
      "    echo 'Conversion failed! (the test told this render to fail)' >&2",
      '    exit 1',
      '  fi',
      `  while [ -e '${hold}' ]; do sleep 0.05; done`,
      'fi',
      `exec '${real.ffmpeg}' "$@"`,
    ].join('\n'),
  );
  return {
    tools: { ...real, ffmpeg },
    failNextRender: () => writeFile(failNext, ''),
    holdRenders: () => writeFile(hold, ''),
    releaseRenders: () => rm(hold, { force: true }),
  };
}
