// Writes the Helm chart charts/nginx-service-mesh from the install manifests (npm run chart), or
// with --check, exits 1 naming every file that differs from what the manifests give.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { buildChart, CHART_DIRECTORY } from '../src/manifests/chart';

// npm runs scripts from the package's directory, whichever checkout it is.
const root = process.cwd();
const directory = join(root, CHART_DIRECTORY);
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
};

/** Files under the chart directory, relative to it; none when it does not exist. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
  } catch {
    return [];
  }
}

const wanted = buildChart(version);
const present = filesUnder(directory);
if (process.argv.includes('--check')) {
  const stale = [
    ...[...wanted]
      .filter(([path, text]) => {
        try {
          return readFileSync(join(directory, path), 'utf8') !== text;
        } catch {
          return true;
        }
      })
      .map(([path]) => path),
    ...present.filter((path) => !wanted.has(path)),
  ];
  if (stale.length > 0) {
    console.error(
      `${CHART_DIRECTORY} is not what the manifests give (run npm run chart): ${stale.join(', ')}`,
    );
    process.exit(1);
  }
  console.error(`${CHART_DIRECTORY}: up to date`);
} else {
  for (const path of present) if (!wanted.has(path)) rmSync(join(directory, path));
  for (const [path, text] of wanted) {
    const target = join(directory, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.tmp`, text);
    renameSync(`${target}.tmp`, target);
  }
  console.error(`${CHART_DIRECTORY}: ${wanted.size} files written`);
}
