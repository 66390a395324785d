// top's tables, byte for byte, from answers of the metrics API.
import type { KubeAccess } from '../../src/runtime/kube/access';
import { runCli } from '../support/cli';
import { expectGolden } from '../support/golden';
import { trafficList } from '../support/traffic-lists';

const base = '/apis/metrics.smi-spec.io/v1alpha1';

function kubeAnswering(routes: Record<string, unknown>): KubeAccess {
  return {
    getRaw: (_target, path) => {
      const body = routes[path];
      return Promise.resolve(
        body === undefined
          ? { status: 404, body: '{"kind":"Status","message":"the server could not find the requested resource"}' }
          : { status: 200, body: JSON.stringify(body) },
      );
    },
  };
}

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
    const kube = kubeAnswering({
      [`${base}/namespaces/shop/deployments`]: deployments,
      [`${base}/namespaces/shop/statefulsets`]: statefulSets,
      [`${base}/namespaces/shop/daemonsets`]: empty,
    });
    const result = await runCli(['top', '-n', 'shop'], { kube });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectGolden('top/workloads.txt', result.stdout);
  });

  it('list one resource edges with latencies rounded up to whole milliseconds', async () => {
    const kube = kubeAnswering({ [`${base}/namespaces/shop/deployments/productpage-v1/edges`]: edges });
    const result = await runCli(['top', 'deploy/productpage-v1', '-n', 'shop'], { kube });
    expect(result.stderr).toBe('');
    expectGolden('top/edges.txt', result.stdout);
  });
});
