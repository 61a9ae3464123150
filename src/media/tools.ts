import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface MediaTools {
  ffmpeg: string;
  ffprobe: string;
}

async function onPath(name: string): Promise<string | null> {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return null;
}

async function fromNpm(): Promise<MediaTools | null> {
  try {
    const [ffmpeg, ffprobe] = await Promise.all([
      import('@ffmpeg-installer/ffmpeg'),
      import('@ffprobe-installer/ffprobe'),
    ]);
    return { ffmpeg: ffmpeg.default.path, ffprobe: ffprobe.default.path };
  } catch {
    // No binary published for this platform.
    return null;
  }
}

/** The system's ffmpeg and ffprobe when both are on PATH, otherwise the ones npm installed. */
export async function findMediaTools(): Promise<MediaTools | null> {
  const [ffmpeg, ffprobe] = await Promise.all([onPath('ffmpeg'), onPath('ffprobe')]);
  return ffmpeg && ffprobe ? { ffmpeg, ffprobe } : fromNpm();
}

export async function mediaToolsVersion(tools: MediaTools): Promise<string> {
  const { stdout } = await run(tools.ffmpeg, ['-version'], { timeout: 10_000 });
  return stdout.split('\n')[0] ?? 'unknown';
}

/** A video's duration in seconds, as ffprobe reads it from the container. */
export async function probeDurationSeconds(
  tools: MediaTools,
  file: string,
  signal?: AbortSignal,
): Promise<number> {
  const { stdout } = await run(
    tools.ffprobe,
    ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file],
    {
      timeout: 60_000,
      signal,
    },
  );
  const seconds = Number(stdout.trim());
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new Error(`ffprobe read no duration from ${file}`);
  return seconds;
}

/** Writes one frame, `atSeconds` in, as a JPEG no wider than 640 pixels. */
export async function extractThumbnail(
  tools: MediaTools,
  file: string,
  output: string,
  atSeconds: number,
  signal?: AbortSignal,
): Promise<void> {
  await run(
    tools.ffmpeg,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-ss',
      String(atSeconds),
      '-i',
      file,
      '-frames:v',
      '1',
      '-vf',
      "scale='min(640,iw)':-2",
      output,
    ],
    { timeout: 60_000, signal },
  );
}
