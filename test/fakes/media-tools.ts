// Stand-ins for ffmpeg and ffprobe as the service runs them (executables taking their command
// line): one that does the real work and reports how much it decoded, and one that never ends.
import { chmod, readFile, writeFile } from 'node:fs/promises';
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
