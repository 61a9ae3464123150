// `npm run build` step: writes the web page to dist/web, which the compiled API serves, and
// prints each file's size as sent (raw and gzipped).
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildWebPage, builtWebPageDir } from './build.js';
import { makeDirectory } from '../directories.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = builtWebPageDir(root);
const assets = await buildWebPage();
await rm(dir, { recursive: true, force: true });
for (const [name, { body }] of assets) {
  await makeDirectory(path.dirname(path.join(dir, name)));
  await writeFile(path.join(dir, name), body);
  if (!name.endsWith('.map')) {
    console.log(`web page: ${name} ${body.length} bytes (${gzipSync(body).length} gzipped)`);
  }
}
await writeFile(path.join(dir, 'manifest.json'), JSON.stringify([...assets.keys()]));
console.log(`web page written to ${path.relative(root, dir)}`);
