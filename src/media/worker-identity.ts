// A worker polling the media task queue says in its identity which ffmpeg it runs, so the API,
// which runs no media tools, can tell from Temporal's list of pollers (DescribeTaskQueue)
// whether any worker can analyse and render, and report the version.
import os from 'node:os';

const marker = ' | ffmpeg: ';
const none = 'none';
/** Temporal refuses identities longer than its id limit; a version line is well within it. */
const maxVersionLength = 160;

/** `<pid>@<host> | ffmpeg: <version line>`, or `… | ffmpeg: none` for a worker without it. */
export function mediaWorkerIdentity(ffmpegVersion: string | null): string {
  const version = ffmpegVersion?.slice(0, maxVersionLength) || none;
  return `${process.pid}@${os.hostname()}${marker}${version}`;
}

/**
 * The ffmpeg version line a media worker's identity names; null for a worker without ffmpeg,
 * undefined for an identity not made by `mediaWorkerIdentity`.
 */
export function ffmpegVersionOfIdentity(identity: string): string | null | undefined {
  const at = identity.indexOf(marker);
  if (at < 0) return undefined;
  const version = identity.slice(at + marker.length);
  return version === none ? null : version;
}
