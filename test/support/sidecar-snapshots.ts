// Mesh snapshots and sidecar contexts for the sidecar configuration's golden, unit, integration
// tests and benchmark: a small shop (web → api over HTTP, web → db over TCP, an unmeshed cache)
// that each scenario changes a little, and a generator of large meshes.
import type { SidecarContext } from '../../src/render/sidecar';
import type {
  MeshSnapshot,
  SnapshotHttpRoute,
  SnapshotEndpoint,
  SnapshotHttpMatch,
  SnapshotService,
  SnapshotServicePort,
  SnapshotRateLimit,
  SnapshotTrafficSplit,
  SnapshotTrafficTarget,
} from '../../src/manifests/snapshot/types';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

export function httpPort(port: number, name = 'http'): SnapshotServicePort {
  return { name, port, protocol: 'TCP', kind: 'http' };
}

/** A port whose app speaks HTTP/2 in cleartext (gRPC, h2c). */
export function http2Port(port: number, name = 'grpc'): SnapshotServicePort {
  return { name, port, protocol: 'TCP', kind: 'http2' };
}

export function tcpPort(port: number, name: string): SnapshotServicePort {
  return { name, port, protocol: 'TCP', kind: 'tcp' };
}

export function endpoint(
  address: string,
  ports: Record<string, number>,
  pod?: string,
  identity?: string,
): SnapshotEndpoint {
  return {
    address,
    ports,
    ...(pod === undefined ? {} : { pod }),
    ...(identity === undefined ? {} : { identity }),
  };
}

export function service(
  key: string,
  clusterIP: string,
  ports: SnapshotServicePort[],
  endpoints: SnapshotEndpoint[],
  extra: Partial<SnapshotService> = {},
): Record<string, SnapshotService> {
  const [namespace = '', name = ''] = key.split('/');
  return {
    [key]: {
      namespace,
      name,
      clusterIPs: clusterIP === '' ? [] : [clusterIP],
      ports,
      endpoints,
      ...extra,
    },
  };
}

export function match(name: string, extra: Partial<SnapshotHttpMatch> = {}): SnapshotHttpMatch {
  return { name, methods: [], headers: {}, ...extra };
}

/**
 * The shop's meshed pods by address: those behind its Services and shop/loadgen-1, a client that
 * backs none. No renderer reads them: the sidecar goldens are the same with them as without.
 */
export const SHOP_PEERS: MeshSnapshot['peers'] = {
  '10.1.0.5': { pod: 'shop/web-1', owner: 'deployment/web' },
  '10.1.0.7': { pod: 'shop/api-1', owner: 'deployment/api' },
  '10.1.0.8': { pod: 'shop/api-2', owner: 'deployment/api' },
  '10.1.0.9': { pod: 'shop/db-0', owner: 'statefulset/db' },
  '10.1.0.30': { pod: 'shop/loadgen-1', owner: 'deployment/loadgen' },
};

/** The shop: this pod is shop/web-1 (service account web) behind shop/web. */
export function shopSnapshot(change: Partial<MeshSnapshot> = {}): MeshSnapshot {
  const base: MeshSnapshot = {
    mesh: DEFAULT_SNAPSHOT_MESH,
    services: {
      ...service(
        'shop/web',
        '10.96.0.10',
        [httpPort(80)],
        [endpoint('10.1.0.5', { http: 8080 }, 'shop/web-1', 'shop/web')],
      ),
      ...service(
        'shop/api',
        '10.96.0.11',
        [httpPort(8080)],
        [
          endpoint('10.1.0.7', { http: 8080 }, 'shop/api-1', 'shop/api'),
          endpoint('10.1.0.8', { http: 8080 }, 'shop/api-2', 'shop/api'),
        ],
      ),
      ...service(
        'shop/db',
        '10.96.0.12',
        [tcpPort(5432, 'postgres')],
        [endpoint('10.1.0.9', { postgres: 5432 }, 'shop/db-0', 'shop/db')],
      ),
      ...service(
        'legacy/cache',
        '10.96.0.13',
        [tcpPort(6379, 'redis')],
        [endpoint('10.2.0.4', { redis: 6379 })],
      ),
    },
    trafficTargets: {},
    trafficSplits: {},
    rateLimits: {},
    circuitBreakers: {},
    httpRoutes: {},
    grpcRoutes: {},
    gateways: {},
    gatewayRoutes: {},
    peers: SHOP_PEERS,
  };
  return { ...base, ...change };
}

export function shopContext(change: Partial<SidecarContext> = {}): SidecarContext {
  return {
    pod: 'shop/web-1',
    serviceAccount: 'web',
    podIPs: ['10.1.0.5'],
    containerPorts: [8080, 9090],
    healthRedirects: {
      '/health-redirects/web/readiness': { port: 8080, path: '/ready', scheme: 'HTTP' },
    },
    ipv6: false,
    modules: [
      '/usr/lib/nginx/modules/ngx_stream_module.so',
      '/usr/lib/nginx/modules/ngx_mesh_module.so',
    ],
    runDir: '/etc/nginx-mesh',
    svidFile: '/etc/nginx-mesh/svid.pem',
    bundleFile: '/etc/nginx-mesh/bundle.crt',
    ...change,
  };
}

/** A mesh of `count` HTTP Services with three meshed endpoints each, plus policies. */
export function largeSnapshot(count: number, policies: number): MeshSnapshot {
  const services: Record<string, SnapshotService> = {};
  const octets = (n: number): string => `${(n >> 8) & 255}.${n & 255}`;
  for (let index = 0; index < count; index += 1) {
    const key = `ns${index % 20}/svc${index}`;
    Object.assign(
      services,
      service(
        key,
        `10.96.${octets(index)}`,
        [index % 10 === 9 ? tcpPort(5432, 'db') : httpPort(80)],
        [0, 1, 2].map((replica) =>
          endpoint(
            `10.${100 + replica}.${octets(index)}`,
            { http: 8080, db: 5432 },
            `ns${index % 20}/svc${index}-${replica}`,
            `ns${index % 20}/sa${index}`,
          ),
        ),
      ),
    );
  }
  const base = shopSnapshot({ services: { ...shopSnapshot().services, ...services } });
  const third = Math.floor(policies / 3);
  const splits: Record<string, SnapshotTrafficSplit> = {};
  const targets: Record<string, SnapshotTrafficTarget> = {};
  const limits: Record<string, SnapshotRateLimit> = {};
  for (let index = 0; index < third; index += 1) {
    splits[`ns0/split${index}`] = {
      namespace: 'ns0',
      name: `split${index}`,
      service: `ns${index % 20}/svc${index}`,
      backends: [
        { service: `ns${(index + 1) % 20}/svc${index + 1}`, weight: 70 },
        { service: `ns${(index + 2) % 20}/svc${index + 2}`, weight: 30 },
      ],
      matches: index % 2 === 0 ? [] : [match(`m${index}`, { pathRegex: `/v${index}/.*` })],
    };
    targets[`shop/target${index}`] = {
      namespace: 'shop',
      name: `target${index}`,
      destination: 'shop/web',
      sources: [`ns${index % 20}/sa${index}`],
      httpMatches: [match(`get${index}`, { methods: ['GET'], pathRegex: `/items/${index}` })],
      tcp: index % 5 === 0,
    };
    limits[`shop/limit${index}`] = {
      namespace: 'shop',
      name: `limit${index}`,
      destinationPods: index % 10 === 0 ? ['shop/web-1'] : [`ns1/svc${index}-0`],
      sourceIps: [`10.100.0.${index % 250}`],
      rate: 10 + index,
      per: 's',
      burst: 5,
      delay: 'nodelay',
      matches: [],
    };
  }
  return {
    ...base,
    mesh: { ...base.mesh, accessControlMode: 'deny' },
    trafficSplits: splits,
    trafficTargets: targets,
    rateLimits: limits,
  };
}

/** A named golden case: what to render, and the warnings it must give. */
export interface SidecarScenario {
  readonly name: string;
  readonly snapshot: MeshSnapshot;
  readonly context: SidecarContext;
  readonly warnings: readonly string[];
}

/** The shop with these mesh settings changed (and these parts of the snapshot replaced). */
export function withMesh(
  change: Partial<MeshSnapshot['mesh']>,
  rest: Partial<MeshSnapshot> = {},
): MeshSnapshot {
  const base = shopSnapshot(rest);
  return { ...base, mesh: { ...base.mesh, ...change } };
}

const split = (
  name: string,
  backends: { service: string; weight: number }[],
  matches: SnapshotHttpMatch[] = [],
): MeshSnapshot['trafficSplits'] => ({
  [`shop/${name}`]: { namespace: 'shop', name, service: 'shop/api', backends, matches },
});

/** The api's v1 and v2 versions, targets of the splits. */
const apiVersions = {
  ...service(
    'shop/api-v1',
    '10.96.0.21',
    [httpPort(8080)],
    [endpoint('10.1.1.1', { http: 8080 }, 'shop/api-v1-1', 'shop/api')],
  ),
  ...service(
    'shop/api-v2',
    '10.96.0.22',
    [httpPort(8080)],
    [endpoint('10.1.1.2', { http: 8080 }, 'shop/api-v2-1', 'shop/api')],
  ),
};

/** One scenario per policy and mode; each is a golden file and passes nginx -t. */
export function sidecarScenarios(): SidecarScenario[] {
  const context = shopContext();
  const plain = (
    name: string,
    snapshot: MeshSnapshot,
    warnings: string[] = [],
  ): SidecarScenario => ({
    name,
    snapshot,
    context,
    warnings,
  });
  return [
    plain('base', shopSnapshot()),
    plain('mtls-off', withMesh({ mtlsMode: 'off' })),
    plain('mtls-strict', withMesh({ mtlsMode: 'strict' })),
    {
      name: 'pod-mtls-strict',
      snapshot: shopSnapshot(),
      context: shopContext({ mtlsMode: 'strict' }),
      warnings: [],
    },
    {
      name: 'pod-mtls-cannot-weaken-strict',
      snapshot: withMesh({ mtlsMode: 'strict' }),
      context: shopContext({ mtlsMode: 'off' }),
      warnings: ['pod mTLS mode "off" ignored: the mesh-wide mode is strict'],
    },
    plain(
      'deny-http-matches',
      withMesh(
        { accessControlMode: 'deny' },
        {
          trafficTargets: {
            'shop/api-to-web': {
              namespace: 'shop',
              name: 'api-to-web',
              destination: 'shop/web',
              port: 8080,
              sources: ['shop/api', 'ops/probe'],
              httpMatches: [
                match('read', { methods: ['GET', 'HEAD'], pathRegex: '/items/[0-9]+' }),
                match('admin', { methods: ['*'], headers: { 'x-role': '^admin$' } }),
              ],
              tcp: false,
            },
            'shop/other': {
              namespace: 'shop',
              name: 'other',
              destination: 'shop/db',
              sources: ['shop/api'],
              httpMatches: [],
              tcp: true,
            },
          },
        },
      ),
    ),
    plain(
      'deny-tcp-route',
      withMesh(
        { accessControlMode: 'deny' },
        {
          trafficTargets: {
            'shop/metrics': {
              namespace: 'shop',
              name: 'metrics',
              destination: 'shop/web',
              sources: ['monitoring/prometheus'],
              httpMatches: [],
              tcp: true,
            },
            'shop/metrics-port': {
              namespace: 'shop',
              name: 'metrics-port',
              destination: 'shop/web',
              port: 9090,
              sources: ['ops/scraper'],
              httpMatches: [],
              tcp: true,
            },
          },
        },
      ),
    ),
    plain(
      'split-weights',
      shopSnapshot({
        services: { ...shopSnapshot().services, ...apiVersions },
        trafficSplits: split('canary', [
          { service: 'shop/api-v1', weight: 2 },
          { service: 'shop/api-v2', weight: 1 },
        ]),
      }),
    ),
    plain(
      'split-matches',
      shopSnapshot({
        services: { ...shopSnapshot().services, ...apiVersions },
        trafficSplits: split(
          'beta-users',
          [
            { service: 'shop/api-v1', weight: 10 },
            { service: 'shop/api-v2', weight: 90 },
            { service: 'shop/missing', weight: 5 },
          ],
          [match('beta', { headers: { 'x-beta': 'true' } }), match('post', { methods: ['POST'] })],
        ),
      }),
      ['traffic split shop/beta-users: backend shop/missing has no endpoints for port 8080'],
    ),
    plain(
      'ratelimit-sources',
      shopSnapshot({
        rateLimits: {
          'shop/per-source': {
            namespace: 'shop',
            name: 'per-source',
            destinationPods: ['shop/web-1', 'shop/web-2'],
            sourceIps: ['10.1.0.8', '10.1.0.7'],
            rate: 10,
            per: 's',
            burst: 0,
            delay: 'nodelay',
            matches: [],
          },
          'shop/not-mine': {
            namespace: 'shop',
            name: 'not-mine',
            destinationPods: ['shop/api-1'],
            sourceIps: [],
            rate: 1,
            per: 's',
            burst: 0,
            delay: 'nodelay',
            matches: [],
          },
        },
      }),
    ),
    plain(
      // What a RateLimit without burst and delay builds: nginx refuses both as explicit zeros.
      'ratelimit-defaults',
      shopSnapshot({
        rateLimits: {
          'shop/plain': {
            namespace: 'shop',
            name: 'plain',
            destinationPods: ['shop/web-1'],
            sourceIps: [],
            rate: 10,
            per: 's',
            burst: 0,
            delay: 0,
            matches: [],
          },
        },
      }),
    ),
    plain(
      'ratelimit-matches-delay',
      shopSnapshot({
        rateLimits: {
          'shop/writes': {
            namespace: 'shop',
            name: 'writes',
            destinationPods: ['shop/web-1'],
            sourceIps: [],
            rate: 30,
            per: 'm',
            burst: 20,
            delay: 5,
            matches: [match('post', { methods: ['POST', 'PUT'], pathRegex: '/cart/.*' })],
          },
        },
      }),
    ),
    plain(
      'circuit-breaker',
      shopSnapshot({
        services: {
          ...shopSnapshot().services,
          ...service(
            'shop/api-fallback',
            '10.96.0.30',
            [httpPort(80)],
            [endpoint('10.1.2.1', { http: 8081 }, 'shop/fb-1', 'shop/api')],
          ),
          ...service('shop/empty', '10.96.0.31', [httpPort(80)], []),
        },
        circuitBreakers: {
          'shop/api-breaker': {
            namespace: 'shop',
            name: 'api-breaker',
            service: 'shop/api',
            errors: 3,
            timeoutSeconds: 30,
            fallback: { service: 'shop/api-fallback', port: 80 },
          },
          'shop/db-breaker': {
            namespace: 'shop',
            name: 'db-breaker',
            service: 'shop/db',
            errors: 2,
            timeoutSeconds: 10,
            fallback: { service: 'shop/empty', port: 80 },
          },
        },
      }),
      ['circuit breaker shop/db-breaker: fallback service shop/empty has no endpoints'],
    ),
    plain(
      'lb-methods',
      withMesh(
        { lbMethod: 'random two least_conn' },
        {
          services: {
            ...shopSnapshot().services,
            ...service(
              'shop/rr',
              '10.96.0.40',
              [httpPort(80)],
              [endpoint('10.1.3.1', { http: 80 }, 'shop/rr-1', 'shop/rr')],
              { lbMethod: 'round_robin' },
            ),
            ...service(
              'shop/lc',
              '10.96.0.41',
              [httpPort(80)],
              [endpoint('10.1.3.2', { http: 80 }, 'shop/lc-1', 'shop/lc')],
              { lbMethod: 'least_conn' },
            ),
            ...service(
              'shop/rnd',
              '10.96.0.42',
              [tcpPort(7000, 'tcp')],
              [endpoint('10.1.3.3', { tcp: 7000 }, 'shop/rnd-1', 'shop/rnd')],
              { lbMethod: 'random' },
            ),
            ...service(
              'shop/two',
              '10.96.0.43',
              [httpPort(80)],
              [endpoint('10.1.3.4', { http: 80 }, 'shop/two-1', 'shop/two')],
              { lbMethod: 'random two' },
            ),
            ...service(
              'shop/lt',
              '10.96.0.44',
              [httpPort(80)],
              [endpoint('10.1.3.5', { http: 80 }, 'shop/lt-1', 'shop/lt')],
              { lbMethod: 'least_time' },
            ),
          },
        },
      ),
      ['service shop/lt: lb-method "least_time" needs NGINX Plus; using least_conn'],
    ),
    {
      name: 'client-max-body-size',
      snapshot: withMesh({ clientMaxBodySize: '10m' }),
      context: shopContext({ clientMaxBodySize: '0' }),
      warnings: [],
    },
    // The access log where the agent relays it: default (strict, so refused egress logs too)
    // and json.
    {
      name: 'access-log',
      snapshot: withMesh({ mtlsMode: 'strict' }),
      context: shopContext({ accessLog: '/etc/nginx-mesh/access.log' }),
      warnings: [],
    },
    {
      name: 'json-log',
      snapshot: withMesh({ logFormat: 'json', errorLogLevel: 'info' }),
      context: shopContext({ accessLog: '/etc/nginx-mesh/access.log' }),
      warnings: [],
    },
    {
      name: 'ipv6',
      snapshot: shopSnapshot({
        services: {
          ...shopSnapshot().services,
          ...service(
            'shop/v6',
            'fd00::10',
            [httpPort(80)],
            [endpoint('fd00:1::5', { http: 8080 }, 'shop/v6-1', 'shop/v6')],
          ),
        },
      }),
      context: shopContext({ ipv6: true, podIPs: ['10.1.0.5', 'fd00:1::9'] }),
      warnings: [],
    },
    plain('transparent', withMesh({ transparent: true })),
    // gRPC both ways: web calls shop/rpc, and serves gRPC itself on 9090.
    ...(['permissive', 'strict'] as const).map((mtlsMode): SidecarScenario => ({
      name: `grpc-${mtlsMode}`,
      snapshot: withMesh(
        { mtlsMode },
        { services: { ...shopSnapshot().services, ...grpcServices } },
      ),
      context,
      warnings: [],
    })),
    // Tracing on, HTTP/1 and gRPC both ways, strict: every hop records its span and sends on a
    // traceparent naming it.
    {
      name: 'tracing',
      snapshot: withMesh(
        {
          mtlsMode: 'strict',
          telemetry: { host: 'otel.tracing', port: 4317, protocol: 'grpc', samplerRatio: 0.25 },
          logFormat: 'json',
        },
        { services: { ...shopSnapshot().services, ...grpcServices } },
      ),
      // the access log carries each request's trace id
      context: shopContext({ accessLog: '/etc/nginx-mesh/access.log' }),
      warnings: [],
    },
    {
      name: 'egress-allowed',
      snapshot: withMesh({ mtlsMode: 'strict' }),
      context: shopContext({ defaultEgressAllowed: true }),
      warnings: [],
    },
    // GAMMA: HTTPRoutes on shop/api with every feature: matches of each kind, a split with an
    // unresolved backend, header modifiers, a rewrite, a redirect, mirrors, timeouts, retries
    {
      name: 'gamma-routes',
      snapshot: shopSnapshot({
        services: {
          ...shopSnapshot().services,
          ...service(
            'shop/api-v2',
            '10.96.0.21',
            [httpPort(8080)],
            [endpoint('10.1.0.21', { http: 8080 }, 'shop/api-v2-1', 'shop/api')],
          ),
        },
        httpRoutes: gammaRoutes(),
      }),
      context,
      warnings: [],
    },
    // GAMMA for gRPC: a GRPCRoute on shop/rpc beside an HTTPRoute on shop/api
    {
      name: 'gamma-grpc-routes',
      snapshot: shopSnapshot({
        services: { ...shopSnapshot().services, ...grpcServices },
        httpRoutes: { 'shop/api-routes': gammaRoutes()['shop/api-routes'] as SnapshotHttpRoute },
        grpcRoutes: {
          'shop/rpc-routes': {
            namespace: 'shop',
            name: 'rpc-routes',
            created: '2026-03-01T00:00:00Z',
            parents: [{ service: 'shop/rpc', port: 50051 }],
            rules: [
              {
                matches: [
                  {
                    path: { type: 'Exact', value: '/shop.Orders/Place' },
                    headers: [{ name: 'x-tenant', type: 'Exact', value: 'gold' }],
                    queryParams: [],
                  },
                ],
                requestHeaders: { set: [{ name: 'x-route', value: 'place' }], add: [], remove: [] },
                responseHeaders: { set: [], add: [{ name: 'x-served', value: 'rpc' }], remove: [] },
                backends: [
                  { service: 'shop/rpc', port: 50051, weight: 3 },
                  { service: 'shop/web-rpc', port: 9090, weight: 1 },
                ],
              },
              {
                matches: [
                  { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] },
                ],
                backends: [{ service: 'shop/rpc', port: 50051, weight: 1 }],
              },
            ],
          },
        },
      }),
      context,
      warnings: [],
    },
    plain(
      'headless',
      shopSnapshot({
        services: {
          ...shopSnapshot().services,
          ...service(
            'shop/kafka',
            '',
            [tcpPort(9092, 'tcp-broker'), httpPort(8083, 'http-admin')],
            [
              endpoint(
                '10.1.0.41',
                { 'tcp-broker': 9092, 'http-admin': 8083 },
                'shop/kafka-0',
                'shop/kafka',
              ),
              endpoint(
                '10.1.0.42',
                { 'tcp-broker': 9092, 'http-admin': 8083 },
                'shop/kafka-1',
                'shop/kafka',
              ),
            ],
          ),
        },
      }),
    ),
  ];
}

/** HTTPRoutes on shop/api: matches of every kind, a split, filters, a redirect, a bad backend. */
export function gammaRoutes(): MeshSnapshot['httpRoutes'] {
  const prefix = (value: string) => ({ type: 'PathPrefix' as const, value });
  return {
    'shop/api-canary': {
      namespace: 'shop',
      name: 'api-canary',
      created: '2026-01-01T00:00:00Z',
      parents: [{ service: 'shop/api', port: 8080 }],
      rules: [
        {
          matches: [
            {
              path: prefix('/v2'),
              headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }],
              queryParams: [{ name: 'tier', type: 'RegularExpression', value: 'gold|silver' }],
              method: 'GET',
            },
          ],
          requestHeaders: {
            set: [{ name: 'X-Route', value: 'canary $1' }],
            add: [{ name: 'X-Trail', value: 'canary' }],
            remove: ['X-Debug'],
          },
          responseHeaders: {
            set: [{ name: 'X-Served-By', value: 'v2' }],
            add: [],
            remove: ['Server'],
          },
          rewrite: { path: { type: 'ReplacePrefixMatch', value: '/' } },
          backends: [
            { service: 'shop/api-v2', port: 8080, weight: 90 },
            { service: 'shop/api', port: 8080, weight: 10 },
            { service: 'shop/missing', port: 80, weight: 5, invalid: true },
          ],
        },
      ],
    },
    'shop/api-routes': {
      namespace: 'shop',
      name: 'api-routes',
      created: '2026-02-01T00:00:00Z',
      parents: [{ service: 'shop/api' }],
      rules: [
        {
          matches: [{ path: { type: 'Exact', value: '/old' }, headers: [], queryParams: [] }],
          redirect: {
            hostname: 'api.example',
            path: { type: 'ReplaceFullPath', value: '/new' },
            statusCode: 301,
          },
          backends: [],
        },
        {
          matches: [
            { path: prefix('/'), headers: [], queryParams: [] },
            {
              path: { type: 'RegularExpression', value: '/items/[0-9]+' },
              headers: [{ name: 'x-canary', type: 'RegularExpression', value: 'n.*' }],
              queryParams: [],
            },
          ],
          rewrite: { hostname: 'api.internal' },
          backends: [{ service: 'shop/api', port: 8080, weight: 1 }],
          mirrors: [
            { service: 'shop/api-v2', port: 8080, percent: 100 },
            { service: 'shop/api-v2', port: 8080, percent: 12.5 },
          ],
          timeouts: { requestMs: 1500, backendRequestMs: 500 },
          retry: { attempts: 2, codes: [502, 503], backoffMs: 100 },
        },
        { matches: [{ path: prefix('/none'), headers: [], queryParams: [] }], backends: [] },
      ],
    },
  };
}

/** shop/rpc, a gRPC Service, and web-1 serving gRPC on 9090 behind shop/web-rpc. */
export const grpcServices: Record<string, SnapshotService> = {
  ...service(
    'shop/rpc',
    '10.96.0.30',
    [http2Port(50051)],
    [endpoint('10.1.0.31', { grpc: 50051 }, 'shop/rpc-1', 'shop/rpc')],
  ),
  ...service(
    'shop/web-rpc',
    '10.96.0.31',
    [http2Port(9090, 'grpc-web-api')],
    [endpoint('10.1.0.5', { 'grpc-web-api': 9090 }, 'shop/web-1', 'shop/web')],
  ),
};
