// The Traffic Metrics API's pure core: paths, PromQL, quantities and the SMI objects it answers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  SIDECAR_CONTAINER_NAME,
  SIDECAR_SCRAPE_JOB,
  METRIC_OWNER_LABELS,
} from '../../src/manifests/constants';
import { buildTrafficItems, buildTrafficList } from '../../src/manifests/traffic-metrics/build';
import type { PromSample, TrafficResults } from '../../src/manifests/traffic-metrics/build';
import { trafficKind } from '../../src/manifests/traffic-metrics/kinds';
import type { TrafficKindName } from '../../src/manifests/traffic-metrics/kinds';
import { parsePrometheusAddress } from '../../src/manifests/traffic-metrics/prometheus-address';
import { buildTrafficQueries } from '../../src/manifests/traffic-metrics/promql';
import { formatQuantity, parseQuantity } from '../../src/manifests/traffic-metrics/quantity';
import { routeTrafficRequest } from '../../src/manifests/traffic-metrics/routes';
import type { TrafficQuery } from '../../src/manifests/traffic-metrics/types';

const base = '/apis/metrics.smi-spec.io/v1alpha1';
const now = new Date('2026-01-02T03:04:05.678Z');

function query(
  plural: TrafficKindName,
  scope: TrafficQuery['scope'],
  namespace?: string,
  name?: string,
): TrafficQuery {
  const kind = trafficKind(plural);
  if (kind === undefined) throw new Error(plural);
  return { scope, kind, namespace, name, windowMs: 30_000 };
}

function route(path: string): ReturnType<typeof routeTrafficRequest> {
  const url = new URL(path, 'https://api.test');
  return routeTrafficRequest(url.pathname, url.searchParams);
}

describe('routing Traffic Metrics paths', () => {
  it.each([
    [`${base}/namespaces/shop/deployments/`, 'list', 'deployments', 'shop', undefined],
    [`${base}/namespaces/shop/pods/web-1`, 'get', 'pods', 'shop', 'web-1'],
    [`${base}/namespaces/shop/statefulsets/db/edges`, 'edges', 'statefulsets', 'shop', 'db'],
    [`${base}/namespaces/shop/daemonsets`, 'list', 'daemonsets', 'shop', undefined],
    [`${base}/namespaces/`, 'list', 'namespaces', undefined, undefined],
    [`${base}/namespaces/shop`, 'get', 'namespaces', undefined, 'shop'],
    [`${base}/namespaces/shop/edges`, 'edges', 'namespaces', undefined, 'shop'],
    [`${base}/pods`, 'list', 'pods', undefined, undefined],
  ])('routes %s', (path, scope, plural, namespace, name) => {
    expect(route(path)).toEqual({
      kind: 'query',
      query: { scope, kind: trafficKind(plural), namespace, name, windowMs: 30_000 },
    });
  });

  it('takes the window from ?t=', () => {
    const result = route(`${base}/namespaces/shop/pods?t=1m30s`);
    expect(result.kind === 'query' && result.query.windowMs).toBe(90_000);
  });

  it('rejects a malformed window with 400', () => {
    expect(route(`${base}/namespaces/shop/pods?t=soon`)).toEqual({
      kind: 'error',
      code: 400,
      message: 'invalid window t="soon": expected a duration from 1s to 1h0m0s, such as 30s or 5m',
    });
  });

  it('accepts a window of exactly an hour', () => {
    const result = route(`${base}/namespaces/shop/pods?t=60m`);
    expect(result.kind === 'query' && result.query.windowMs).toBe(3_600_000);
  });

  it.each(['1h0m1s', '61m', '720h', '99999999999999h', '500ms', '-5m', '1e9s'])(
    'rejects the window t=%s with 400 naming the bound',
    (window) => {
      expect(route(`${base}/namespaces/shop/pods?t=${window}`)).toEqual({
        kind: 'error',
        code: 400,
        message: `invalid window t="${window}": expected a duration from 1s to 1h0m0s, such as 30s or 5m`,
      });
    },
  );

  it('rejects an overlong window without echoing it whole', () => {
    const result = route(`${base}/namespaces/shop/pods?t=${'1'.repeat(10_000)}s`);
    expect(result).toMatchObject({ kind: 'error', code: 400 });
    expect(result.kind === 'error' && result.message).toBe(
      `invalid window t="${'1'.repeat(32)}…": expected a duration from 1s to 1h0m0s, such as 30s or 5m`,
    );
  });

  it('rejects a window given twice', () => {
    expect(route(`${base}/namespaces/shop/pods?t=5s&t=720h`)).toEqual({
      kind: 'error',
      code: 400,
      message: 'invalid window: parameter t is given 2 times',
    });
  });

  it.each([
    [
      'a namespace of 64 characters',
      `${base}/namespaces/${'a'.repeat(64)}/pods`,
      `invalid namespace "${'a'.repeat(64)}": expected a DNS label of at most 63 characters`,
    ],
    [
      'a namespace that is no DNS label',
      `${base}/namespaces/Shop%22%7D/pods`,
      'invalid namespace "Shop"}": expected a DNS label of at most 63 characters',
    ],
    [
      'a pod name of 300 characters',
      `${base}/namespaces/shop/pods/${'a'.repeat(300)}`,
      `invalid Pod name "${'a'.repeat(64)}…": expected a DNS subdomain of at most 253 characters`,
    ],
    [
      'a namespace resource of 70 characters',
      `${base}/namespaces/${'b'.repeat(70)}/edges`,
      `invalid namespace "${'b'.repeat(64)}…": expected a DNS label of at most 63 characters`,
    ],
  ])('rejects %s with 400 naming the field', (_label, path, message) => {
    expect(route(path)).toEqual({ kind: 'error', code: 400, message });
  });

  it('answers an unsupported kind with 404 naming it', () => {
    expect(route(`${base}/namespaces/shop/jobs`)).toEqual({
      kind: 'error',
      code: 404,
      message: 'Unsupported resource: jobs',
    });
  });

  it('serves discovery documents', () => {
    expect(route('/apis')).toMatchObject({
      kind: 'document',
      body: { kind: 'APIGroupList', groups: [{ name: 'metrics.smi-spec.io' }] },
    });
    expect(route('/apis/metrics.smi-spec.io')).toMatchObject({
      kind: 'document',
      body: {
        kind: 'APIGroup',
        preferredVersion: { groupVersion: 'metrics.smi-spec.io/v1alpha1', version: 'v1alpha1' },
      },
    });
    const list = route(`${base}/`);
    expect(list.kind).toBe('document');
    const body = (list as { body: { resources: { name: string; namespaced: boolean }[] } }).body;
    expect(body.resources.map((resource) => resource.name)).toEqual([
      'namespaces',
      'namespaces/edges',
      'pods',
      'pods/edges',
      'deployments',
      'deployments/edges',
      'statefulsets',
      'statefulsets/edges',
      'daemonsets',
      'daemonsets/edges',
    ]);
    expect(body.resources[0]).toEqual({
      name: 'namespaces',
      singularName: '',
      namespaced: false,
      kind: 'TrafficMetrics',
      verbs: ['get', 'list'],
    });
  });
});

describe('PromQL for Traffic Metrics', () => {
  it('lists a kind in a namespace, by resource and direction', () => {
    const { groupBy, queries } = buildTrafficQueries(query('deployments', 'list', 'shop'));
    expect(groupBy).toEqual(['namespace', 'deployment', 'direction']);
    expect(queries.success_count).toBe(
      'sum by (namespace, deployment, direction) (increase(nginx_mesh_requests_total{namespace="shop", deployment!="", code!="5xx"}[30000ms]))',
    );
    expect(queries.failure_count).toBe(
      'sum by (namespace, deployment, direction) (increase(nginx_mesh_requests_total{namespace="shop", deployment!="", code="5xx"}[30000ms]))',
    );
    expect(queries.p90_response_latency).toBe(
      'histogram_quantile(0.9, sum by (le, namespace, deployment, direction) (increase(nginx_mesh_request_duration_milliseconds_bucket{namespace="shop", deployment!=""}[30000ms])))',
    );
  });

  it('asks one resource for its inbound traffic only', () => {
    const { queries } = buildTrafficQueries(query('pods', 'get', 'shop', 'web-1'));
    expect(queries.success_count).toContain(
      '{namespace="shop", pod="web-1", direction="inbound", code!="5xx"}',
    );
  });

  it('groups edges by the peer labels of both directions', () => {
    const { groupBy, queries } = buildTrafficQueries(query('statefulsets', 'edges', 'shop', 'db'));
    expect(groupBy).toEqual([
      'direction',
      'src_namespace',
      'src_deployment',
      'src_statefulset',
      'src_daemonset',
      'dst_namespace',
      'dst_deployment',
      'dst_statefulset',
      'dst_daemonset',
    ]);
    expect(queries.p99_response_latency).toContain('{namespace="shop", statefulset="db"}');
  });

  it('selects namespaces by the namespace label alone', () => {
    expect(buildTrafficQueries(query('namespaces', 'list')).queries.success_count).toContain(
      '{namespace!="", code!="5xx"}',
    );
    const edges = buildTrafficQueries(query('namespaces', 'edges', undefined, 'shop'));
    expect(edges.groupBy).toEqual(['direction', 'src_namespace', 'dst_namespace']);
  });

  it('escapes label values', () => {
    const { queries } = buildTrafficQueries(query('pods', 'get', 'a"b', 'c\\d'));
    expect(queries.success_count).toContain('{namespace="a\\"b", pod="c\\\\d"');
  });
});

describe('quantities', () => {
  it.each([
    [2.969, '2969m'],
    [9, '9'],
    [0, '0'],
    [1500, '1500'],
    [2000, '2k'],
    [1_500_000, '1500k'],
    [3_000_000, '3M'],
    [0.0004, '0'],
    [12.3456, '12346m'],
    [Number.NaN, '0'],
  ])('formats %p as %p', (value, text) => {
    expect(formatQuantity(value)).toBe(text);
  });

  it.each([
    ['2969m', 2.969],
    ['9', 9],
    ['2k', 2000],
    ['1.5', 1.5],
    ['1e3', 1000],
    ['2Ki', 2048],
    ['500u', 0.0005],
  ])('parses %p', (text, value) => {
    expect(parseQuantity(text)).toBeCloseTo(value, 9);
  });

  it.each(['', 'ms', '1x', '1.2.3'])('rejects %p', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });
});

function results(
  rows: Record<string, readonly [Record<string, string>, number][]>,
): TrafficResults {
  const samples = (name: string): PromSample[] =>
    (rows[name] ?? []).map(([labels, value]) => ({ labels, value }));
  return {
    p99_response_latency: samples('p99'),
    p90_response_latency: samples('p90'),
    p50_response_latency: samples('p50'),
    success_count: samples('success'),
    failure_count: samples('failure'),
  };
}

describe('TrafficMetrics objects', () => {
  it('lists each resource once per direction with traffic, in SMI shape and order', () => {
    const q = query('deployments', 'list', 'shop');
    const { groupBy } = buildTrafficQueries(q);
    const web = { namespace: 'shop', deployment: 'web', direction: 'inbound' };
    const webOut = { namespace: 'shop', deployment: 'web', direction: 'outbound' };
    const idle = { namespace: 'shop', deployment: 'idle', direction: 'inbound' };
    const items = buildTrafficItems(
      q,
      groupBy,
      results({
        p99: [
          [webOut, 48.2],
          [web, 2.969],
        ],
        p90: [[web, 2]],
        p50: [[web, 1.25]],
        success: [
          [web, 59.6],
          [webOut, 10],
          [idle, 0.2],
        ],
        failure: [[web, 1]],
      }),
      now,
    );
    expect(items).toHaveLength(2);
    expect(items[0]).toEqual({
      kind: 'TrafficMetrics',
      apiVersion: 'metrics.smi-spec.io/v1alpha1',
      metadata: {
        name: 'web',
        namespace: 'shop',
        selfLink: '/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web',
        creationTimestamp: '2026-01-02T03:04:05Z',
      },
      timestamp: '2026-01-02T03:04:05Z',
      window: '30s',
      resource: { kind: 'Deployment', namespace: 'shop', name: 'web' },
      edge: { direction: 'from', resource: {} },
      metrics: [
        { name: 'p99_response_latency', unit: 'ms', value: '2969m' },
        { name: 'p90_response_latency', unit: 'ms', value: '2' },
        { name: 'p50_response_latency', unit: 'ms', value: '1250m' },
        { name: 'success_count', value: '60' },
        { name: 'failure_count', value: '1' },
      ],
    });
    expect(items[1]?.edge).toEqual({ direction: 'to', resource: {} });
    expect(items[1]?.metrics.map((metric) => metric.value)).toEqual([
      '48200m',
      '0',
      '0',
      '10',
      '0',
    ]);
    expect(buildTrafficList(q, items, `${base}/namespaces/shop/deployments`)).toEqual({
      kind: 'TrafficMetricsList',
      apiVersion: 'metrics.smi-spec.io/v1alpha1',
      metadata: { selfLink: `${base}/namespaces/shop/deployments` },
      resource: { kind: 'Deployment', namespace: 'shop' },
      items,
    });
  });

  it('names each edge by its peer, of whichever workload kind it is', () => {
    const q = query('deployments', 'edges', 'shop', 'web');
    const { groupBy } = buildTrafficQueries(q);
    const fromIngress = { direction: 'inbound', src_namespace: 'edge', src_daemonset: 'ingress' };
    const toDb = { direction: 'outbound', dst_namespace: 'shop', dst_statefulset: 'db' };
    const fromOutside = { direction: 'inbound' };
    const items = buildTrafficItems(
      q,
      groupBy,
      results({
        success: [
          [toDb, 5],
          [fromIngress, 7],
          [fromOutside, 2],
        ],
      }),
      now,
    );
    expect(items.map((item) => [item.edge, item.metadata.selfLink])).toEqual([
      [{ direction: 'from', resource: {} }, `${base}/namespaces/shop/deployments/web/edges`],
      [
        { direction: 'from', resource: { kind: 'DaemonSet', namespace: 'edge', name: 'ingress' } },
        `${base}/namespaces/shop/deployments/web/edges`,
      ],
      [
        { direction: 'to', resource: { kind: 'StatefulSet', namespace: 'shop', name: 'db' } },
        `${base}/namespaces/shop/deployments/web/edges`,
      ],
    ]);
    expect(buildTrafficList(q, items, 'x').resource).toEqual({
      kind: 'Deployment',
      namespace: 'shop',
      name: 'web',
    });
  });

  it('gives namespaces no namespace of their own', () => {
    const q = query('namespaces', 'edges', undefined, 'shop');
    const { groupBy } = buildTrafficQueries(q);
    const items = buildTrafficItems(
      q,
      groupBy,
      results({ success: [[{ direction: 'outbound', dst_namespace: 'db' }, 3]] }),
      now,
    );
    expect(items[0]?.metadata).toEqual({
      name: 'shop',
      selfLink: `${base}/namespaces/shop/edges`,
      creationTimestamp: '2026-01-02T03:04:05Z',
    });
    expect(items[0]?.edge).toEqual({
      direction: 'to',
      resource: { kind: 'Namespace', name: 'db' },
    });
  });
});

describe('--prometheus-address', () => {
  it.each([
    ['', { kind: 'unset' }],
    ['prometheus.monitoring:9090', { kind: 'url', url: 'http://prometheus.monitoring.svc:9090' }],
    ['http://127.0.0.1:9090/', { kind: 'url', url: 'http://127.0.0.1:9090' }],
    ['https://prom.example.test/base', { kind: 'url', url: 'https://prom.example.test/base' }],
  ])('reads %p', (text, expected) => {
    expect(parsePrometheusAddress(text)).toEqual(expected);
  });

  it.each(['prometheus:9090', 'prometheus.monitoring', 'a.b:99999', 'ftp://x'])(
    'rejects %p naming the flag and the formats',
    (text) => {
      expect(parsePrometheusAddress(text)).toEqual({
        kind: 'invalid',
        message: `invalid --prometheus-address "${text}": expected <service-name>.<namespace>:<port> or an http(s) URL`,
      });
    },
  );
});

describe('the shipped scrape job', () => {
  const [job] = parse(
    readFileSync(
      join(
        __dirname,
        '..',
        '..',
        'examples',
        'prometheus',
        'nginx-mesh-sidecars-scrape-config.yaml',
      ),
      'utf8',
    ),
  ) as { job_name: string; relabel_configs: { regex?: string; target_label?: string }[] }[];

  it('keeps only the sidecar container and names the labels the queries use', () => {
    expect(job?.job_name).toBe(SIDECAR_SCRAPE_JOB);
    const rules = job?.relabel_configs ?? [];
    expect(rules[0]?.regex).toBe(SIDECAR_CONTAINER_NAME);
    expect(rules.map((rule) => rule.target_label).filter(Boolean)).toEqual(['namespace', 'pod']);
    expect(rules.some((rule) => rule.regex?.includes(`(${METRIC_OWNER_LABELS.join('|')})`))).toBe(
      true,
    );
  });
});
