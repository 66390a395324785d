// Runs a TypeScript entry point of the test tree (the cluster harness) on the pinned Node:
// esbuild bundles it to one CommonJS file under node_modules/.cache, then Node runs it.
//   node scripts/run-ts.mjs <file.ts> [args...]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (entry === undefined) {
  console.error('usage: node scripts/run-ts.mjs <file.ts> [args...]');
  process.exit(2);
}
const outDir = join(root, 'node_modules', '.cache', 'run-ts');
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, `${basename(entry, '.ts')}.cjs`);
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
const result = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...args], {
  stdio: 'inherit',
});
process.exitCode = result.status ?? 1;
