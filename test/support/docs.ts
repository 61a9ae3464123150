// The documentation as the docs tests read it: README.md and every page under docs/.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface DocPage {
  /** Relative to the repository root, with `/` separators, e.g. `docs/api.md`. */
  file: string;
  text: string;
}

export async function readDocPages(): Promise<DocPage[]> {
  const pages = (await readdir(path.join(repositoryRoot, 'docs')))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return Promise.all(
    ['README.md', ...pages].map(async (file) => ({
      file,
      text: await readFile(path.join(repositoryRoot, file), 'utf8'),
    })),
  );
}

/** The text with fenced code blocks blanked out (their lines kept, so line numbers hold). */
export function withoutCodeBlocks(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (block) =>
    block.replace(/[^\n]/g, ''),
  );
}
