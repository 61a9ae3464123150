/**
 * Measures a picked photo or clip in the browser, as ffprobe will once it is uploaded: a photo's
 * pixels, a clip's size as displayed and its length. Null when the browser cannot read it (a
 * format it does not decode, HEIC say): the API then decides.
 */
import type { MeasuredMedia, MediaKind } from '../../kinds/vlog/upload-rules.js';

const giveUpMs = 10_000;

export async function measureMedia(file: File, kind: MediaKind): Promise<MeasuredMedia | null> {
  if (kind === 'image') {
    try {
      const bitmap = await createImageBitmap(file);
      const measured = { width: bitmap.width, height: bitmap.height, durationSeconds: null };
      bitmap.close();
      return measured;
    } catch {
      return null;
    }
  }
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  video.preload = 'metadata';
  video.muted = true;
  try {
    await new Promise<void>((resolve, reject) => {
      video.addEventListener('loadedmetadata', () => resolve(), { once: true });
      video.addEventListener('error', () => reject(new Error('unreadable')), { once: true });
      setTimeout(() => reject(new Error('too slow')), giveUpMs);
      video.src = url;
    });
    return {
      width: video.videoWidth,
      height: video.videoHeight,
      durationSeconds: Number.isFinite(video.duration) ? video.duration : null,
    };
  } catch {
    return null;
  } finally {
    video.removeAttribute('src');
    video.load();
    URL.revokeObjectURL(url);
  }
}
