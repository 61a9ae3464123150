/**
 * Where a vlog's outputs live in media storage. Fixed per vlog, so a retried transfer
 * overwrites instead of duplicating, and cleanup knows what to remove. Pure: workflows import it.
 */
export function vlogOutputPrefix(jobId: string): string {
  return `vlogs/${jobId}/`;
}

export function vlogVideoKey(jobId: string): string {
  return `${vlogOutputPrefix(jobId)}video.mp4`;
}

export function vlogThumbnailKey(jobId: string): string {
  return `${vlogOutputPrefix(jobId)}thumbnail.jpg`;
}

/** Where local renders are written in media storage, per vlog and attempt, before delivery. */
export const localRenderPrefix = 'renders/';
