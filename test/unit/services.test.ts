import { renderServices } from '../../src/render/services';
import { renderTable } from '../../src/render/table';
import { runCli } from '../support/cli';
import { kubeAnswering, okJson } from '../support/fake-kube';

describe('renderTable', () => {
  it('pads every column but the last to its widest cell plus two spaces', () => {
    expect(
      renderTable([
        ['a', 'bbb', 'c'],
        ['dddd', 'e', 'ffff'],
      ]),
    ).toBe('a     bbb  c\ndddd  e    ffff\n');
  });
});

describe('renderServices', () => {
  it('lists each service with its addresses, sorted, with no blank line between them', () => {
    const text = renderServices([
      {
        namespace: 'shop',
        name: 'web',
        ports: [80, 443],
        addresses: ['198.18.101.10', '198.18.101.11'],
      },
      { namespace: 'bank', name: 'db', ports: [], addresses: [] },
    ]);
    expect(text).toBe(
      [
        'Service   Upstream       Port',
        'bank/db   <none>         <none>',
        'shop/web  198.18.101.10  80,443',
        '          198.18.101.11  80,443',
        '',
      ].join('\n'),
    );
    expect(text).not.toMatch(/\n\s*\n/);
  });
});

/** One opted-in namespace (and kube-system, which never counts) with one Service. */
function shopCluster(): ReturnType<typeof kubeAnswering> {
  return kubeAnswering({
    '/api/v1/namespaces?labelSelector=injector.nsm.nginx.com%2Fauto-inject%3Denabled': okJson({
      items: [{ metadata: { name: 'shop' } }, { metadata: { name: 'kube-system' } }],
    }),
    '/api/v1/namespaces/shop/services': okJson({
      items: [{ metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } }],
    }),
    '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices': okJson({
      items: [
        {
          metadata: { name: 'web-x', labels: { 'kubernetes.io/service-name': 'web' } },
          endpoints: [{ addresses: ['198.18.101.7'] }],
        },
      ],
    }),
  });
}

describe('services', () => {
  it('asks for the opted-in namespaces, then their Services and EndpointSlices', async () => {
    const { kube, paths } = shopCluster();
    const result = await runCli(['services'], { kube });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Service   Upstream      Port\nshop/web  198.18.101.7  80\n');
    expect(paths).not.toContain('/api/v1/namespaces/kube-system/services');
  });

  it('prints the same Services as a JSON document with -o json', async () => {
    const result = await runCli(['services', '-o', 'json'], { kube: shopCluster().kube });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { namespace: 'shop', name: 'web', ports: [80], addresses: ['198.18.101.7'] },
    ]);
  });
});
