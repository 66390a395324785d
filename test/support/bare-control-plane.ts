// A bare control plane (etcd, kube-apiserver, kube-controller-manager) on loopback for tests that
// need a real API server but no node: the binaries are built from their Go modules on first use
// by scripts/build-k8s-binaries.sh (a cached build answers at once), the state lives in a
// temporary directory that stopping removes.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../cluster/harness/control-plane';
import type { ControlPlane } from '../cluster/harness/control-plane';

/** How long a first (cold) build may take. */
export const K8S_BUILD_TIMEOUT_MS = 20 * 60_000;
/** How long starting the control plane may take once the binaries are there. */
export const START_TIMEOUT_MS = 120_000;
/** For a beforeAll that starts one. */
export const BARE_CONTROL_PLANE_TIMEOUT_MS = K8S_BUILD_TIMEOUT_MS + START_TIMEOUT_MS;

const repoRoot = join(__dirname, '..', '..');

/**
 * The directory holding kube-apiserver, etcd and the rest; root is the repository's (bundled
 * callers, whose __dirname is elsewhere, pass it).
 */
export function k8sBinDir(root = repoRoot): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      ['scripts/build-k8s-binaries.sh'],
      { cwd: root, timeout: K8S_BUILD_TIMEOUT_MS },
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

export interface BareControlPlane {
  readonly plane: ControlPlane;
  /** Stops the control plane and removes its state directory. */
  stop(): Promise<void>;
}

/**
 * A control plane whose state lives under a new temporary directory named after `prefix`; root
 * as for k8sBinDir.
 */
export async function startBareControlPlane(
  prefix: string,
  root = repoRoot,
): Promise<BareControlPlane> {
  const stateRoot = await mkdtemp(join(tmpdir(), prefix));
  const remove = (): Promise<void> => rm(stateRoot, { recursive: true, force: true });
  let plane: ControlPlane;
  try {
    plane = await startControlPlane({
      stateDir: join(stateRoot, 'state'),
      bindAddress: '127.0.0.1',
      serviceCidr: '198.19.240.0/20',
      kubernetesServiceIP: '198.19.240.1',
      binDir: await k8sBinDir(root),
    });
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    plane,
    stop: async () => {
      try {
        await plane.stop();
      } finally {
        await remove();
      }
    },
  };
}
