/**
 * Where a vlog's outputs live in media storage. Fixed per vlog, so a retried transfer
 * overwrites instead of duplicating, and cleanup knows what to remove. Pure: workflows import it.
 */
export function vlogOutputPrefix(jobId: string): string {
  return `vlogs/${jobId}/`;
}

/** The vlog whose output a key is (`vlogs/<id>/…`), or null for any other key. */
export function vlogIdOfKey(key: string): string | null {
  return /^vlogs\/([^/]+)\//.exec(key)?.[1] ?? null;
}

export function vlogVideoKey(jobId: string): string {
  return `${vlogOutputPrefix(jobId)}video.mp4`;
}

export function vlogThumbnailKey(jobId: string): string {
  return `${vlogOutputPrefix(jobId)}thumbnail.jpg`;
}

/** Where local renders are written in media storage, per vlog and attempt, before delivery. */
export const localRenderPrefix = 'renders/';
