import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
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

/** An ffmpeg on PATH that a test can slow to real time, to hold a render open. */
export interface PacedFfmpeg {
  /** Put before the rest of PATH (before the worker looks for its tools). */
  dir: string;
  /** While on, ffmpeg reads every input at its own frame rate (`-re`): an 8 s clip takes 8 s. */
  pace(on: boolean): void;
  remove(): Promise<void>;
}

const pacedSwitch = 'VLOGFLOW_TEST_PACED_FFMPEG';

/**
 * A folder holding `ffmpeg`, which runs the real one (replacing itself, so its pid is ffmpeg's),
 * adding `-re` before each input while the switch is on, and `ffprobe` as it is. A render on a
 * quiet machine can end before a cancel sent at its first progress lands; paced, it cannot.
 * Children inherit the switch from this process's environment at spawn.
 */
export async function installPacedFfmpeg(tools: {
  ffmpeg: string;
  ffprobe: string;
}): Promise<PacedFfmpeg> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-paced-ffmpeg-'));
  const script = [
    '#!/usr/bin/env bash',
    `if [[ -z "\${${pacedSwitch}:-}" ]]; then exec ${JSON.stringify(tools.ffmpeg)} "$@"; fi`,
    'args=()',
    'for arg in "$@"; do',
    '  if [[ "$arg" == -i ]]; then args+=(-re); fi',
    '  args+=("$arg")',
    'done',
    `exec ${JSON.stringify(tools.ffmpeg)} "\${args[@]}"`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'ffmpeg'), script, { mode: 0o755 });
  await symlink(tools.ffprobe, path.join(dir, 'ffprobe'));
  return {
    dir,
    pace: (on) => {
      if (on) process.env[pacedSwitch] = '1';
      else delete process.env[pacedSwitch];
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
