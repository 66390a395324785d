// How a port's protocol is chosen (appProtocol first, then the name's prefix) and which of the
// sidecar's servers each choice reaches, outbound and inbound, with mTLS and without; where
// traffic for a destination the mesh does not know goes; and that a pod's own address reaches
// that pod only.
import { portKind } from '../../src/manifests/snapshot/services';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import {
  endpoint,
  grpcServices,
  httpPort,
  service,
  shopContext,
  shopSnapshot,
  tcpPort,
  withMesh,
} from '../support/sidecar-snapshots';

/** Outbound HTTP destinations' loopback addresses: 127.2.x.y to 127.127.x.y. */
const HTTP_LOOPBACK = String.raw`127\.([2-9]|[1-9]\d|1[01]\d|12[0-7])\.\d+\.\d+`;
/** Outbound TCP destinations': 127.128.x.y to 127.253.x.y. */
const TCP_LOOPBACK = String.raw`127\.(12[89]|1[3-9]\d|2[0-4]\d|25[0-3])\.\d+\.\d+`;

describe('portKind', () => {
  it.each([
    // appProtocol decides when set, whatever the name says.
    ['grpc', 'tcp-x', 'http2'],
    ['http2', 'db', 'http2'],
    ['h2c', '', 'http2'],
    ['kubernetes.io/h2c', 'http', 'http2'],
    ['HTTP', 'grpc', 'http'],
    ['kubernetes.io/http', 'grpc', 'http'],
    ['kubernetes.io/ws', '', 'http'],
    ['grpc-web', 'grpc', 'http'],
    ['tcp', 'http', 'tcp'],
    ['https', 'http', 'tcp'],
    ['mysql', 'http-db', 'tcp'],
    // Without one, the name: <protocol> or <protocol>-<suffix>.
    [undefined, 'grpc', 'http2'],
    [undefined, 'grpc-api', 'http2'],
    [undefined, 'http2', 'http2'],
    [undefined, 'http2-internal', 'http2'],
    [undefined, 'h2c', 'http2'],
    [undefined, 'grpc-web', 'http'],
    [undefined, 'grpc-web-ui', 'http'],
    [undefined, 'http', 'http'],
    [undefined, 'http-metrics', 'http'],
    [undefined, 'ws', 'http'],
    [undefined, 'ws-chat', 'http'],
    [undefined, 'https', 'tcp'],
    [undefined, 'httpx', 'tcp'],
    [undefined, 'grpcx', 'tcp'],
    [undefined, 'tcp-echo', 'tcp'],
    [undefined, 'redis', 'tcp'],
    [undefined, '', 'tcp'],
    ['', 'grpc', 'http2'],
  ])('appProtocol %s, name %j → %s', (appProtocol, name, kind) => {
    expect(portKind(name, appProtocol)).toBe(kind);
  });
});

/** shop/rpc (gRPC), shop/web-rpc (web-1's own gRPC port 9090), next to the shop's HTTP and TCP. */
function grpcShop(mtlsMode: 'off' | 'permissive' | 'strict'): MeshSnapshot {
  return withMesh({ mtlsMode }, { services: { ...shopSnapshot().services, ...grpcServices } });
}

/** The entries of the map block that sets this variable, as "key value" lines. */
function mapEntries(config: string, header: string): string[] {
  const start = config.indexOf(`${header} {\n`);
  if (start < 0) throw new Error(`no map ${header}`);
  const end = config.indexOf('}', start);
  return config
    .slice(start + header.length + 3, end)
    .split('\n')
    .map((line) => line.trim().replace(/;$/, ''))
    .filter((line) => line !== '');
}

describe('outbound: the server each destination reaches', () => {
  it.each(['permissive', 'strict'] as const)(
    'under %s mTLS, HTTP → 8889, HTTP/2 → 8892, meshed TCP → 8906, unmeshed TCP straight',
    (mode) => {
      const { text } = renderSidecarConfig(grpcShop(mode), shopContext());
      const outbound = mapEntries(text, 'map $mesh_original_dst $mesh_outbound');
      const to = (destination: string) =>
        outbound.find((line) => line.startsWith(`${destination} `))?.split(' ')[1];
      expect(to('10.96.0.11:8080')).toMatch(new RegExp(`^${HTTP_LOOPBACK}:8889$`));
      expect(to('10.96.0.30:50051')).toMatch(new RegExp(`^${HTTP_LOOPBACK}:8892$`));
      expect(to('10.96.0.12:5432')).toMatch(new RegExp(`^${TCP_LOOPBACK}:8906$`));
      expect(to('10.96.0.13:6379')).toBe('mesh_legacy__cache_6379');
      // gRPC to a meshed endpoint goes as HTTP/2 over mTLS, verifying the peer's identity.
      expect(text).toContain('mesh_shop__rpc_50051 grpcs://mesh_shop__rpc_50051;');
      expect(text).toContain('listen 8892 http2;');
      expect(text).toContain('grpc_ssl_name $mesh_outbound_ssl_name;');
    },
  );

  it('under mTLS off, gRPC goes in plaintext HTTP/2', () => {
    const { text } = renderSidecarConfig(grpcShop('off'), shopContext());
    expect(text).toContain('mesh_shop__rpc_50051 grpc://mesh_shop__rpc_50051;');
    expect(text).not.toContain('grpcs://');
  });

  it('renders no HTTP/2 server and no gRPC status for a mesh without HTTP/2 ports', () => {
    const { text } = renderSidecarConfig(shopSnapshot(), shopContext());
    expect(text).not.toContain('http2');
    expect(text).not.toContain('$mesh_grpc_status');
  });

  it('lets an upgrade (WebSocket) pass on HTTP ports, with tunnel timeouts of an hour', () => {
    const { text } = renderSidecarConfig(shopSnapshot(), shopContext());
    expect(text).not.toContain('proxy_set_header Connection "";');
    expect(text).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(text).toContain('proxy_set_header Connection $mesh_connection;');
    expect(mapEntries(text, 'map $http_upgrade $mesh_connection')).toEqual([
      'default upgrade',
      '"" ""',
    ]);
    for (const location of ['@mesh_outbound_upgrade', '@mesh_inbound_upgrade']) {
      const body = text.slice(text.indexOf(`location ${location} {`));
      expect(body.slice(0, body.indexOf('}'))).toContain('proxy_read_timeout 1h;');
    }
    expect(text).toContain('proxy_timeout 1h;');
  });
});

describe('inbound: the server each app port is handed to', () => {
  it.each([
    ['strict', 'map $mesh_original_dst_port $mesh_inbound_tls', { 8080: 8888, 9090: 8891 }],
    ['permissive', 'map $mesh_original_dst_port $mesh_inbound_tls', { 8080: 8888, 9090: 8891 }],
    ['permissive', 'map $mesh_original_dst_port $mesh_inbound_plain', { 8080: 8890, 9090: 8893 }],
    ['off', 'map $mesh_original_dst_port $mesh_inbound_plain', { 8080: 8890, 9090: 8893 }],
  ] as const)('under %s mTLS, %s', (mode, header, servers) => {
    const { text, warnings } = renderSidecarConfig(grpcShop(mode), shopContext());
    expect(warnings).toEqual([]);
    const entries = mapEntries(text, header);
    for (const [port, server] of Object.entries(servers))
      expect(entries.find((line) => line.startsWith(`${port} `))).toMatch(
        new RegExp(`^${port} 127\\.1\\.\\d+\\.\\d+:${server}$`),
      );
  });

  it('serves an HTTP/2 app port with HTTP/2 over mTLS, to the app in cleartext HTTP/2', () => {
    const { text } = renderSidecarConfig(grpcShop('strict'), shopContext());
    expect(text).toContain('listen 8891 ssl http2 proxy_protocol;');
    expect(text).not.toContain('listen 8893');
    expect(text).toContain('grpc_pass grpc://mesh_inbound_$mesh_inbound_port;');
  });

  it('serves a port two Services disagree on as TCP, with a warning', () => {
    const snapshot = grpcShop('strict');
    const conflicting = withMesh(
      { mtlsMode: 'strict' },
      {
        services: {
          ...snapshot.services,
          ...service(
            'shop/web-raw',
            '10.96.0.32',
            [tcpPort(9090, 'raw')],
            [endpoint('10.1.0.5', { raw: 9090 }, 'shop/web-1', 'shop/web')],
          ),
        },
      },
    );
    const { model, warnings } = buildSidecarModel(conflicting, shopContext());
    expect(model.inboundPorts.find((port) => port.port === 9090)?.kind).toBe('tcp');
    expect(warnings).toEqual([
      'port 9090 is served as http2 and tcp by different Services; serving it as TCP',
    ]);
  });
});

describe('egress: destinations the mesh does not know', () => {
  /** Where a destination neither the map nor the members file names goes. */
  const defaultOf = (text: string) => {
    expect(mapEntries(text, 'map $mesh_original_dst $mesh_outbound')[0]).toBe(
      'default $mesh_outbound_endpoint',
    );
    const fallback =
      /mesh_members_map outbound \$mesh_original_dst \$mesh_outbound_endpoint (\S+);/.exec(text);
    return `default ${fallback?.[1] ?? ''}`;
  };

  it('refuses them under strict mTLS: HTTP gets 403 naming the annotation, the rest is closed', () => {
    const { text, model } = (() => {
      const snapshot = withMesh({ mtlsMode: 'strict' });
      return {
        text: renderSidecarConfig(snapshot, shopContext()).text,
        model: buildSidecarModel(snapshot, shopContext()).model,
      };
    })();
    expect(model.egress).toBe('refused');
    expect(defaultOf(text)).toBe('default 127.0.0.1:8902');
    expect(text).toContain('listen 127.0.0.1:8902;');
    expect(text).toMatch(/return 403 "egress refused: .*default-egress-allowed is not \\"true\\"/);
    expect(text).toContain('error_page 400 /.mesh-egress-closed;');
  });

  it.each([
    ['strict, annotated', 'strict', true],
    ['permissive', 'permissive', false],
    ['off', 'off', false],
  ] as const)('lets them leave directly: %s', (_, mtlsMode, allowed) => {
    const snapshot = withMesh({ mtlsMode });
    const { text } = renderSidecarConfig(snapshot, shopContext({ defaultEgressAllowed: allowed }));
    expect(
      buildSidecarModel(snapshot, shopContext({ defaultEgressAllowed: allowed })).model.egress,
    ).toBe('direct');
    expect(defaultOf(text)).toBe('default $mesh_original_dst');
    expect(text).not.toContain('8902');
  });

  it('counts what leaves under one Service label, and neither the sidecar-internal hops nor a connection without a destination', () => {
    const { text } = renderSidecarConfig(shopSnapshot(), shopContext());
    expect(
      mapEntries(
        text,
        'map $mesh_outbound_plain_service|$mesh_outbound $mesh_outbound_passed_service',
      ),
    ).toEqual(['default egress', '| ""', '"~^([^|]+)\\\\|" $1', '"~^\\\\|127\\\\." ""']);
  });
});

describe('pod-addressed destinations', () => {
  /** A headless StatefulSet: no ClusterIP, two pods with their own identity each. */
  const headless = shopSnapshot({
    services: {
      ...shopSnapshot().services,
      ...service(
        'shop/kafka',
        '',
        [tcpPort(9092, 'broker'), httpPort(8083, 'http-admin')],
        [
          endpoint('10.1.0.41', { broker: 9092, 'http-admin': 8083 }, 'shop/kafka-0', 'shop/kafka'),
          endpoint('10.1.0.42', { broker: 9092, 'http-admin': 8083 }, 'shop/kafka-1', 'shop/kafka'),
        ],
      ),
    },
  });

  it('reach that pod only, over mTLS, verifying its identity', () => {
    const { model } = buildSidecarModel(headless, shopContext());
    const http = model.outboundHttp.filter((entry) => entry.service === 'shop/kafka');
    expect(http.map((entry) => [entry.destinations, entry.target])).toEqual([
      [['10.1.0.41:8083'], { kind: 'upstream', upstream: 'mesh_ep_10_1_0_41_8083' }],
      [['10.1.0.42:8083'], { kind: 'upstream', upstream: 'mesh_ep_10_1_0_42_8083' }],
    ]);
    const upstream = model.httpUpstreams.find((entry) => entry.name === 'mesh_ep_10_1_0_41_8083');
    expect(upstream?.servers.map((server) => server.address)).toEqual(['10.1.0.41:8083']);
    expect(upstream?.tlsName).toBe('kafka.shop.svc');
    const tcp = model.outboundTcp.filter((entry) => entry.service === 'shop/kafka');
    expect(tcp.map((entry) => [entry.destinations, entry.upstream, entry.tlsName])).toEqual([
      [['10.1.0.41:9092'], '10.1.0.41:9092', 'kafka.shop.svc'],
      [['10.1.0.42:9092'], '10.1.0.42:9092', 'kafka.shop.svc'],
    ]);
  });

  it('of a ClusterIP Service are one of its replicas: balanced like the ClusterIP', () => {
    const { model } = buildSidecarModel(shopSnapshot(), shopContext());
    const api = model.outboundHttp.filter((entry) => entry.service === 'shop/api');
    expect(api.map((entry) => [entry.destinations, entry.endpoints, entry.target])).toEqual([
      [
        ['10.96.0.11:8080'],
        ['10.1.0.7:8080', '10.1.0.8:8080'],
        { kind: 'upstream', upstream: 'mesh_shop__api_8080' },
      ],
    ]);
    expect(model.httpUpstreams.some((upstream) => upstream.name.startsWith('mesh_ep_'))).toBe(
      false,
    );
  });

  it('of an unmeshed headless pod go in plaintext, straight to it', () => {
    const unmeshed = withMesh(
      { mtlsMode: 'strict' },
      {
        services: {
          ...shopSnapshot().services,
          ...service(
            'legacy/zk',
            '',
            [tcpPort(2181, 'client')],
            [endpoint('10.2.0.7', { client: 2181 })],
          ),
        },
      },
    );
    const { model } = buildSidecarModel(unmeshed, shopContext());
    const zk = model.outboundTcp.filter((entry) => entry.service === 'legacy/zk');
    expect(zk.map((entry) => [entry.destinations, entry.upstream, entry.tlsName])).toEqual([
      [['10.2.0.7:2181'], '10.2.0.7:2181', undefined],
    ]);
  });
});
