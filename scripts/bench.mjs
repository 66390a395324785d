// `npm run bench -- <name>` runs bench/<name>.mjs (or bench/<name>.ts, bundled by run-ts.mjs);
// without a name, every benchmark in turn.
// Each benchmark prints a human-readable report, then one line per figure:
// "<figure_name> <value> <unit>".
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');
const files = new Map(
  readdirSync(benchDir)
    .filter((file) => /\.(mjs|ts)$/.test(file))
    .map((file) => [file.replace(/\.(mjs|ts)$/, ''), file]),
);
const available = [...files.keys()].sort();
const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(
    `bench: unknown benchmark "${unknown[0]}": expected one of: ${available.join(', ')}`,
  );
  process.exit(2);
}
let failed = 0;
for (const name of requested.length > 0 ? requested : available) {
  const file = join(benchDir, files.get(name));
  const args = file.endsWith('.ts')
    ? [join(benchDir, '..', 'scripts', 'run-ts.mjs'), file]
    : [file];
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) failed += 1;
}
process.exitCode = failed === 0 ? 0 : 1;
