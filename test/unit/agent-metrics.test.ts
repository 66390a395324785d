// The agent's request metrics: syslog lines from nginx's access log become records, records
// become label sets resolved from the snapshot, and the registry keeps a bounded number of
// series and prints them in the Prometheus text format.
import { lastUpstreamHost, parseAccessLogLine } from '../../src/runtime/agent/metrics/access-log';
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
import { renderLostDatagrams, udpSocketDrops } from '../../src/runtime/agent/metrics/socket-drops';
import { endpoint, httpPort, service, shopSnapshot } from '../support/sidecar-snapshots';

const TAG = 'nginx_mesh';
const line = (json: string): string => `<190>Nov 26 07:37:02 ${TAG}: ${json}`;

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

describe('parseAccessLogLine', () => {
  it('reads an inbound record with milliseconds from seconds', () => {
    expect(
      parseAccessLogLine(
        line(
          '{"dir":"in","status":200,"time":0.013,"peer":"10.3.0.2","peer_id":"spiffe://example.org/ns/front/sa/gateway"}',
        ),
        TAG,
      ),
    ).toEqual({
      direction: 'inbound',
      status: 200,
      durationMs: 13,
      peer: '10.3.0.2',
      peerId: 'spiffe://example.org/ns/front/sa/gateway',
    });
  });

  it('reads an outbound record; empty and "-" fields are empty', () => {
    expect(
      parseAccessLogLine(
        line('{"dir":"out","status":503,"time":0.000,"upstream":"-","service":"shop/api"}'),
        TAG,
      ),
    ).toEqual({
      direction: 'outbound',
      status: 503,
      durationMs: 0,
      upstream: '',
      service: 'shop/api',
    });
  });

  it('reads an inbound TCP record with its bytes each way', () => {
    expect(
      parseAccessLogLine(
        line(
          '{"proto":"tcp","dir":"in","status":403,"time":0.004,"sent":0,"received":17,"peer":"10.3.0.2","peer_id":""}',
        ),
        TAG,
      ),
    ).toEqual({
      direction: 'inbound',
      tcp: { sent: 0, received: 17 },
      status: 403,
      durationMs: 4,
      peer: '10.3.0.2',
      peerId: '',
    });
  });

  it('reads an outbound TCP record', () => {
    expect(
      parseAccessLogLine(
        line(
          '{"proto":"tcp","dir":"out","status":200,"time":12.500,"sent":4096,"received":12,"upstream":"10.1.0.7:6379","service":"shop/db"}',
        ),
        TAG,
      ),
    ).toEqual({
      direction: 'outbound',
      tcp: { sent: 4096, received: 12 },
      status: 200,
      durationMs: 12500,
      upstream: '10.1.0.7:6379',
      service: 'shop/db',
    });
  });

  it.each([
    [
      'an unknown protocol',
      line(
        '{"proto":"udp","dir":"in","status":200,"time":0,"sent":0,"received":0,"peer":"","peer_id":""}',
      ),
    ],
    [
      'TCP without bytes sent',
      line('{"proto":"tcp","dir":"in","status":200,"time":0,"received":0,"peer":"","peer_id":""}'),
    ],
    [
      'TCP with bytes as text',
      line(
        '{"proto":"tcp","dir":"out","status":200,"time":0,"sent":"1","received":0,"upstream":"","service":""}',
      ),
    ],
    [
      'TCP with negative bytes',
      line(
        '{"proto":"tcp","dir":"out","status":200,"time":0,"sent":1,"received":-1,"upstream":"","service":""}',
      ),
    ],
    [
      'TCP with fractional bytes',
      line(
        '{"proto":"tcp","dir":"in","status":200,"time":0,"sent":1.5,"received":0,"peer":"","peer_id":""}',
      ),
    ],
    ['no syslog priority', '{"dir":"in","status":200,"time":0,"peer":"","peer_id":""}'],
    [
      'another tag',
      '<190>Nov 26 07:37:02 other: {"dir":"in","status":200,"time":0,"peer":"","peer_id":""}',
    ],
    ['truncated JSON', line('{"dir":"in","status":200,"time":0,"pe')],
    ['a JSON array', line('[1,2]')],
    ['an unknown direction', line('{"dir":"up","status":200,"time":0}')],
    ['a status out of range', line('{"dir":"in","status":42,"time":0,"peer":"","peer_id":""}')],
    ['a status as text', line('{"dir":"in","status":"200","time":0,"peer":"","peer_id":""}')],
    ['a negative time', line('{"dir":"in","status":200,"time":-1,"peer":"","peer_id":""}')],
    ['a missing peer', line('{"dir":"in","status":200,"time":0,"peer_id":""}')],
    ['a missing service', line('{"dir":"out","status":200,"time":0,"upstream":""}')],
  ])('ignores a line with %s', (_what, text) => {
    expect(parseAccessLogLine(text, TAG)).toBeUndefined();
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
    const record = parseAccessLogLine(
      line('{"dir":"in","status":201,"time":0.001,"peer":"10.3.0.2","peer_id":""}'),
      TAG,
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
    const record = parseAccessLogLine(
      line(
        '{"dir":"in","status":200,"time":0.002,"peer":"10.1.0.30","peer_id":"spiffe://example.org/ns/shop/sa/loadgen"}',
      ),
      TAG,
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
      parseAccessLogLine(
        line(
          `{"dir":"in","status":200,"time":0,"peer":"${peer}","peer_id":"spiffe://example.org/ns/shop/sa/x"}`,
        ),
        TAG,
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
    const record = parseAccessLogLine(
      line(
        '{"dir":"in","status":403,"time":0,"peer":"10.9.9.9","peer_id":"spiffe://example.org/ns/ops/sa/cron"}',
      ),
      TAG,
    );
    expect(record && labelsOf(record, peers)).toEqual([
      ['direction', 'inbound'],
      ['code', '4xx'],
      ['src_namespace', 'ops'],
      ['src_pod', ''],
    ]);
  });

  it('names an outbound destination by the endpoint that answered last and the Service', () => {
    const record = parseAccessLogLine(
      line(
        '{"dir":"out","status":502,"time":0.2,"upstream":"10.1.0.8:8080, 10.1.0.7:8080","service":"shop/api"}',
      ),
      TAG,
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

  it('leaves out owner kinds that are no metric label, and the pod when nothing answered', () => {
    const job = parseAccessLogLine(
      line('{"dir":"out","status":200,"time":0,"upstream":"10.1.0.8:8080","service":"shop/api"}'),
      TAG,
    );
    const none = parseAccessLogLine(
      line('{"dir":"out","status":503,"time":0,"upstream":"","service":"shop/api"}'),
      TAG,
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
    registry.observe(inbound('web-1'), 0);
    registry.observe(inbound('web-1'), 3);
    registry.observe(inbound('web-1'), 45000);
    registry.observe(inbound('web-2', '5xx'), 12);
    registry.observe(
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
    registry.observe(inbound('web-1'), 40, { sent: 100, received: 7 });
    registry.observe(inbound('web-1'), 2500, { sent: 1, received: 0 });
    registry.observe(inbound('web-2', '4xx'), 0, { sent: 0, received: 12 });
    expectGolden('agent-metrics/tcp-exposition.txt', registry.render());
  });

  it('folds TCP connections into the overflow series past the bound, bytes included', () => {
    const registry = new RequestRegistry({
      family: TCP_FAMILY,
      maxSeries: 1,
      bucketsMs: [10],
      overflow: overflowLabels,
    });
    registry.observe(inbound('web-1'), 1, { sent: 5, received: 6 });
    registry.observe(inbound('web-2'), 1, { sent: 10, received: 20 });
    registry.observe(inbound('web-3'), 1, { sent: 1, received: 2 });
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
    for (let index = 0; index < 10; index += 1) registry.observe(inbound(`web-${index}`), 1);
    registry.observe(inbound('web-0'), 1);
    registry.observe(inbound('web-99', '5xx'), 1);
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
      registry.observe(inbound(`web-${index}`), 1);
    // The kept series (2xx and their 5xx siblings), then the overflow series of both classes.
    expect(registry.size()).toBe(MAX_SERIES + 2);
  });

  it('keeps a zero failure series beside every new success series, and the reverse', () => {
    const registry = createRequestRegistry(overflowLabels);
    registry.observe(inbound('web-1'), 1);
    registry.observe(inbound('web-2', '5xx'), 1);
    registry.observe(inbound('web-3', '4xx'), 1);
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
    registry.observe(inbound('web-1', '5xx'), 1);
    expect(registry.render()).toContain(
      'nginx_mesh_requests_total{direction="inbound",code="5xx",src_namespace="shop",src_pod="web-1",src_deployment="web"} 1\n',
    );
    expect(registry.size()).toBe(7);
  });
});

describe('datagrams the kernel dropped', () => {
  const table = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ',
    '11740: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5758921 2 00000000ed811d54 3       ',
    '11741: 0100007F:22B6 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5758922 2 00000000ed811d55 517     ',
    '',
  ].join('\n');

  it("reads the drops of the receiver's own socket, by address and port", () => {
    expect(udpSocketDrops(table, '127.0.0.1', 8886)).toBe(517);
    expect(udpSocketDrops(table, '127.0.0.1', 8080)).toBe(3);
  });

  it('has no value for a socket that is not listed, or a table it does not know', () => {
    expect(udpSocketDrops(table, '127.0.0.2', 8886)).toBeUndefined();
    expect(udpSocketDrops('sl address drops\n1: x 4\n', '127.0.0.1', 8886)).toBeUndefined();
    expect(udpSocketDrops('', '127.0.0.1', 8886)).toBeUndefined();
  });

  it('prints a counter, or nothing without a value', () => {
    expect(renderLostDatagrams(517)).toBe(
      '# HELP nginx_mesh_access_log_lost_total Access-log datagrams the kernel dropped because the agent fell behind.\n# TYPE nginx_mesh_access_log_lost_total counter\nnginx_mesh_access_log_lost_total 517\n',
    );
    expect(renderLostDatagrams(undefined)).toBe('');
  });
});
