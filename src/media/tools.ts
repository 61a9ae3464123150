import { execFile, spawn, type ExecFileOptions } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  defaultMediaProcessLimits,
  MediaProcessPool,
  type MediaProcessLimits,
} from './processes.js';

const run = promisify(execFile);

export interface MediaTools {
  ffmpeg: string;
  ffprobe: string;
  /** Bounds and lowers the priority of every ffmpeg and ffprobe these tools run. */
  processes: MediaProcessPool;
}

type ToolOptions = ExecFileOptions & { signal?: AbortSignal | undefined };

/** `execFile` within the pool's bound and at its priority; its timeout starts at the spawn. */
function runTool(
  tools: MediaTools,
  file: string,
  args: string[],
  options: ToolOptions & { encoding: 'buffer' },
): Promise<{ stdout: Buffer; stderr: Buffer }>;
function runTool(
  tools: MediaTools,
  file: string,
  args: string[],
  options: ToolOptions,
): Promise<{ stdout: string; stderr: string }>;
function runTool(
  tools: MediaTools,
  file: string,
  args: string[],
  options: ToolOptions,
): Promise<{ stdout: string | Buffer; stderr: string | Buffer }> {
  return tools.processes.run(options.signal, () => {
    const running = run(file, args, options);
    tools.processes.lowerPriority(running.child.pid);
    return running;
  });
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

async function fromNpm(): Promise<Omit<MediaTools, 'processes'> | null> {
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

/**
 * The system's ffmpeg and ffprobe when both are on PATH, otherwise the ones npm installed, run
 * within `limits` (one pool per call: a worker and an API each have their own).
 */
export async function findMediaTools(
  limits: MediaProcessLimits = defaultMediaProcessLimits(),
): Promise<MediaTools | null> {
  const [ffmpeg, ffprobe] = await Promise.all([onPath('ffmpeg'), onPath('ffprobe')]);
  const found = ffmpeg && ffprobe ? { ffmpeg, ffprobe } : await fromNpm();
  return found && { ...found, processes: new MediaProcessPool(limits) };
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
  const { stdout } = await runTool(
    tools,
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
  await runTool(
    tools,
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

/** What ffprobe reads from a photo or clip; sizes are as displayed (rotation applied). */
export interface MediaProbe {
  width: number;
  height: number;
  /** Seconds of a clip; null for a still image. */
  durationSeconds: number | null;
  hasAudio: boolean;
}

/** ffmpeg or ffprobe refused a file: the message is the tool's own last words. */
export class MediaToolError extends Error {}

interface ProbeOutput {
  streams?: {
    codec_type?: string;
    width?: number;
    height?: number;
    tags?: { rotate?: string };
    side_data_list?: { rotation?: number }[];
  }[];
  format?: { duration?: string; format_name?: string };
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter(Boolean)
      .at(-1)
      ?.replace(/^.*?: /, '') ?? 'no output'
  );
}

/** Streams and duration of a media file; throws MediaToolError for a file ffprobe cannot read. */
export async function probeMedia(
  tools: MediaTools,
  file: string,
  kind: 'image' | 'video',
  signal?: AbortSignal,
): Promise<MediaProbe> {
  let output: ProbeOutput;
  try {
    const { stdout } = await runTool(
      tools,
      tools.ffprobe,
      [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_type,width,height:stream_tags=rotate:stream_side_data=rotation:format=duration,format_name',
        '-of',
        'json',
        file,
      ],
      { timeout: 60_000, signal },
    );
    output = JSON.parse(stdout) as ProbeOutput;
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new MediaToolError(lastLine((error as { stderr?: string }).stderr ?? String(error)));
  }
  const video = output.streams?.find((stream) => stream.codec_type === 'video');
  if (!video?.width || !video.height) throw new MediaToolError('it has no picture');
  const rotation = Math.abs(
    Number(video.side_data_list?.find((data) => data.rotation !== undefined)?.rotation ?? 0) ||
      Number(video.tags?.rotate ?? 0),
  );
  const sideways = rotation % 180 === 90;
  const duration = Number(output.format?.duration);
  if (kind === 'video' && !(duration > 0)) throw new MediaToolError('it has no duration');
  return {
    width: sideways ? video.height : video.width,
    height: sideways ? video.width : video.height,
    durationSeconds: kind === 'video' ? duration : null,
    hasAudio: output.streams?.some((stream) => stream.codec_type === 'audio') ?? false,
  };
}

/**
 * Decodes frames as small RGB pictures (`width`×`height`, 3 bytes a pixel): one for an image,
 * `fps` a second for a clip. Throws MediaToolError when nothing can be decoded.
 */
export async function sampleFrames(
  tools: MediaTools,
  file: string,
  options: { width: number; height: number; fps: number | null },
  signal?: AbortSignal,
): Promise<Buffer[]> {
  const { width, height, fps } = options;
  let stdout: Buffer;
  try {
    ({ stdout } = await runTool(
      tools,
      tools.ffmpeg,
      [
        '-nostdin',
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        file,
        ...(fps === null ? ['-frames:v', '1'] : []),
        '-vf',
        `${fps === null ? '' : `fps=${fps},`}scale=${width}:${height},format=rgb24`,
        '-an',
        '-f',
        'rawvideo',
        'pipe:1',
      ],
      { timeout: 120_000, signal, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    ));
  } catch (error) {
    if (signal?.aborted) throw error;
    const stderr = (error as { stderr?: Buffer }).stderr?.toString('utf8');
    throw new MediaToolError(lastLine(stderr ?? String(error)));
  }
  const frameBytes = width * height * 3;
  const frames: Buffer[] = [];
  for (let offset = 0; offset + frameBytes <= stdout.length; offset += frameBytes)
    frames.push(stdout.subarray(offset, offset + frameBytes));
  if (frames.length === 0) throw new MediaToolError('no frame could be decoded');
  return frames;
}

/** How far a render is, from ffmpeg's own `-progress` output. */
export interface RenderProgress {
  renderedSeconds: number;
  totalSeconds: number;
  percent: number;
  /** Seconds of video rendered per second of wall time, as ffmpeg reports it. */
  speed: number | null;
}

/**
 * Run by a small Node process between the worker and ffmpeg. ffmpeg ignores SIGPIPE and the end
 * of its stdin, so it would outlive a worker killed with SIGKILL; this supervisor holds a pipe
 * from the worker, and when that pipe closes (the worker stopped it, or died) it kills ffmpeg.
 */
const supervisorSource = `
const { spawn } = require('node:child_process');
const [command, ...args] = process.argv.slice(1);
const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const stop = () => child.kill('SIGKILL');
process.stdin.on('end', stop).on('error', stop).resume();
child.on('error', (error) => { process.stderr.write(String(error)); process.exit(127); });
child.on('exit', (code) => process.exit(code ?? 1));
`;

/**
 * Runs ffmpeg with `args` (outputs included) under a supervisor that kills it if the worker
 * dies, reporting its progress towards `totalSeconds` of output. It waits for its turn in the
 * tools' pool first. An abort kills ffmpeg and rejects once it has exited, so the caller can
 * remove its partial output.
 */
export async function runFfmpeg(
  tools: MediaTools,
  args: string[],
  options: {
    totalSeconds: number;
    /** Folder relative paths in `args` are read from. */
    cwd: string;
    signal: AbortSignal;
    onProgress(progress: RenderProgress): void;
    /** Called with the supervisor's pid once it runs (tests look for it). */
    onSpawn?(pid: number): void;
  },
): Promise<void> {
  await tools.processes.run(options.signal, () => superviseFfmpeg(tools, args, options));
}

async function superviseFfmpeg(
  tools: MediaTools,
  args: string[],
  options: Parameters<typeof runFfmpeg>[2],
): Promise<void> {
  options.signal.throwIfAborted();
  const child = spawn(
    process.execPath,
    [
      '-e',
      supervisorSource,
      tools.ffmpeg,
      '-nostdin',
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostats',
      '-progress',
      'pipe:1',
      ...args,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd },
  );
  // ffmpeg, started by the supervisor a moment later, inherits its priority.
  tools.processes.lowerPriority(child.pid);
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  // Closing the pipe is how ffmpeg is stopped; a supervisor already gone makes that an EPIPE,
  // which must not become an unhandled error in the worker.
  child.stdin.on('error', () => undefined);
  const stop = () => child.stdin.end();
  options.signal.addEventListener('abort', stop, { once: true });
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString('utf8'));
    if (stderr.length > 50) stderr.shift();
  });
  let pending = '';
  let block: Record<string, string> = {};
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const at = line.indexOf('=');
      if (at < 0) continue;
      block[line.slice(0, at)] = line.slice(at + 1).trim();
      // Each report ends with `progress=continue|end`; out_time_ms is in microseconds.
      if (line.startsWith('progress=')) {
        const renderedSeconds = Math.max(0, Number(block['out_time_ms']) / 1e6);
        const speed = Number.parseFloat(block['speed'] ?? '');
        block = {};
        if (!Number.isFinite(renderedSeconds)) continue;
        options.onProgress({
          renderedSeconds: Math.round(renderedSeconds * 100) / 100,
          totalSeconds: options.totalSeconds,
          percent: Math.min(100, Math.round((renderedSeconds / options.totalSeconds) * 100)),
          speed: Number.isFinite(speed) ? speed : null,
        });
      }
    }
  });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    options.signal.throwIfAborted();
    if (code !== 0) throw new MediaToolError(lastLine(stderr.join('')));
  } finally {
    options.signal.removeEventListener('abort', stop);
    stop();
  }
}
