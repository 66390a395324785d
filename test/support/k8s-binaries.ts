// The test cluster's Kubernetes binaries for tests that start a bare control plane: built from
// their Go modules on first use by scripts/build-k8s-binaries.sh, a cached build answers at once.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** How long a first (cold) build may take. */
export const K8S_BUILD_TIMEOUT_MS = 20 * 60_000;

const repoRoot = join(__dirname, '..', '..');

/** The directory holding kube-apiserver, etcd and the rest. */
export function k8sBinDir(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      ['scripts/build-k8s-binaries.sh'],
      { cwd: repoRoot, timeout: K8S_BUILD_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const dir = stdout.trim().split('\n').at(-1) ?? '';
        if (error !== null) reject(new Error(`build-k8s-binaries.sh failed: ${stderr}`));
        else if (!existsSync(join(dir, 'kube-apiserver')))
          reject(new Error(`no binaries in "${dir}"`));
        else resolve(dir);
      },
    );
  });
}
