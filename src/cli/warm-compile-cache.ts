// Fills Node's compile cache (NODE_COMPILE_CACHE) with every module of failwatch: the image
// build runs it, as the user the pods run as, so that a process of the image loads its
// TypeScript already stripped and compiled: `failwatch probe --help` in 0.31 s with a 96 MiB
// peak RSS instead of 0.44 s and 115 MiB (Node's TypeScript stripper is not loaded). A running
// prober's steady RSS is about the same either way (docs/accuracy.md, "Prober footprint").
//
//   NODE_COMPILE_CACHE=<dir> node src/cli/warm-compile-cache.ts
//
// The cache is Node's own: keyed by Node version, file path, content and user id, so a file
// that changed, another Node or another UID only misses it (and strips as before).
import { globSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Scripts that act when loaded (the CLI runs its argv, the lab's PAM helper checks a login). */
const ENTRY_SCRIPTS = new Set(['cli/main.ts', 'cli/warm-compile-cache.ts', 'lab/iam-verify.ts']);

const dir = module.getCompileCacheDir();
if (dir === undefined) {
  process.stderr.write('warm-compile-cache: set NODE_COMPILE_CACHE to the cache directory\n');
  process.exit(2);
}
const src = fileURLToPath(new URL('../', import.meta.url));
const files = globSync('**/*.ts', { cwd: src })
  .filter((f) => !ENTRY_SCRIPTS.has(f))
  .sort();
for (const f of files) await import(join(src, f));
module.flushCompileCache();
process.stdout.write(`warm-compile-cache: ${files.length} modules in ${dir}\n`);
