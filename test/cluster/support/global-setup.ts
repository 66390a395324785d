// The cluster tier shares one cluster (instance 1) per run, started here and stopped in
// global-teardown.ts. Its kubeconfig reaches the tests through the environment.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../harness/cluster';

export const TEST_CLUSTER_INSTANCE = 1;

export default async function globalSetup(): Promise<void> {
  const root = join(__dirname, '..', '..', '..');
  const stateDir = join(root, '.cluster-test');
  mkdirSync(stateDir, { recursive: true });
  const cluster = await startCluster({
    instance: TEST_CLUSTER_INSTANCE,
    stateDir,
    root,
    log: (line) => process.stderr.write(`[cluster] ${line}\n`),
  });
  process.env.NMK_TEST_KUBECONFIG = cluster.kubeconfig;
  process.env.NMK_TEST_KUBECTL = join(cluster.binDir, 'kubectl');
  process.env.NMK_TEST_STATE_DIR = stateDir;
  process.env.NMK_TEST_NODE = cluster.nodeName;
}
