/**
 * The items of a model's answer while it is still being written: the answer is JSON,
 * `{"items":[{…},{…},…]}`, streamed in pieces; each item object that is complete so far is
 * shown at once. Only the job's validated `result.items`, at its end, count.
 */

export interface AnswerItem {
  title: string;
  description: string;
  estimatedMinutes?: number;
}

function isItem(value: unknown): value is AnswerItem {
  const item = value as Partial<AnswerItem> | null;
  return typeof item?.title === 'string' && typeof item.description === 'string';
}

/** The complete item objects in the (partial) answer `text`, in order. */
export function itemsSoFar(text: string): AnswerItem[] {
  const key = text.indexOf('"items"');
  const open = key < 0 ? -1 : text.indexOf('[', key);
  if (open < 0) return [];
  const items: AnswerItem[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let index = open + 1; index < text.length; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '{' || char === '[') {
      if (depth === 0) start = index;
      depth += 1;
    } else if (char === '}' || char === ']') {
      if (depth === 0) break;
      depth -= 1;
      if (depth === 0 && char === '}') {
        try {
          const value: unknown = JSON.parse(text.slice(start, index + 1));
          if (isItem(value)) items.push(value);
        } catch {
          // Not an item the page can show yet; the validated result will say.
        }
      }
    }
  }
  return items;
}

/** A model's answer put together from its streamed pieces (`offset` 0 starts it again). */
export class StreamedAnswer {
  private text = '';

  add(piece: { text: string; offset: number }): void {
    if (piece.offset === 0) this.text = piece.text;
    else this.text = this.text.slice(0, piece.offset) + piece.text;
  }

  items(): AnswerItem[] {
    return itemsSoFar(this.text);
  }
}
