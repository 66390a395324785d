import { stopCluster } from '../harness/cluster';
import { TEST_CLUSTER_INSTANCE } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const stateDir = process.env.NMK_TEST_STATE_DIR;
  if (stateDir !== undefined) await stopCluster(stateDir, TEST_CLUSTER_INSTANCE);
}
