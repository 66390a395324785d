// top's tables, byte for byte, from answers of the metrics API.
import { runCli } from '../support/cli';
import { kubeAnswering, okJson } from '../support/fake-kube';
import { expectGolden } from '../support/golden';
import { trafficList } from '../support/traffic-lists';

const base = '/apis/metrics.smi-spec.io/v1alpha1';

const shop = (deployment: string, direction: string): Record<string, string> => ({
  namespace: 'shop',
  deployment,
  direction,
});

const deployments = trafficList('deployments', 'list', { namespace: 'shop' }, [
  [shop('productpage-v1', 'inbound'), 48.5, 20, 9.2, 221, 0],
  [shop('productpage-v1', 'outbound'), 91, 22, 15, 150, 3],
  [shop('reviews-v2', 'inbound'), 12, 8, 2.969, 54, 6],
  [shop('ratings-v1', 'outbound'), 3, 2, 1, 7, 0],
]);
const statefulSets = trafficList('statefulsets', 'list', { namespace: 'shop' }, [
  [{ namespace: 'shop', statefulset: 'db', direction: 'inbound' }, 5, 4, 3, 100, 0],
]);
const empty = trafficList('daemonsets', 'list', { namespace: 'shop' }, []);
const edges = trafficList('deployments', 'edges', { namespace: 'shop', name: 'productpage-v1' }, [
  [{ direction: 'outbound', dst_namespace: 'shop', dst_deployment: 'reviews-v2' }, 91, 22, 15, 54, 0],
  [{ direction: 'outbound', dst_namespace: 'shop', dst_deployment: 'details-v1' }, 4.2, 3, 2969e-3, 96, 3],
  [{ direction: 'inbound', src_namespace: 'edge', src_daemonset: 'nginx-ingress' }, 48.5, 20, 9.2, 221, 0],
  [{ direction: 'inbound' }, 10, 10, 10, 4, 1],
]);

describe('top tables', () => {
  it('summarise each workload kind with traffic, success rates per direction', async () => {
    const { kube } = kubeAnswering({
      [`${base}/namespaces/shop/deployments`]: okJson(deployments),
      [`${base}/namespaces/shop/statefulsets`]: okJson(statefulSets),
      [`${base}/namespaces/shop/daemonsets`]: okJson(empty),
    });
    const result = await runCli(['top', '-n', 'shop'], { kube });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectGolden('top/workloads.txt', result.stdout);
  });

  it('list one resource edges with latencies rounded up to whole milliseconds', async () => {
    const { kube } = kubeAnswering({
      [`${base}/namespaces/shop/deployments/productpage-v1/edges`]: okJson(edges),
    });
    const result = await runCli(['top', 'deploy/productpage-v1', '-n', 'shop'], { kube });
    expect(result.stderr).toBe('');
    expectGolden('top/edges.txt', result.stdout);
  });
});
