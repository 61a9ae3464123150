/** Building the page's DOM from code: text is always text (textContent), never markup. */

export type Child = Node | string | number | null | undefined | false;
type Listeners = Partial<{
  [E in keyof HTMLElementEventMap]: (event: HTMLElementEventMap[E]) => void;
}>;
interface Attributes {
  on?: Listeners;
  [name: string]: string | number | boolean | null | undefined | Listeners;
}

/**
 * An element with attributes (a `false`, null or undefined one is left out, `true` is present)
 * and children. `on` adds event listeners: the page has no inline handlers (its CSP forbids them).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  const { on, ...rest } = attributes;
  for (const [name, value] of Object.entries(rest)) {
    if (value === false || value === null || value === undefined || typeof value === 'object') {
      continue;
    }
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const [type, listener] of Object.entries(on ?? {})) {
    element.addEventListener(type, listener as EventListener);
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** A field: its label (visible, tied by id), the control, and an optional hint. */
let fieldIds = 0;
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLDivElement {
  control.id ||= `field-${++fieldIds}`;
  const hintElement = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement);
}

/** `1.4 MB`, `820 KB`, `12 bytes`: sizes in the units the limits are set in (1 MB = 1024 KB). */
export function formatBytes(bytes: number): string {
  if (bytes < 1_024) return `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1_024;
  let unit = 0;
  while (value >= 1_024 && unit < units.length - 1) {
    value /= 1_024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDateTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** `30 seconds`, `1 minute`, `30 minutes`: a limit's length as people say it. */
export function formatDuration(seconds: number): string {
  const plural = (count: number, unit: string) => `${count} ${unit}${count === 1 ? '' : 's'}`;
  if (seconds < 120 && seconds % 60 !== 0) return plural(seconds, 'second');
  return plural(Math.round(seconds / 60), 'minute');
}

/**
 * Someone's text in quotes, isolated from the words around it (`bdi`): a right-to-left mark
 * left open in it cannot reorder the closing quote or what follows.
 */
export function quoted(text: string): Child[] {
  return ['“', h('bdi', {}, text), '”'];
}
