// How this tree's TypeScript runs from source: `node --import ./src/typescript-hooks.ts <entry>.ts`
// (npm start and the other scripts that run sources, the test runner, the processes tests
// start). Node loads this file itself (it strips the types of a file such as this one); the
// hooks below then resolve the `.js` specifiers tsc wants to their `.ts` files and compile each
// one with esbuild, once: the output is kept in .local/typescript until the file changes. These
// hooks run on the loading thread. tsx, which did this before, ran its hooks on a thread of
// their own: the API's start took 1.88 s of CPU under tsx, 0.93 s under these hooks
// (docs/benchmarks.md), and a test run starts over 600 Node processes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync, version as esbuildVersion } from 'esbuild';

const cacheDir = fileURLToPath(new URL('../.local/typescript/', import.meta.url));
// Stack traces name the TypeScript's lines, through the source map each output carries.
process.setSourceMapsEnabled(true);

function compile(file: string, source: string): string {
  return transformSync(source, {
    loader: 'ts',
    format: 'esm',
    target: 'node24',
    sourcemap: 'inline',
    sourcefile: file,
    // As tsconfig.json has it: an import not marked `type` stays, as tsc emits it.
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
  }).code;
}

/** The compiler and how it is called: a change to either compiles every file again. */
const compiler = `esbuild ${esbuildVersion} ${compile.toString()}`;

/** The output for `file`: from the cache while its source is unchanged, else compiled and kept. */
function compiled(file: string): string {
  const source = readFileSync(file, 'utf8');
  const stamp = `// ${createHash('sha1').update(compiler).update(source).digest('hex')}\n`;
  const cached = path.join(cacheDir, `${createHash('sha1').update(file).digest('hex')}.js`);
  try {
    const kept = readFileSync(cached, 'utf8');
    if (kept.startsWith(stamp)) return kept.slice(stamp.length);
  } catch {
    // Not kept yet (or unreadable): compiled below.
  }
  const code = compile(file, source);
  // Through a file of its own and a rename: processes starting at once may compile it together.
  // Kept where the tree is writable; a read-only checkout compiles on every start instead.
  const partial = `${cached}.${process.pid}`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(partial, stamp + code);
    renameSync(partial, cached);
  } catch {
    rmSync(partial, { force: true });
  }
  return code;
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    // From this tree's files, and code given on the command line (`node -e`), not a package's.
    const parent = context.parentURL;
    if (
      parent?.startsWith('file:') &&
      !parent.includes('/node_modules/') &&
      /^\.{1,2}\/.*\.js$/.test(specifier)
    ) {
      const typescript = new URL(`${specifier.slice(0, -'.js'.length)}.ts`, parent);
      if (existsSync(typescript)) return nextResolve(typescript.href, context);
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
    return { format: 'module', source: compiled(fileURLToPath(url)), shortCircuit: true };
  },
});
