import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export interface VideoFacts {
  durationSeconds: number;
  video: { codec: string; width: number; height: number } | null;
  audio: { codec: string } | null;
}

/** What ffprobe, run by the test itself, reads from a video's bytes. */
export async function probeVideo(ffprobe: string, bytes: Buffer): Promise<VideoFacts> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-probe-'));
  try {
    const file = path.join(dir, 'video');
    await writeFile(file, bytes);
    const { stdout } = await promisify(execFile)(ffprobe, [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_type,codec_name,width,height:format=duration',
      '-of',
      'json',
      file,
    ]);
    const parsed = JSON.parse(stdout) as {
      streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
      format: { duration: string };
    };
    const video = parsed.streams.find((stream) => stream.codec_type === 'video');
    const audio = parsed.streams.find((stream) => stream.codec_type === 'audio');
    return {
      durationSeconds: Number(parsed.format.duration),
      video: video
        ? { codec: video.codec_name, width: video.width ?? 0, height: video.height ?? 0 }
        : null,
      audio: audio ? { codec: audio.codec_name } : null,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
