// The cluster tier shares one cluster per run, started here and stopped in global-teardown.ts.
// Its kubeconfig reaches the tests through the environment. The instance is 1 unless
// NMK_TEST_CLUSTER_INSTANCE names another (1-7), so two checkouts can run the tier at once.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../harness/cluster';

export const TEST_CLUSTER_INSTANCE = clusterInstance(process.env.NMK_TEST_CLUSTER_INSTANCE);

function clusterInstance(text: string | undefined): number {
  if (text === undefined || text === '') return 1;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 7)
    throw new Error(`NMK_TEST_CLUSTER_INSTANCE must be an integer from 1 to 7, got "${text}"`);
  return value;
}

export default async function globalSetup(): Promise<void> {
  const root = join(__dirname, '..', '..', '..');
  // Each instance keeps its own state: starting one stops whatever its state directory ran.
  const stateDir = join(
    root,
    TEST_CLUSTER_INSTANCE === 1 ? '.cluster-test' : `.cluster-test-${TEST_CLUSTER_INSTANCE}`,
  );
  mkdirSync(stateDir, { recursive: true });
  // The cluster and e2e tiers share one cluster: in one Jest run, the second setup finds the
  // first one's cluster running and keeps it.
  const holder = process.env.NMK_TEST_NODE_HOLDER;
  if (holder !== undefined && existsSync(`/proc/${holder}`)) return;
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
  process.env.NMK_TEST_NODE_DIR = cluster.nodeStateDir;
  process.env.NMK_TEST_NODE_HOLDER = String(cluster.holderPid);
}
