/**
 * The cut of a locally rendered vlog: a title card, then each photo or clip for a share of the
 * requested duration, clips trimmed to their liveliest stretch. Pure: the analyzer plans from
 * measured facts, the generator renders the plan frame-exactly at `renderFps`.
 */
import type { VlogPlan } from '../kinds/vlog/declaration.js';

export const renderFps = 30;
/** An item shown for less than this is not worth its transitions: it is left out. */
const minimumItemFrames = renderFps / 2;

export interface PlannableMedia {
  kind: 'image' | 'video';
  durationSeconds: number | null;
  /** Change between consecutive sampled frames (frameChanges), sampled `sampleFps` a second. */
  changes: number[];
  sampleFps: number | null;
}

const toSeconds = (frames: number) => Math.round((frames / renderFps) * 1000) / 1000;

/** Frames each item gets: clips weigh 1.5, photos 1; a clip never gets more than it lasts. */
function shareFrames(media: PlannableMedia[], available: number): number[] {
  const weights = media.map((item) => (item.kind === 'video' ? 1.5 : 1));
  const caps = media.map((item) =>
    item.kind === 'video' ? Math.floor((item.durationSeconds ?? 0) * renderFps) : Infinity,
  );
  const frames = media.map(() => 0);
  let remaining = available;
  let open = media.map((_, index) => index).filter((index) => caps[index]! > 0);
  while (remaining > 0 && open.length > 0) {
    const weightSum = open.reduce((sum, index) => sum + weights[index]!, 0);
    let given = 0;
    for (const index of open) {
      const take = Math.min(
        Math.floor((remaining * weights[index]!) / weightSum),
        caps[index]! - frames[index]!,
      );
      frames[index]! += take;
      given += take;
    }
    open = open.filter((index) => frames[index]! < caps[index]!);
    if (given === 0) {
      // Rounding leftovers: a frame each, in order.
      for (const index of open.slice(0, remaining)) frames[index]! += 1;
      given = Math.min(remaining, open.length);
      open = open.filter((index) => frames[index]! < caps[index]!);
    }
    remaining -= given;
  }
  return frames;
}

/** Start of the `seconds`-long stretch of a clip with the most change between samples. */
export function liveliestStart(item: PlannableMedia, seconds: number): number {
  const duration = item.durationSeconds ?? 0;
  const latest = Math.max(0, duration - seconds);
  if (!item.sampleFps || item.changes.length === 0 || latest === 0) return 0;
  const fps = item.sampleFps;
  let best = { start: 0, score: -1 };
  for (let sample = 0; sample / fps <= latest; sample += 1) {
    const start = sample / fps;
    const score = item.changes
      .filter((_, index) => (index + 1) / fps > start && (index + 1) / fps <= start + seconds)
      .reduce((sum, change) => sum + change, 0);
    if (score > best.score) best = { start, score };
  }
  return Math.round(Math.min(best.start, latest) * 1000) / 1000;
}

/** Plans `totalSeconds` of vlog from the media, in upload order. */
export function planVlog(media: PlannableMedia[], totalSeconds: number): VlogPlan {
  const total = Math.round(totalSeconds * renderFps);
  const titleFrames = Math.max(
    minimumItemFrames,
    Math.round(Math.min(1.5, totalSeconds * 0.2) * renderFps),
  );
  const fitting = Math.max(1, Math.floor((total - titleFrames) / minimumItemFrames));
  const shown = media.map((item, mediaIndex) => ({ item, mediaIndex })).slice(0, fitting);
  const frames = shareFrames(
    shown.map(({ item }) => item),
    total - titleFrames,
  );
  const items = shown.flatMap(({ item, mediaIndex }, index) => {
    const itemFrames = frames[index]!;
    if (itemFrames === 0) return [];
    const seconds = toSeconds(itemFrames);
    if (item.kind === 'image') return [{ mediaIndex, seconds, segments: [] }];
    const startSeconds = liveliestStart(item, seconds);
    return [
      {
        mediaIndex,
        seconds,
        segments: [
          { startSeconds, endSeconds: Math.round((startSeconds + seconds) * 1000) / 1000 },
        ],
      },
    ];
  });
  const used = items.reduce((sum, item) => sum + Math.round(item.seconds * renderFps), 0);
  // Whatever the media cannot fill (short clips only) stays on the title card.
  return { titleSeconds: toSeconds(total - used), items };
}
