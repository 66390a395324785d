// Runs a TypeScript entry point of the test tree (the cluster harness) on the pinned Node:
// esbuild bundles it to one CommonJS file under node_modules/.cache, then Node runs it.
//   node scripts/run-ts.mjs <file.ts> [args...]
//   node scripts/run-ts.mjs --bundle-only <file.ts> <out.cjs>   bundle, do not run
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundleOnly = process.argv[2] === '--bundle-only';
const [entry, ...args] = process.argv.slice(bundleOnly ? 3 : 2);
if (entry === undefined || (bundleOnly && args.length !== 1)) {
  console.error(
    'usage: node scripts/run-ts.mjs <file.ts> [args...] | --bundle-only <file.ts> <out.cjs>',
  );
  process.exit(2);
}
const outfile = bundleOnly
  ? resolve(args[0])
  : join(root, 'node_modules', '.cache', 'run-ts', `${basename(entry, '.ts')}.cjs`);
mkdirSync(dirname(outfile), { recursive: true });
await build({
  entryPoints: [resolve(entry)],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  sourcemap: 'inline',
  // esbuild runs its own binary from its package folder, so it stays a plain require.
  external: ['bufferutil', 'utf-8-validate', 'esbuild'],
  define: { 'import.meta.url': 'undefined' },
  logLevel: 'warning',
});
if (!bundleOnly) {
  const result = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...args], {
    stdio: 'inherit',
  });
  process.exitCode = result.status ?? 1;
}
