/**
 * Builds the web page (src/web/client) with esbuild: one script and one stylesheet, minified,
 * named by their content's hash, and the HTML that loads them. The API serves the result
 * (src/api/routes/web-page.ts): built in memory on the first request when running from source,
 * read from `dist/web/` when compiled (`npm run build` writes it there: src/web/bundle.ts).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const clientDir = fileURLToPath(new URL('./client/', import.meta.url));

/** One file of the built page, as served at `/<name>`. */
export interface WebAsset {
  body: Buffer;
  contentType: string;
  /** Named by its content's hash: cacheable for good. */
  immutable: boolean;
}

/** The built page: `index.html` and the assets it loads, by the path they are served at. */
export type WebAssets = ReadonlyMap<string, WebAsset>;

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

function asset(name: string, body: Buffer): WebAsset {
  return {
    body,
    contentType: contentTypes[path.extname(name)] ?? 'application/octet-stream',
    immutable: name !== 'index.html',
  };
}

/** Bundles the page's script and stylesheet and writes their names into its HTML. */
export async function buildWebPage(): Promise<WebAssets> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { app: path.join(clientDir, 'main.ts'), style: path.join(clientDir, 'app.css') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    outdir: 'assets',
    entryNames: '[name]-[hash]',
    sourcemap: 'linked',
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  });
  const assets = new Map<string, WebAsset>();
  const names: Record<string, string> = {};
  for (const file of result.outputFiles) {
    const name = `assets/${path.basename(file.path)}`;
    assets.set(name, asset(name, Buffer.from(file.contents)));
    const entry = /^(app|style)-[A-Z0-9]+\.(js|css)$/.exec(path.basename(file.path));
    if (entry) names[`${entry[1]}.${entry[2]}`] = `/${name}`;
  }
  const template = await readFile(path.join(clientDir, 'index.html'), 'utf8');
  const html = template.replace(/\/assets\/(app\.js|style\.css)/g, (_match, file: string) => {
    const built = names[file];
    if (!built) throw new Error(`The web page build made no ${file}`);
    return built;
  });
  assets.set('index.html', asset('index.html', Buffer.from(html)));
  return assets;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const runningFromSource = import.meta.url.endsWith('.ts');

/** Where `npm run build` writes the page: `dist/web`, beside the compiled code. */
export const builtWebPageDir = (root: string) => path.join(root, 'dist', 'web');

let loaded: Promise<WebAssets> | undefined;

/**
 * The page to serve, loaded once a process. From source (`npm start`, tests) it is built in
 * memory, in well under a second; compiled (production) it is read from what `npm run build`
 * wrote, so the API needs no build tool at run time. A failed load is tried again next time (a
 * source file being fixed).
 */
export function loadWebPage(): Promise<WebAssets> {
  if (!loaded) {
    loaded = runningFromSource ? buildWebPage() : readBuiltWebPage();
    loaded.catch(() => (loaded = undefined));
  }
  return loaded;
}

async function readBuiltWebPage(): Promise<WebAssets> {
  const dir = builtWebPageDir(path.resolve(here, '../../..'));
  let manifest: string[];
  try {
    manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as string[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(`No web page at ${dir}: run \`npm run build\` first`);
  }
  const assets = new Map<string, WebAsset>();
  for (const name of manifest) assets.set(name, asset(name, await readFile(path.join(dir, name))));
  return assets;
}
