// The JSON body parser. Fastify's own refuses a body with a `__proto__` key, or a `constructor`
// key holding a `prototype` (they poison prototypes once merged into an object), with the same
// message as malformed JSON; this one refuses the same bodies and names the key.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError, validationFailed } from '../errors.js';

/** Longest path shown in a message; deeper paths (nested JSON) are cut. */
const maxPathLength = 200;

/**
 * Deepest nesting of arrays and objects a body may have; the API's own bodies nest 3 deep.
 * Checked before parsing: a 1 MB body nested 500 000 deep took 0.5 s of the event loop to parse
 * and walk, every other request waiting behind it.
 */
export const maxJsonDepth = 32;

/** A path as a message shows it: cut at maxPathLength. */
function shownPath(path: string): string {
  return path.length > maxPathLength ? `${path.slice(0, maxPathLength)}…` : path;
}

/** What one pass over a body's text finds, before it is parsed. */
export interface JsonTextScan {
  /** It opens more arrays and objects inside each other than the limit (the scan stops). */
  tooDeep: boolean;
  /**
   * The path of the first key an object holds twice, or null. JSON.parse keeps the last of the
   * two; a proxy or client library in front may keep the first, and the two would disagree on
   * what was asked, as with a query parameter or a form field given twice. Keys are compared as
   * decoded (`"a"` and `"\u0061"` are the same key). Meaningful only for text that parses.
   */
  repeatedKey: string | null;
}

/** Reads `text` as JSON once, for its depth (under `depthLimit`) and a repeated key. */
export function scanJsonText(text: string, depthLimit: number, root: string): JsonTextScan {
  /** An open object (with the keys it holds so far) or array (with its element's index). */
  interface Container {
    keys: Set<string> | null;
    path: string;
    lastKey: string;
    index: number;
  }
  const open: Container[] = [];
  let expectingKey = false;
  let repeatedKey: string | null = null;
  for (let at = 0; at < text.length; at += 1) {
    const char = text.charCodeAt(at);
    const container = open.at(-1);
    if (char === 0x22) {
      const start = at;
      for (at += 1; at < text.length && text.charCodeAt(at) !== 0x22; at += 1) {
        if (text.charCodeAt(at) === 0x5c) at += 1;
      }
      if (repeatedKey !== null || !container?.keys || !expectingKey) continue;
      const key = decodedString(text.slice(start, at + 1));
      if (key === null) continue;
      if (container.keys.has(key)) repeatedKey = `${container.path}.${key}`;
      container.keys.add(key);
      container.lastKey = key;
      expectingKey = false;
    } else if (char === 0x7b || char === 0x5b) {
      if (open.length === depthLimit) return { tooDeep: true, repeatedKey };
      const path = !container
        ? root
        : container.path.length >= maxPathLength
          ? container.path
          : `${container.path}.${container.keys ? container.lastKey : container.index}`;
      open.push({ keys: char === 0x7b ? new Set() : null, path, lastKey: '', index: 0 });
      expectingKey = char === 0x7b;
    } else if (char === 0x7d || char === 0x5d) {
      open.pop();
    } else if (char === 0x2c && container) {
      if (container.keys) expectingKey = true;
      else container.index += 1;
    }
  }
  return { tooDeep: false, repeatedKey };
}

/** A JSON string literal's value, or null for text that is none (the body is malformed). */
function decodedString(literal: string): string | null {
  try {
    return JSON.parse(literal) as string;
  } catch {
    return null;
  }
}

/** A key that could change an object's prototype, and the path of the object holding it. */
export interface ForbiddenKey {
  key: '__proto__' | 'constructor.prototype';
  path: string;
}

/**
 * The first key in `value` that could change an object's prototype, `__proto__` or a
 * `constructor` holding `prototype`, or null. Walks with its own stack: a body may nest as deep
 * as the body limit allows.
 */
export function findForbiddenKey(value: unknown, root: string): ForbiddenKey | null {
  const pending: { value: unknown; path: string }[] = [{ value, path: root }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value: node, path } = next;
    if (typeof node !== 'object' || node === null) continue;
    if (Object.hasOwn(node, '__proto__')) return { key: '__proto__', path };
    const constructor: unknown = Object.hasOwn(node, 'constructor')
      ? (node as { constructor: unknown }).constructor
      : undefined;
    if (typeof constructor === 'object' && constructor !== null) {
      if (Object.hasOwn(constructor, 'prototype')) return { key: 'constructor.prototype', path };
    }
    for (const [key, child] of Object.entries(node)) {
      if (typeof child !== 'object' || child === null) continue;
      pending.push({ value: child, path: path.length < maxPathLength ? `${path}.${key}` : path });
    }
  }
  return null;
}

/**
 * JSON is UTF-8 (RFC 8259): bytes that are not are refused rather than read as U+FFFD, which
 * would store text other than what was sent. A byte order mark is kept, to be refused by name.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The charset parameter of a Content-Type, lower-cased, if it has one. */
function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return match?.[1]?.toLowerCase();
}

/** Parses `application/json` bodies on every route: INVALID_JSON says what is wrong. */
export const jsonBody = fp(
  async (app: FastifyInstance) => {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes, done) => {
      const charset = charsetOf(request.headers['content-type']);
      if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
        done(
          new ApiError(
            'UNSUPPORTED_MEDIA_TYPE',
            `A JSON body in charset ${charset.slice(0, 40)} is not accepted here: expected UTF-8`,
          ),
          undefined,
        );
        return;
      }
      let text: string;
      try {
        text = utf8.decode(bytes as Buffer);
      } catch {
        done(new ApiError('INVALID_JSON', 'Body is not valid UTF-8'), undefined);
        return;
      }
      if (text === '') {
        done(
          new ApiError(
            'INVALID_JSON',
            "Body cannot be empty when content-type is 'application/json'",
          ),
          undefined,
        );
        return;
      }
      if (text.startsWith('\uFEFF')) {
        done(
          new ApiError(
            'INVALID_JSON',
            'Body starts with a byte order mark (U+FEFF), which JSON may not have',
          ),
          undefined,
        );
        return;
      }
      const scan = scanJsonText(text, maxJsonDepth, 'body');
      if (scan.tooDeep) {
        done(
          new ApiError(
            'INVALID_JSON',
            `Body nests arrays and objects more than ${maxJsonDepth} levels deep`,
          ),
          undefined,
        );
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        done(
          new ApiError('INVALID_JSON', `Body is not valid JSON: ${(error as Error).message}`),
          undefined,
        );
        return;
      }
      if (scan.repeatedKey) {
        done(
          validationFailed([
            { field: shownPath(scan.repeatedKey), message: 'given more than once' },
          ]),
          undefined,
        );
        return;
      }
      const forbidden = findForbiddenKey(body, 'body');
      if (forbidden) {
        const path = shownPath(forbidden.path);
        done(
          new ApiError(
            'INVALID_JSON',
            `Body holds a forbidden key: ${path}.${forbidden.key} (no object in a body may have "__proto__", nor a "constructor" with "prototype")`,
          ),
          undefined,
        );
        return;
      }
      done(null, body);
    });
  },
  { name: 'json-body' },
);
