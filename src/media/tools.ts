import { execFile, type ExecFileOptions } from 'node:child_process';
import { access, constants, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnSupervised } from '../supervisor.js';
import { shownAsStored } from './photo-header.js';
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
  return tools.processes.run(options.signal, (signal) => {
    const running = run(file, args, { ...options, signal });
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

/**
 * Whether `tools` are the static builds npm installed (@ffmpeg-installer, from 2018): fine for
 * trying the service, but they parse every upload, and years of demuxer and decoder fixes are
 * missing from them.
 */
export function isNpmFfmpeg(tools: MediaTools): boolean {
  return tools.ffmpeg.includes(`${path.sep}@ffmpeg-installer${path.sep}`);
}

export async function mediaToolsVersion(tools: MediaTools): Promise<string> {
  const { stdout } = await run(tools.ffmpeg, ['-version'], { timeout: 10_000 });
  return stdout.split('\n')[0] ?? 'unknown';
}

const runningFromSource = import.meta.url.endsWith('.ts');
/** The photo decoder as a command: this tree's build of it, or its source (src/typescript-hooks.ts). */
const photoDecoder = runningFromSource
  ? [
      '--import',
      fileURLToPath(new URL('../typescript-hooks.ts', import.meta.url)),
      fileURLToPath(new URL('./photo-decoder.ts', import.meta.url)),
    ]
  : [fileURLToPath(new URL('./photo-decoder.js', import.meta.url))];

/**
 * Makes a photo one ffmpeg renders as it is seen: npm's ffmpeg ignores a JPEG's EXIF orientation
 * (a phone's portrait photo comes out on its side) and decodes no HEIC or AVIF photo. The photo
 * decoder (src/media/photo-decoder.ts, sharp and libheif) rewrites such a photo in place as an
 * upright PNG and leaves others alone; a JPEG or PNG whose header says it is upright is not even
 * handed to it. It refuses a photo of more than `maxPixels` pixels before decoding it, and runs
 * as a media tool: in the pool, at its priority, within `timeoutMs`.
 */
export async function uprightPhoto(
  tools: MediaTools,
  file: string,
  maxPixels: number,
  signal?: AbortSignal,
  timeoutMs = defaultMediaToolTimeouts.probeMs,
): Promise<void> {
  if (await shownAsStored(file)) return;
  await runPhotoDecoder(tools, ['upright', file, String(maxPixels)], signal, timeoutMs);
}

/**
 * Rewrites a photo in place as an upright PNG whatever it was, for a reader that takes fewer
 * formats than ffmpeg (Gemini reads no GIF or AVIF); otherwise as uprightPhoto.
 */
export async function photoAsPng(
  tools: MediaTools,
  file: string,
  maxPixels: number,
  signal?: AbortSignal,
  timeoutMs = defaultMediaToolTimeouts.probeMs,
): Promise<void> {
  await runPhotoDecoder(tools, ['png', file, String(maxPixels)], signal, timeoutMs);
}

async function runPhotoDecoder(
  tools: MediaTools,
  args: string[],
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<string> {
  const step = args[0] === 'size' ? 'photo size' : 'decode photo';
  const { stdout } = await runTool(tools, process.execPath, [...photoDecoder, ...args], {
    timeout: timeoutMs,
    signal,
  }).catch((error: unknown) => {
    throw toolFailure(error, tools, 'the photo decoder', step, timeoutMs, signal);
  });
  return stdout;
}

/**
 * A photo's size as it is seen (its orientation applied), read by the photo decoder from its
 * header, for a photo ffprobe cannot read (HEIC, AVIF on npm's ffmpeg); throws MediaToolError
 * for a file that is no photo it reads.
 */
export async function photoSize(
  tools: MediaTools,
  file: string,
  signal?: AbortSignal,
  timeoutMs = defaultMediaToolTimeouts.probeMs,
): Promise<{ width: number; height: number }> {
  const stdout = await runPhotoDecoder(tools, ['size', file], signal, timeoutMs);
  return JSON.parse(stdout) as { width: number; height: number };
}

/** A video's duration in seconds, as ffprobe reads it from the container. */
export async function probeDurationSeconds(
  tools: MediaTools,
  file: string,
  signal?: AbortSignal,
): Promise<number> {
  const timeoutMs = defaultMediaToolTimeouts.probeMs;
  let stdout: string;
  try {
    ({ stdout } = await runTool(
      tools,
      tools.ffprobe,
      ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file],
      { timeout: timeoutMs, signal },
    ));
  } catch (error) {
    throw toolFailure(error, tools, 'ffprobe', 'probe', timeoutMs, signal);
  }
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
  const timeoutMs = 60_000;
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
    { timeout: timeoutMs, signal },
  ).catch((error: unknown) => {
    throw toolFailure(error, tools, 'ffmpeg', 'thumbnail', timeoutMs, signal);
  });
}

/** What ffprobe reads from a photo or clip; sizes are as displayed (rotation applied). */
export interface MediaProbe {
  width: number;
  height: number;
  /** Seconds of a clip; null for a still image (and, from probeStreams, a clip stating none). */
  durationSeconds: number | null;
  /** A clip's average frame rate, as its container states it; null when it states none. */
  framesPerSecond: number | null;
  hasAudio: boolean;
}

/** ffmpeg or ffprobe refused a file: the message is the tool's own last words. */
export class MediaToolError extends Error {}

/** What a tool was running for, so a failure can say which step it ended. */
export type MediaStep =
  'probe' | 'sample frames' | 'thumbnail' | 'render' | 'decode photo' | 'photo size';

type MediaToolName = 'ffmpeg' | 'ffprobe' | 'the photo decoder';

/**
 * ffmpeg or ffprobe ran past its time limit. Unlike MediaToolError this says nothing about the
 * file: a busy machine or a large file can cause it, and another attempt may finish.
 */
export class MediaToolTimeout extends Error {
  constructor(
    readonly step: MediaStep,
    readonly timeoutMs: number,
  ) {
    super(`${step} timed out after ${timeoutMs / 1000} s`);
  }
}

/**
 * ffmpeg or ffprobe was stopped before it finished, and not by its job: by a signal from
 * elsewhere (a terminal's Ctrl-C, an operator, the out-of-memory killer) or by this process
 * stopping its media work as it shuts down. Like MediaToolTimeout it says nothing about the file:
 * the step runs again.
 */
export class MediaToolInterrupted extends Error {
  constructor(
    readonly tool: MediaToolName,
    readonly step: MediaStep,
    /** What stopped it: `signal SIGINT`, `this worker shutting down`. */
    readonly stoppedBy: string,
  ) {
    super(`${step} interrupted: ${tool} was stopped by ${stoppedBy}`);
  }
}

const stoppedByShutdown = 'this worker shutting down';

/**
 * What stopped a tool that did not exit 0, if a signal did: the one that killed it, else the one
 * its supervisor passed on to it; ffmpeg catches SIGINT and SIGTERM and exits 255 after either.
 * Null: the tool ended by itself, its exit code and output say why.
 */
function stoppingSignal(
  tool: MediaToolName,
  end: { code: number | null; signal: NodeJS.Signals | null; passedOn?: NodeJS.Signals | null },
): string | null {
  if (end.signal) return `signal ${end.signal}`;
  if (end.code === 0) return null;
  if (end.passedOn) return `signal ${end.passedOn}`;
  if (tool === 'ffmpeg' && end.code === 255) return 'a signal (SIGINT or SIGTERM, exit code 255)';
  return null;
}

/**
 * An execFile failure as the error to throw: the job's abort itself, the pool stopped, a
 * timeout, a signal from elsewhere, or the tool's refusal.
 */
function toolFailure(
  error: unknown,
  tools: MediaTools,
  tool: MediaToolName,
  step: MediaStep,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): unknown {
  if (signal?.aborted) return error;
  if (tools.processes.stopped) return new MediaToolInterrupted(tool, step, stoppedByShutdown);
  const failed = error as {
    killed?: boolean;
    code?: unknown;
    signal?: NodeJS.Signals | null;
    stderr?: string | Buffer;
  };
  // execFile kills a tool that outlives its `timeout` and marks the error `killed`.
  if (failed.killed) return new MediaToolTimeout(step, timeoutMs);
  const stoppedBy = stoppingSignal(tool, {
    code: typeof failed.code === 'number' ? failed.code : null,
    signal: failed.signal ?? null,
  });
  if (stoppedBy) return new MediaToolInterrupted(tool, step, stoppedBy);
  return new MediaToolError(lastLine(failed.stderr?.toString('utf8') ?? String(error)));
}

/** Time limits of the tools, in milliseconds; each run of a tool gets its own. */
export interface MediaToolTimeouts {
  /** One ffprobe run. Default 60 000. */
  probeMs: number;
  /** One ffmpeg run that samples frames. Default 120 000. */
  sampleMs: number;
}

export const defaultMediaToolTimeouts: MediaToolTimeouts = { probeMs: 60_000, sampleMs: 120_000 };

interface ProbeOutput {
  streams?: {
    codec_type?: string;
    width?: number;
    height?: number;
    avg_frame_rate?: string;
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
  timeoutMs = defaultMediaToolTimeouts.probeMs,
): Promise<MediaProbe> {
  const probe = await probeStreams(tools, file, kind, signal, timeoutMs);
  if (kind === 'video' && probe.durationSeconds === null) {
    throw new MediaToolError('it has no duration');
  }
  return probe;
}

/**
 * As probeMedia, but a clip whose container states no duration is read for its picture, with a
 * duration of null: its size is known, and can be held to a limit, all the same.
 */
export async function probeStreams(
  tools: MediaTools,
  file: string,
  kind: 'image' | 'video',
  signal?: AbortSignal,
  timeoutMs = defaultMediaToolTimeouts.probeMs,
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
        'stream=codec_type,width,height,avg_frame_rate:stream_tags=rotate:stream_side_data=rotation:format=duration,format_name',
        '-of',
        'json',
        file,
      ],
      { timeout: timeoutMs, signal },
    );
    output = JSON.parse(stdout) as ProbeOutput;
  } catch (error) {
    throw toolFailure(error, tools, 'ffprobe', 'probe', timeoutMs, signal);
  }
  const video = output.streams?.find((stream) => stream.codec_type === 'video');
  if (!video?.width || !video.height) throw new MediaToolError('it has no picture');
  const rotation = Math.abs(
    Number(video.side_data_list?.find((data) => data.rotation !== undefined)?.rotation ?? 0) ||
      Number(video.tags?.rotate ?? 0),
  );
  const sideways = rotation % 180 === 90;
  const duration = Number(output.format?.duration);
  // "30000/1001"; "0/0" where the container states none.
  const [frames, seconds] = (video.avg_frame_rate ?? '').split('/').map(Number);
  const framesPerSecond = frames! > 0 && seconds! > 0 ? frames! / seconds! : null;
  return {
    width: sideways ? video.height : video.width,
    height: sideways ? video.width : video.height,
    durationSeconds: kind === 'video' && duration > 0 ? duration : null,
    framesPerSecond: kind === 'video' ? framesPerSecond : null,
    hasAudio: output.streams?.some((stream) => stream.codec_type === 'audio') ?? false,
  };
}

/** Which frames of a file to sample. */
export type FrameSampling =
  /** The first frame: a photo. */
  | { kind: 'still' }
  /** Every frame decoded, `fps` a second kept: exact, but costs as much as the clip is long. */
  | { kind: 'decode'; fps: number }
  /**
   * The keyframe at or before each point, reached by seeking and decoding nothing else: costs
   * one frame a point however long the clip is, lands up to a keyframe interval early.
   */
  | { kind: 'seek'; atSeconds: number[] };

/** An ffconcat list that plays `file` cut to a millisecond at each point. */
function concatList(file: string, atSeconds: number[]): string {
  const entry = `file '${file.replaceAll("'", "'\\''")}'`;
  const entries = atSeconds.map(
    (at) => `${entry}\ninpoint ${at.toFixed(3)}\noutpoint ${(at + 0.001).toFixed(3)}\n`,
  );
  return ['ffconcat version 1.0\n', ...entries].join('');
}

/** ffmpeg's input and filter arguments for a sampling; `list` is where a seek's list is written. */
function samplingArgs(
  sampling: FrameSampling,
  file: string,
  list: string,
  scale: string,
): string[] {
  switch (sampling.kind) {
    case 'still':
      return ['-i', file, '-frames:v', '1', '-vf', scale];
    case 'decode':
      return ['-i', file, '-vf', `fps=${sampling.fps},${scale}`];
    case 'seek':
      // The list's entries are the file cut to each point: the concat demuxer seeks to each in
      // turn, and skipping non-key frames leaves one frame an entry. Frames are renumbered a
      // second apart and written at 1 fps, so none is dropped or repeated to keep a frame rate.
      return [
        '-skip_frame',
        'nokey',
        '-f',
        'concat',
        '-safe',
        '0',
        '-i',
        list,
        '-frames:v',
        String(sampling.atSeconds.length),
        '-r',
        '1',
        '-vf',
        `setpts=N/TB,${scale}`,
      ];
  }
}

/**
 * Decodes frames as small RGB pictures (`width`×`height`, 3 bytes a pixel), in order. Throws
 * MediaToolError when nothing can be decoded, MediaToolTimeout past `timeoutMs`.
 */
export async function sampleFrames(
  tools: MediaTools,
  file: string,
  options: { width: number; height: number; sampling: FrameSampling },
  signal?: AbortSignal,
  timeoutMs = defaultMediaToolTimeouts.sampleMs,
): Promise<Buffer[]> {
  const { width, height, sampling } = options;
  const scale = `scale=${width}:${height},format=rgb24`;
  const list = `${file}.samples.ffconcat`;
  if (sampling.kind === 'seek') await writeFile(list, concatList(file, sampling.atSeconds));
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
        ...samplingArgs(sampling, file, list, scale),
        '-an',
        '-f',
        'rawvideo',
        'pipe:1',
      ],
      { timeout: timeoutMs, signal, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    ));
  } catch (error) {
    throw toolFailure(error, tools, 'ffmpeg', 'sample frames', timeoutMs, signal);
  } finally {
    if (sampling.kind === 'seek') await rm(list, { force: true });
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
 * Runs ffmpeg with `args` (outputs included) under a supervisor that kills it if the worker
 * dies, reporting its progress towards `totalSeconds` of output. It waits for its turn in the
 * tools' pool first. An abort kills ffmpeg and rejects once it has exited, so the caller can
 * remove its partial output. Throws MediaToolInterrupted when a signal from elsewhere stopped
 * ffmpeg, MediaToolError when ffmpeg failed by itself. ffmpeg runs in a process group of its
 * own: a terminal's Ctrl-C reaches the worker, which stops its renders itself (the pool's
 * `stop`, also MediaToolInterrupted).
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
  try {
    await tools.processes.run(options.signal, (signal) =>
      superviseFfmpeg(tools, args, { ...options, signal }),
    );
  } catch (error) {
    if (!options.signal.aborted && tools.processes.stopped)
      throw new MediaToolInterrupted('ffmpeg', 'render', stoppedByShutdown);
    throw error;
  }
}

async function superviseFfmpeg(
  tools: MediaTools,
  args: string[],
  options: Parameters<typeof runFfmpeg>[2],
): Promise<void> {
  options.signal.throwIfAborted();
  const {
    supervisor: child,
    ended,
    kill: stop,
  } = spawnSupervised(
    tools.ffmpeg,
    ['-nostdin', '-hide_banner', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', ...args],
    { output: 'pipe', cwd: options.cwd, detached: true },
  );
  // ffmpeg, started by the supervisor a moment later, inherits its priority.
  tools.processes.lowerPriority(child.pid);
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
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
    const end = await ended;
    options.signal.throwIfAborted();
    if (end.code === 0) return;
    // What ffmpeg wrote before a signal stopped it is not why it stopped (at `-loglevel error`
    // that is often a fontconfig warning from the title card).
    const stoppedBy = stoppingSignal('ffmpeg', end);
    if (stoppedBy) throw new MediaToolInterrupted('ffmpeg', 'render', stoppedBy);
    throw new MediaToolError(lastLine(stderr.join('')));
  } finally {
    options.signal.removeEventListener('abort', stop);
    stop();
  }
}
