// `npm run cluster:up` / `npm run cluster:down`: the local cluster (instance 0) in .cluster/.
// `build` only builds (or finds cached) what a cluster runs: the Kubernetes binaries, CoreDNS
// and the images. Run from the repository root (npm does that).
import { copyFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildAll, startCluster, stopCluster } from './cluster';

async function main(): Promise<void> {
  const [command] = process.argv.slice(2);
  const stateDir = process.env.NMK_CLUSTER_DIR ?? join(process.cwd(), '.cluster');
  const instance = Number(process.env.NMK_CLUSTER_INSTANCE ?? 0);
  switch (command) {
    case 'up': {
      const cluster = await startCluster({ instance, stateDir, root: process.cwd() });
      copyFileSync(cluster.kubeconfig, join(stateDir, 'kubeconfig'));
      // The real kubectl, built with the server, next to the kubeconfig.
      const kubectl = join(stateDir, 'bin', 'kubectl');
      mkdirSync(join(stateDir, 'bin'), { recursive: true });
      rmSync(kubectl, { force: true });
      symlinkSync(join(cluster.binDir, 'kubectl'), kubectl);
      process.stdout.write(`kubeconfig: ${join(stateDir, 'kubeconfig')}\nkubectl:    ${kubectl}\n`);
      return;
    }
    case 'build': {
      const built = await buildAll(process.cwd(), 'all', (line) =>
        process.stderr.write(`${line}\n`),
      );
      process.stderr.write(`built: ${built.images.map((image) => image.ref).join(', ')}\n`);
      return;
    }
    case 'down':
      await stopCluster(stateDir, instance);
      process.stderr.write(`cluster ${instance} stopped\n`);
      return;
    default:
      throw new Error(`usage: cluster (up|down|build); got ${JSON.stringify(command)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
