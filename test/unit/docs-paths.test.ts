// The docs tell a newcomer where things live. A file that moves and a page that still names its
// old place sends them looking for nothing, so every `src/…`, `test/…` and `temporal/…` path a
// page names must exist. `<name>` in a path stands for any one segment (`src/db/<table>.ts`),
// `*` for any part of one.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readDocPages, repositoryRoot } from '../support/docs.js';

const pathPattern = /(?<![\w./@-])(?:src|test|temporal)\/(?:<[^<>\n]*>|[\w.*/-])*/g;

/** Every file and folder under the top-level folders paths are named in, relative to the root. */
async function repositoryPaths(): Promise<Set<string>> {
  const paths = new Set<string>();
  for (const top of ['src', 'test', 'temporal']) {
    paths.add(top);
    for (const entry of await readdir(path.join(repositoryRoot, top), { recursive: true })) {
      paths.add(`${top}/${entry.split(path.sep).join('/')}`);
    }
  }
  return paths;
}

/** A named path as a test of repository paths: placeholders and `*` match within a segment. */
function matcher(named: string): (candidate: string) => boolean {
  const source = named
    .replace(/\/$/, '')
    .split(/(<[^<>]*>|\*)/)
    .map((part) =>
      part.startsWith('<')
        ? '[^/]+'
        : part === '*'
          ? '[^/]*'
          : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  const pattern = new RegExp(`^${source}$`);
  return (candidate) => pattern.test(candidate);
}

/** The paths a text names, without the sentence's closing punctuation. */
function namedPaths(text: string): string[] {
  return [...text.matchAll(pathPattern)].map(([named]) => named.replace(/[.]+$/, ''));
}

describe('paths named in the docs', () => {
  it('finds the paths a page names, placeholders included', () => {
    assert.deepEqual(
      namedPaths(
        'See `src/db/<table>.ts`, test/histories/<workflow type>/ and temporal/. Not @temporalio/x or a/src/b.',
      ),
      ['src/db/<table>.ts', 'test/histories/<workflow type>/', 'temporal/'],
    );
  });

  it('names only files and folders that exist in README.md and docs/', async () => {
    const existing = [...(await repositoryPaths())];
    const dangling = (await readDocPages()).flatMap(({ file, text }) =>
      [...new Set(namedPaths(text))]
        .filter((named) => !existing.some(matcher(named)))
        .map((named) => `${file}: ${named}`),
    );
    assert.deepEqual(
      dangling,
      [],
      'paths the docs name that do not exist: fix the doc or the tree',
    );
  });
});
