// Links between the pages of README.md and docs/ must land: on a file that exists and, when the
// link names a section, on a heading of that page.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readDocPages, repositoryRoot, withoutCodeBlocks } from '../support/docs.js';

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a page's headings; a repeated heading gets `-1`, `-2`… as on GitHub. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of withoutCodeBlocks(text).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const anchor = headingAnchor(heading!);
    let unique = anchor;
    for (let n = 1; anchors.has(unique); n += 1) unique = `${anchor}-${n}`;
    anchors.add(unique);
  }
  return anchors;
}

/** The relative link targets of a page's prose: not in code, not to another site. */
function relativeLinks(text: string): string[] {
  const prose = withoutCodeBlocks(text).replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^()\s]+)(?: +"[^"]*")?\)/g)]
    .map(([, target]) => target!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe('links between the docs', () => {
  it('makes anchors as GitHub does', () => {
    assert.equal(headingAnchor('One process: `npm start`'), 'one-process-npm-start');
    assert.equal(headingAnchor('Users, ownership and limits'), 'users-ownership-and-limits');
    assert.deepEqual([...anchorsOf('# A\n```\n# not a heading\n```\n## A\n')], ['a', 'a-1']);
  });

  it('points every relative link of README.md and docs/ at a file and heading that exist', async () => {
    const pages = await readDocPages();
    const anchors = new Map(pages.map(({ file, text }) => [file, anchorsOf(text)]));
    const broken = pages.flatMap(({ file, text }) =>
      relativeLinks(text).flatMap((link) => {
        const [target, anchor] = link.split('#') as [string, string | undefined];
        const linked = target === '' ? file : path.posix.join(path.posix.dirname(file), target);
        if (!existsSync(path.join(repositoryRoot, linked)))
          return [`${file}: ${link} (no such file)`];
        if (anchor === undefined) return [];
        const headings = anchors.get(linked);
        if (!headings) return [`${file}: ${link} (an anchor into a page that is not a doc)`];
        return headings.has(anchor) ? [] : [`${file}: ${link} (no such heading)`];
      }),
    );
    assert.deepEqual(broken, []);
  });
});
