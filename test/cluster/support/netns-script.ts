// A TypeScript entry point run inside a pod's network namespace, as that pod's code would run:
// bundled once with esbuild into a CommonJS file (the repository's modules, nats.js included),
// then started on the pinned Node under nsenter, with one JSON argument; it prints one JSON line.
// Only the network namespace changes (and, when asked, the user: the sidecar's uid 2102, whose
// traffic the pod's redirect lets through, as a sidecar container's own would be), so the bundle
// is read from the host's files.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { inNetns } from './node-access';

/** Bundles entry (a .ts file) into a fresh temporary directory; resolves with the bundle's path. */
export async function bundleScript(entry: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nmk-script-'));
  // Readable by any user the script may run as.
  chmodSync(dir, 0o755);
  const outfile = join(dir, `${basename(entry, '.ts')}.cjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    external: ['bufferutil', 'utf-8-validate'],
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Runs the bundle in the network namespace at netns (a host path) with input as its argument,
 * as root or as uid; resolves with the JSON it printed. Killed after timeoutMs.
 */
export async function runScriptIn<T>(
  netns: string,
  bundle: string,
  input: unknown,
  timeoutMs: number,
  uid?: number,
): Promise<T> {
  const user =
    uid === undefined
      ? []
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
  const [file, args] = inNetns(netns, [...user, process.execPath, bundle, JSON.stringify(input)]);
  const result = await execa(file, args, { reject: false, timeout: timeoutMs });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.exitCode !== 0 || line === '')
    throw new Error(
      `${basename(bundle)} in ${netns} failed (${result.timedOut ? `timed out after ${timeoutMs}ms` : `exit ${result.exitCode}`}): ${result.stderr.slice(0, 500)}`,
    );
  return JSON.parse(line) as T;
}
