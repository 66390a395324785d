// The agent's request metrics: a take of nginx's counters is read into series and keys, keys
// become label sets resolved from the snapshot, and the registry keeps a bounded number of
// series and prints them in the Prometheus text format.
import {
  lastUpstreamHost,
  parseStatsKey,
  parseStatsTake,
} from '../../src/runtime/agent/metrics/stats';
import { buildPeerIndex, labelsOf, overflowLabels } from '../../src/runtime/agent/metrics/peers';
import type { Labels } from '../../src/runtime/agent/metrics/peers';
import {
  HTTP_FAMILY,
  MAX_SERIES,
  RequestRegistry,
  TCP_FAMILY,
  createRequestRegistry,
  createTcpRegistry,
  escapeLabelValue,
} from '../../src/runtime/agent/metrics/registry';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { expectGolden } from '../support/golden';
import { endpoint, httpPort, service, shopSnapshot } from '../support/sidecar-snapshots';

/** The shop with front/gateway; peers agree with the endpoints, as the controller builds them. */
function snapshot(): MeshSnapshot {
  const base = shopSnapshot();
  return {
    ...base,
    peers: {
      ...base.peers,
      '10.1.0.8': { pod: 'shop/api-2', owner: 'job/api-once' },
      '10.3.0.2': { pod: 'front/gateway-0', owner: 'statefulset/gateway' },
    },
    services: {
      ...base.services,
      ...service(
        'shop/api',
        '10.96.0.11',
        [httpPort(8080)],
        [
          {
            ...endpoint('10.1.0.7', { http: 8080 }, 'shop/api-1', 'shop/api'),
            owner: 'deployment/api',
          },
          {
            ...endpoint('10.1.0.8', { http: 8080 }, 'shop/api-2', 'shop/api'),
            owner: 'job/api-once',
          },
        ],
      ),
      ...service(
        'front/gateway',
        '10.96.0.20',
        [httpPort(80)],
        [
          {
            ...endpoint('10.3.0.2', { http: 8080 }, 'front/gateway-0', 'front/gateway'),
            owner: 'statefulset/gateway',
          },
        ],
      ),
    },
  };
}

describe('parseStatsKey', () => {
  it('reads an inbound key', () => {
    expect(
      parseStatsKey(
        '{"dir":"in","status":200,"peer":"10.3.0.2","peer_id":"spiffe://example.org/ns/front/sa/gateway"}',
      ),
    ).toEqual({
      direction: 'inbound',
      tcp: false,
      status: 200,
      grpcStatus: '',
      peer: '10.3.0.2',
      peerId: 'spiffe://example.org/ns/front/sa/gateway',
    });
  });

  it('reads an outbound key; empty and "-" fields are empty', () => {
    expect(parseStatsKey('{"dir":"out","status":503,"upstream":"-","service":"shop/api"}')).toEqual(
      {
        direction: 'outbound',
        tcp: false,
        status: 503,
        grpcStatus: '',
        upstream: '',
        service: 'shop/api',
      },
    );
  });

  it('reads the gRPC status of HTTP/2 keys, and refuses one that is not a string', () => {
    expect(
      parseStatsKey(
        '{"dir":"out","status":200,"grpc":"5","upstream":"10.1.0.7:9090","service":"shop/rpc"}',
      ),
    ).toMatchObject({ direction: 'outbound', status: 200, grpcStatus: '5' });
    expect(
      parseStatsKey('{"dir":"in","status":200,"grpc":"","peer":"10.3.0.2","peer_id":""}'),
    ).toMatchObject({ direction: 'inbound', grpcStatus: '' });
    expect(
      parseStatsKey('{"dir":"in","status":200,"grpc":5,"peer":"10.3.0.2","peer_id":""}'),
    ).toBeUndefined();
  });

  it('reads TCP keys in both directions', () => {
    expect(
      parseStatsKey('{"proto":"tcp","dir":"in","status":403,"peer":"10.3.0.2","peer_id":""}'),
    ).toEqual({
      direction: 'inbound',
      tcp: true,
      status: 403,
      grpcStatus: '',
      peer: '10.3.0.2',
      peerId: '',
    });
    expect(
      parseStatsKey(
        '{"proto":"tcp","dir":"out","status":200,"upstream":"10.1.0.7:6379","service":"shop/db"}',
      ),
    ).toEqual({
      direction: 'outbound',
      tcp: true,
      status: 200,
      grpcStatus: '',
      upstream: '10.1.0.7:6379',
      service: 'shop/db',
    });
  });

  it.each([
    ['an unknown protocol', '{"proto":"udp","dir":"in","status":200,"peer":"","peer_id":""}'],
    ['truncated JSON', '{"dir":"in","status":200,"pe'],
    ['a JSON array', '[1,2]'],
    ['JSON null', 'null'],
    ['an unknown direction', '{"dir":"up","status":200}'],
    ['a status out of range', '{"dir":"in","status":42,"peer":"","peer_id":""}'],
    ['a status as text', '{"dir":"in","status":"200","peer":"","peer_id":""}'],
    ['a missing peer', '{"dir":"in","status":200,"peer_id":""}'],
    ['a missing service', '{"dir":"out","status":200,"upstream":""}'],
  ])('refuses a key with %s', (_what, key) => {
    expect(parseStatsKey(key)).toBeUndefined();
  });
});

describe('parseStatsTake', () => {
  const bounds = '1,2,5,10,20,50,100,200,500,1000,2000,5000,10000,30000';

  it('reads zones and their series, keys with spaces included', () => {
    const text = [
      `zone mesh_http series 2 lost 3 buckets ${bounds}`,
      `5 17 0 0 1,1,3,0,0,0,0,0,0,0,0,0,0,0,0 {"dir":"in","status":200,"peer":"10.3.0.2","peer_id":""}`,
      `1 40000 0 0 0,0,0,0,0,0,0,0,0,0,0,0,0,0,1 {"dir":"out", "status":504}`,
      `zone mesh_tcp series 0 lost 0 buckets ${bounds}`,
      '',
    ].join('\n');
    const take = parseStatsTake(text);
    expect(take.unreadable).toBe(0);
    expect(take.zones.map((zone) => [zone.name, zone.lost, zone.series.length])).toEqual([
      ['mesh_http', 3, 2],
      ['mesh_tcp', 0, 0],
    ]);
    expect(take.zones[0]?.boundsMs).toHaveLength(14);
    expect(take.zones[0]?.series[0]).toEqual({
      count: 5,
      sumMs: 17,
      sent: 0,
      received: 0,
      buckets: [1, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      key: '{"dir":"in","status":200,"peer":"10.3.0.2","peer_id":""}',
    });
    expect(take.zones[0]?.series[1]?.key).toBe('{"dir":"out", "status":504}');
  });

  it.each([
    ['a series before any zone', '1 0 0 0 1,0 key'],
    ['too few buckets', `zone z series 1 lost 0 buckets 1\n1 0 0 0 1 key`],
    ['a count that is no number', `zone z series 1 lost 0 buckets 1\n1 x 0 0 1,0 key`],
    ['no key', `zone z series 1 lost 0 buckets 1\n1 0 0 0 1,0`],
    ['a broken zone header', `zone z series 1 lost buckets 1\n`],
  ])('counts %s as unreadable', (_what, text) => {
    expect(parseStatsTake(text).unreadable).toBeGreaterThan(0);
  });
});

describe('lastUpstreamHost', () => {
  it.each([
    ['10.1.0.7:8080', '10.1.0.7'],
    ['10.1.0.7:8080, 10.1.0.8:8080', '10.1.0.8'],
    ['10.1.0.7:8080 : 10.1.0.8:8080', '10.1.0.8'],
    ['[fd00::7]:8080', 'fd00::7'],
    ['10.1.0.7:8080, [fd00::8]:8080', 'fd00::8'],
  ])('%s answered by %s', (addr, host) => {
    expect(lastUpstreamHost(addr)).toBe(host);
  });
});

describe('labelsOf', () => {
  const peers = buildPeerIndex(snapshot());

  it('names an inbound peer by its endpoint pod and workload', () => {
    const record = parseStatsKey(
      '{"dir":"in","status":201,"time":0.001,"peer":"10.3.0.2","peer_id":""}',
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'inbound'],
      ['code', '2xx'],
      ['src_namespace', 'front'],
      ['src_pod', 'gateway-0'],
      ['src_statefulset', 'gateway'],
    ]);
  });

  it('names an inbound client that backs no Service by its pod and workload', () => {
    const record = parseStatsKey(
      '{"dir":"in","status":200,"time":0.002,"peer":"10.1.0.30","peer_id":"spiffe://example.org/ns/shop/sa/loadgen"}',
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'inbound'],
      ['code', '2xx'],
      ['src_namespace', 'shop'],
      ['src_pod', 'loadgen-1'],
      ['src_deployment', 'loadgen'],
    ]);
  });

  it('names endpoint pods from a controller that sends no peers, and no client', () => {
    const earlier = buildPeerIndex({ ...snapshot(), peers: {} });
    const inbound = (peer: string) =>
      parseStatsKey(
        `{"dir":"in","status":200,"time":0,"peer":"${peer}","peer_id":"spiffe://example.org/ns/shop/sa/x"}`,
      );
    const gateway = inbound('10.3.0.2');
    const loadgen = inbound('10.1.0.30');
    expect(gateway && labelsOf(gateway, earlier)).toEqual([
      ['direction', 'inbound'],
      ['code', '2xx'],
      ['src_namespace', 'front'],
      ['src_pod', 'gateway-0'],
      ['src_statefulset', 'gateway'],
    ]);
    expect(loadgen && labelsOf(loadgen, earlier)).toEqual([
      ['direction', 'inbound'],
      ['code', '2xx'],
      ['src_namespace', 'shop'],
      ['src_pod', ''],
    ]);
  });

  it('names an inbound peer the snapshot does not know by the namespace of its SPIFFE ID', () => {
    const record = parseStatsKey(
      '{"dir":"in","status":403,"time":0,"peer":"10.9.9.9","peer_id":"spiffe://example.org/ns/ops/sa/cron"}',
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'inbound'],
      ['code', '4xx'],
      ['src_namespace', 'ops'],
      ['src_pod', ''],
    ]);
  });

  it('names an outbound destination by the endpoint that answered last and the Service', () => {
    const record = parseStatsKey(
      '{"dir":"out","status":502,"time":0.2,"upstream":"10.1.0.8:8080, 10.1.0.7:8080","service":"shop/api"}',
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'outbound'],
      ['code', '5xx'],
      ['dst_namespace', 'shop'],
      ['dst_pod', 'api-1'],
      ['dst_deployment', 'api'],
      ['dst_service', 'api'],
    ]);
  });

  it('counts a gRPC call that ended in a status other than OK as a failure, whatever HTTP said', () => {
    const call = (grpc: string) =>
      parseStatsKey(
        `{"dir":"out","status":200,"grpc":"${grpc}","upstream":"10.1.0.8:8080","service":"shop/api"}`,
      );
    const code = (grpc: string) => {
      const record = call(grpc);
      return record && labelsOf(record, peers).find(([name]) => name === 'code')?.[1];
    };
    expect(code('0')).toBe('2xx');
    expect(code('')).toBe('2xx');
    expect(code('5')).toBe('5xx');
    expect(code('14')).toBe('5xx');
  });

  it('names traffic that left the mesh by one bounded Service label, egress', () => {
    const record = parseStatsKey(
      '{"proto":"tcp","dir":"out","status":200,"upstream":"203.0.113.9:443","service":"egress"}',
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'outbound'],
      ['code', '2xx'],
      ['dst_namespace', ''],
      ['dst_pod', ''],
      ['dst_service', 'egress'],
    ]);
  });

  it('leaves out owner kinds that are no metric label, and the pod when nothing answered', () => {
    const job = parseStatsKey(
      '{"dir":"out","status":200,"time":0,"upstream":"10.1.0.8:8080","service":"shop/api"}',
    );
    const none = parseStatsKey(
      '{"dir":"out","status":503,"time":0,"upstream":"","service":"shop/api"}',
    );
    expect(job && labelsOf(job, peers)).toEqual([
      ['direction', 'outbound'],
      ['code', '2xx'],
      ['dst_namespace', 'shop'],
      ['dst_pod', 'api-2'],
      ['dst_service', 'api'],
    ]);
    expect(none && labelsOf(none, peers)).toEqual([
      ['direction', 'outbound'],
      ['code', '5xx'],
      ['dst_namespace', 'shop'],
      ['dst_pod', ''],
      ['dst_service', 'api'],
    ]);
  });
});

/** One request (or connection) of durationMs, as nginx's module adds it to its series. */
function observe(
  registry: RequestRegistry,
  labels: Labels,
  durationMs: number,
  bytes?: { sent: number; received: number },
): void {
  const bounds = registry.bounds();
  const buckets = new Array<number>(bounds.length + 1).fill(0);
  let index = 0;
  while (index < bounds.length && durationMs > (bounds[index] ?? Infinity)) index += 1;
  buckets[index] = 1;
  registry.add(labels, { count: 1, sumMs: durationMs, buckets, ...bytes });
}

describe('RequestRegistry', () => {
  const inbound = (pod: string, code = '2xx'): Labels => [
    ['direction', 'inbound'],
    ['code', code],
    ['src_namespace', 'shop'],
    ['src_pod', pod],
    ['src_deployment', 'web'],
  ];

  it('prints counters and cumulative histograms in the text format', () => {
    const registry = createRequestRegistry(overflowLabels);
    observe(registry, inbound('web-1'), 0);
    observe(registry, inbound('web-1'), 3);
    observe(registry, inbound('web-1'), 45000);
    observe(registry, inbound('web-2', '5xx'), 12);
    observe(
      registry,
      [
        ['direction', 'outbound'],
        ['code', '2xx'],
        ['dst_namespace', 'shop'],
        ['dst_pod', 'we"ird\\pod\n'],
        ['dst_service', 'api'],
      ],
      1,
    );
    registry.drop();
    expectGolden('agent-metrics/exposition.txt', registry.render());
  });

  it('prints TCP connections under their own names, with byte counters and no drop counter', () => {
    const registry = createTcpRegistry(overflowLabels);
    observe(registry, inbound('web-1'), 40, { sent: 100, received: 7 });
    observe(registry, inbound('web-1'), 2500, { sent: 1, received: 0 });
    observe(registry, inbound('web-2', '4xx'), 0, { sent: 0, received: 12 });
    expectGolden('agent-metrics/tcp-exposition.txt', registry.render());
  });

  it('folds TCP connections into the overflow series past the bound, bytes included', () => {
    const registry = new RequestRegistry({
      family: TCP_FAMILY,
      maxSeries: 1,
      bucketsMs: [10],
      overflow: overflowLabels,
    });
    observe(registry, inbound('web-1'), 1, { sent: 5, received: 6 });
    observe(registry, inbound('web-2'), 1, { sent: 10, received: 20 });
    observe(registry, inbound('web-3'), 1, { sent: 1, received: 2 });
    const text = registry.render();
    expect(text).toContain(
      'nginx_mesh_tcp_connections_total{direction="inbound",code="2xx",src_namespace="_other",src_pod="_other"} 2\n',
    );
    expect(text).toContain(
      'nginx_mesh_tcp_sent_bytes_total{direction="inbound",code="2xx",src_namespace="_other",src_pod="_other"} 11\n',
    );
    expect(text).toContain(
      'nginx_mesh_tcp_received_bytes_total{direction="inbound",code="2xx",src_namespace="shop",src_pod="web-1",src_deployment="web"} 6\n',
    );
    expect(text).not.toContain('nginx_mesh_requests_total');
  });

  it('escapes backslash, double quote and line feed in label values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it('folds new label sets into one overflow series per direction and class past the bound', () => {
    const registry = new RequestRegistry({
      family: HTTP_FAMILY,
      maxSeries: 3,
      bucketsMs: [10],
      overflow: overflowLabels,
    });
    for (let index = 0; index < 10; index += 1) observe(registry, inbound(`web-${index}`), 1);
    observe(registry, inbound('web-0'), 1);
    observe(registry, inbound('web-99', '5xx'), 1);
    expect(registry.size()).toBe(5);
    const text = registry.render();
    expect(text).toContain(
      'nginx_mesh_requests_total{direction="inbound",code="2xx",src_namespace="_other",src_pod="_other"} 7\n',
    );
    expect(text).toContain(
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="_other",src_pod="_other"} 1\n',
    );
    expect(text).toContain(
      'nginx_mesh_requests_total{direction="inbound",code="2xx",src_namespace="shop",src_pod="web-0",src_deployment="web"} 2\n',
    );
  });

  it('never keeps more than MAX_SERIES peer series', () => {
    const registry = createRequestRegistry(overflowLabels);
    for (let index = 0; index < MAX_SERIES * 3; index += 1)
      observe(registry, inbound(`web-${index}`), 1);
    // The kept series (2xx and their 5xx siblings), then the overflow series of both classes.
    expect(registry.size()).toBe(MAX_SERIES + 2);
  });

  it('keeps a zero failure series beside every new success series, and the reverse', () => {
    const registry = createRequestRegistry(overflowLabels);
    observe(registry, inbound('web-1'), 1);
    observe(registry, inbound('web-2', '5xx'), 1);
    observe(registry, inbound('web-3', '4xx'), 1);
    const totals = registry
      .render()
      .split('\n')
      .filter((line) => line.startsWith('nginx_mesh_requests_total{'));
    expect(totals).toEqual([
      'nginx_mesh_requests_total{direction="inbound",code="2xx",src_namespace="shop",src_pod="web-1",src_deployment="web"} 1',
      'nginx_mesh_requests_total{direction="inbound",code="2xx",src_namespace="shop",src_pod="web-2",src_deployment="web"} 0',
      'nginx_mesh_requests_total{direction="inbound",code="2xx",src_namespace="shop",src_pod="web-3",src_deployment="web"} 0',
      'nginx_mesh_requests_total{direction="inbound",code="4xx",src_namespace="shop",src_pod="web-3",src_deployment="web"} 1',
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="shop",src_pod="web-1",src_deployment="web"} 0',
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="shop",src_pod="web-2",src_deployment="web"} 1',
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="shop",src_pod="web-3",src_deployment="web"} 0',
    ]);
    // Seeding never counts: the next observation of a seeded series is its first.
    observe(registry, inbound('web-1', '5xx'), 1);
    expect(registry.render()).toContain(
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="shop",src_pod="web-1",src_deployment="web"} 1\n',
    );
    expect(registry.size()).toBe(7);
  });
});
