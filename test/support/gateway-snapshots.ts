// Mesh snapshots and contexts for an ingress gateway's configuration (golden, unit and integration
// tests): the Gateway edge/gw in front of the shop, with an HTTP listener on 8080 that two routes
// narrow to an exact and a wildcard host, and HTTPS listeners whose certificates the pod may or
// may not hold.
import type { GatewayContext } from '../../src/render/gateway';
import type {
  MeshSnapshot,
  SnapshotGatewayAttachment,
  SnapshotGatewayListener,
  SnapshotGatewayRoute,
  SnapshotRouteMatch,
  SnapshotRouteRule,
} from '../../src/manifests/snapshot/types';
import { endpoint, httpPort, service, shopContext, shopSnapshot } from './sidecar-snapshots';

export const GATEWAY = 'edge/gw';

export const prefix = (
  value: string,
  extra: Partial<SnapshotRouteMatch> = {},
): SnapshotRouteMatch => ({
  path: { type: 'PathPrefix', value },
  headers: [],
  queryParams: [],
  ...extra,
});

export const exact = (
  value: string,
  extra: Partial<SnapshotRouteMatch> = {},
): SnapshotRouteMatch => ({
  ...prefix(value, extra),
  path: { type: 'Exact', value },
});

/** An attachment to a listener of edge/gw. */
export const on = (listener: string, hostnames: string[] = []): SnapshotGatewayAttachment => ({
  gateway: GATEWAY,
  listener,
  hostnames,
});

export function gatewayRoute(
  key: string,
  attachments: SnapshotGatewayAttachment[],
  rules: SnapshotRouteRule[],
  created = '2026-01-01T00:00:00Z',
): Record<string, SnapshotGatewayRoute> {
  const [namespace = '', name = ''] = key.split('/');
  return { [key]: { namespace, name, created, attachments, rules } };
}

export function gatewayOf(
  listeners: SnapshotGatewayListener[],
  key = GATEWAY,
): MeshSnapshot['gateways'] {
  const [namespace = '', name = ''] = key.split('/');
  return { [key]: { namespace, name, listeners } };
}

/** The listeners of the golden cases: HTTP on 8080, HTTPS on 8443 (secure and admin hosts). */
export const HTTP_LISTENER: SnapshotGatewayListener = {
  name: 'http',
  port: 8080,
  protocol: 'HTTP',
};
export const HTTPS_LISTENER: SnapshotGatewayListener = {
  name: 'https',
  port: 8443,
  protocol: 'HTTPS',
  hostname: 'secure.example.com',
  tls: true,
};
export const ADMIN_LISTENER: SnapshotGatewayListener = {
  name: 'admin',
  port: 8443,
  protocol: 'HTTPS',
  hostname: 'admin.example.com',
  tls: true,
};

/** The shop's api in two versions (meshed) and an unmeshed catalog, the routes' backends. */
export const gatewayServices: MeshSnapshot['services'] = {
  ...shopSnapshot().services,
  ...service(
    'shop/api-v2',
    '10.96.0.22',
    [httpPort(8080)],
    [endpoint('10.1.1.2', { http: 8080 }, 'shop/api-v2-1', 'shop/api')],
  ),
  ...service(
    'legacy/catalog',
    '10.96.0.40',
    [httpPort(80)],
    [endpoint('10.2.0.8', { http: 8080 })],
  ),
};

/**
 * The routes of the golden cases: storefront on shop.example.com (a redirect, a header match, a
 * weighted split, the web for the rest), catalog on *.example.com (a redirect to https, the
 * unmeshed catalog), and secure on the HTTPS listener.
 */
export function gatewayRoutes(): MeshSnapshot['gatewayRoutes'] {
  const api = { service: 'shop/api', port: 8080, weight: 3 };
  const apiV2 = { service: 'shop/api-v2', port: 8080, weight: 1 };
  return {
    ...gatewayRoute(
      'shop/storefront',
      [on('http', ['shop.example.com'])],
      [
        {
          matches: [exact('/old')],
          redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 301 },
          backends: [],
        },
        {
          matches: [
            prefix('/api', { headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }] }),
          ],
          backends: [apiV2],
        },
        { matches: [prefix('/api')], backends: [api, apiV2] },
        { matches: [prefix('/')], backends: [{ service: 'shop/web', port: 80, weight: 1 }] },
      ],
    ),
    ...gatewayRoute(
      'legacy/catalog',
      [on('http', ['*.example.com'])],
      [
        {
          matches: [exact('/login')],
          redirect: { scheme: 'https', statusCode: 302 },
          backends: [],
        },
        {
          matches: [prefix('/')],
          backends: [{ service: 'legacy/catalog', port: 80, weight: 1 }],
        },
      ],
      '2026-02-01T00:00:00Z',
    ),
    ...gatewayRoute(
      'shop/secure',
      [on('https')],
      [
        {
          matches: [prefix('/')],
          requestHeaders: { set: [{ name: 'X-Gateway', value: 'edge' }], add: [], remove: [] },
          backends: [{ service: 'shop/api', port: 8080, weight: 1 }],
        },
      ],
    ),
  };
}

/** The shop with edge/gw and its routes (and these parts replaced). */
export function gatewaySnapshot(change: Partial<MeshSnapshot> = {}): MeshSnapshot {
  return shopSnapshot({
    services: gatewayServices,
    gateways: gatewayOf([HTTP_LISTENER, HTTPS_LISTENER]),
    gatewayRoutes: gatewayRoutes(),
    ...change,
  });
}

/** The gateway's pod edge/gw-1: no app, certificates in /etc/nginx-mesh/gateway. */
export function gatewayContext(change: Partial<GatewayContext> = {}): GatewayContext {
  return {
    ...shopContext({
      pod: 'edge/gw-1',
      serviceAccount: 'gw',
      podIPs: ['10.1.0.60'],
      containerPorts: [],
      healthRedirects: {},
    }),
    gateway: GATEWAY,
    certificateDir: '/etc/nginx-mesh/gateway',
    certificates: new Set(['https', 'admin']),
    ...change,
  };
}

/** A named golden case of a gateway. */
export interface GatewayScenario {
  readonly name: string;
  readonly snapshot: MeshSnapshot;
  readonly context: GatewayContext;
  readonly warnings: readonly string[];
}

export function gatewayScenarios(): GatewayScenario[] {
  return [
    {
      name: 'http-routes',
      snapshot: gatewaySnapshot({ gateways: gatewayOf([HTTP_LISTENER]) }),
      context: gatewayContext(),
      warnings: [],
    },
    {
      name: 'https-listener',
      snapshot: gatewaySnapshot(),
      context: gatewayContext(),
      warnings: [],
    },
    {
      name: 'https-certificate-missing',
      snapshot: gatewaySnapshot(),
      context: gatewayContext({ certificates: new Set() }),
      warnings: [
        'gateway edge/gw listener https: no usable certificate in /etc/nginx-mesh/gateway; left out',
      ],
    },
    {
      // The pod's own GAMMA routes (its outbound calls to shop/api) beside the gateway's.
      name: 'with-gamma-routes',
      snapshot: gatewaySnapshot({
        gateways: gatewayOf([HTTP_LISTENER]),
        httpRoutes: {
          'shop/api-canary': {
            namespace: 'shop',
            name: 'api-canary',
            created: '2026-01-01T00:00:00Z',
            parents: [{ service: 'shop/api', port: 8080 }],
            rules: [
              {
                matches: [prefix('/v2')],
                backends: [{ service: 'shop/api-v2', port: 8080, weight: 1 }],
              },
              {
                matches: [exact('/moved')],
                redirect: { path: { type: 'ReplaceFullPath', value: '/here' }, statusCode: 301 },
                backends: [],
              },
            ],
          },
        },
      }),
      context: gatewayContext(),
      warnings: [],
    },
  ];
}
