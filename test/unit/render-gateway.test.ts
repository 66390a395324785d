// An ingress gateway's configuration: its servers (one per listener port and host name), its route
// table beside the sidecar's own, and what it leaves out.
import { buildGatewayModel, renderGatewayConfig } from '../../src/render/gateway';
import type { GatewayContext, GatewayModel } from '../../src/render/gateway';
import { buildSidecarModel, renderSidecarConfig } from '../../src/render/sidecar';
import type { MeshSnapshot, SnapshotGatewayListener } from '../../src/manifests/snapshot/types';
import {
  ADMIN_LISTENER,
  HTTPS_LISTENER,
  HTTP_LISTENER,
  exact,
  gatewayContext,
  gatewayOf,
  gatewayRoute,
  gatewayScenarios,
  gatewayServices,
  gatewaySnapshot,
  on,
  prefix,
} from '../support/gateway-snapshots';
import { http2Port, endpoint, service, withMesh } from '../support/sidecar-snapshots';

function model(
  snapshot: MeshSnapshot,
  context: GatewayContext = gatewayContext(),
): { model: GatewayModel; warnings: readonly string[] } {
  return buildGatewayModel(snapshot, context, buildSidecarModel(snapshot, context).model);
}

const names = (gateway: GatewayModel): string[] =>
  gateway.servers.map((server) => `${server.port} ${server.name}`);

const web = { service: 'shop/web', port: 80, weight: 1 };
const api = { service: 'shop/api', port: 8080, weight: 1 };

/** The lines of the server block whose server_name is `name` (on `port`, when given). */
function serverText(text: string, name: string, port?: number): string {
  const blocks = text.split('\n    server {\n').slice(1);
  const found = blocks.find(
    (block) =>
      block.includes(`        server_name ${name};\n`) &&
      (port === undefined || block.startsWith(`        listen ${port}`)),
  );
  if (found === undefined) throw new Error(`no server ${name}`);
  return found.slice(0, found.indexOf('\n    }\n'));
}

describe('servers', () => {
  it('gives each host name a route narrows a listener to a server, and the port a default', () => {
    const { model: gateway } = model(gatewaySnapshot({ gateways: gatewayOf([HTTP_LISTENER]) }));
    expect(names(gateway)).toEqual(['8080 *.example.com', '8080 _', '8080 shop.example.com']);
    expect(gateway.servers.map((server) => server.defaultServer)).toEqual([false, true, false]);
    expect(gateway.servers.find((server) => server.name === '_')?.actions).toEqual([]);
  });

  it('makes a listener without a hostname the default server, with the routes on any host', () => {
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf([HTTP_LISTENER]),
      gatewayRoutes: gatewayRoute(
        'shop/any',
        [on('http')],
        [{ matches: [prefix('/')], backends: [web] }],
      ),
    });
    const { model: gateway } = model(snapshot);
    expect(names(gateway)).toEqual(['8080 _']);
    expect(gateway.servers[0]?.actions).toEqual(['w1']);
    const text = renderGatewayConfig(snapshot, gatewayContext()).text;
    expect(serverText(text, '_')).toContain('listen 8080 default_server;');
  });

  it('gives a host to the listener that takes it most closely, with that listener’s routes only', () => {
    const listeners: SnapshotGatewayListener[] = [
      { name: 'wild', port: 8080, protocol: 'HTTP', hostname: '*.example.com' },
      { name: 'foo', port: 8080, protocol: 'HTTP', hostname: 'foo.example.com' },
      { name: 'deep', port: 8080, protocol: 'HTTP', hostname: '*.a.example.com' },
    ];
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf(listeners),
      gatewayRoutes: {
        ...gatewayRoute(
          'shop/wild',
          [on('wild', ['foo.example.com', 'x.a.example.com', 'bar.example.com'])],
          [{ matches: [prefix('/')], backends: [web] }],
        ),
        ...gatewayRoute('shop/foo', [on('foo')], [{ matches: [prefix('/')], backends: [api] }]),
      },
    });
    const { model: gateway } = model(snapshot);
    expect(names(gateway)).toEqual([
      '8080 *.a.example.com',
      '8080 *.example.com',
      '8080 _',
      '8080 bar.example.com',
      '8080 foo.example.com',
    ]);
    const actions = Object.fromEntries(
      gateway.servers.map((server) => [server.name, server.actions]),
    );
    // foo.example.com is foo's; x.a.example.com would be *.a.example.com's: shop/wild gets neither
    expect(actions).toEqual({
      '*.a.example.com': [],
      '*.example.com': [],
      _: [],
      'bar.example.com': ['w1'],
      'foo.example.com': ['w2'],
    });
    expect(gateway.routes?.actions.map((action) => action.route)).toEqual([
      'HTTPRoute shop/wild',
      'HTTPRoute shop/foo',
    ]);
  });

  it('ignores attachments to another Gateway', () => {
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf([HTTP_LISTENER]),
      gatewayRoutes: gatewayRoute(
        'shop/elsewhere',
        [{ gateway: 'edge/other', listener: 'http', hostnames: [] }],
        [{ matches: [prefix('/')], backends: [web] }],
      ),
    });
    const { model: gateway } = model(snapshot);
    expect(gateway.routes).toBeUndefined();
    expect(renderGatewayConfig(snapshot, gatewayContext()).policies).toEqual([]);
  });

  it('serves nothing of a Gateway the snapshot does not have, and says so', () => {
    const { model: gateway, warnings } = model(gatewaySnapshot({ gateways: {} }));
    expect(gateway.servers).toEqual([]);
    expect(warnings).toEqual(['gateway edge/gw is not in the mesh; no listener is served']);
  });
});

describe('HTTPS', () => {
  it('terminates TLS with the listener’s files, and refuses the handshake of unknown hosts', () => {
    const snapshot = gatewaySnapshot({ gateways: gatewayOf([HTTPS_LISTENER, ADMIN_LISTENER]) });
    const text = renderGatewayConfig(snapshot, gatewayContext()).text;
    expect(serverText(text, 'secure.example.com')).toContain(
      [
        '        listen 8443 ssl;',
        '        server_name secure.example.com;',
        '        ssl_certificate /etc/nginx-mesh/gateway/https.crt;',
        '        ssl_certificate_key /etc/nginx-mesh/gateway/https.key;',
      ].join('\n'),
    );
    expect(serverText(text, 'admin.example.com')).toContain(
      'ssl_certificate /etc/nginx-mesh/gateway/admin.crt;',
    );
    const fallback = serverText(text, '_', 8443);
    expect(fallback).toContain('listen 8443 ssl default_server;');
    expect(fallback).toContain('ssl_reject_handshake on;');
    expect(fallback).not.toContain('ssl_certificate');
  });

  it('leaves out an HTTPS listener without a usable certificate, and its routes', () => {
    const snapshot = gatewaySnapshot();
    const rendered = renderGatewayConfig(snapshot, gatewayContext({ certificates: new Set() }));
    expect(rendered.text).not.toContain('listen 8443');
    expect(rendered.warnings).toEqual([
      'gateway edge/gw listener https: no usable certificate in /etc/nginx-mesh/gateway; left out',
    ]);
    expect(rendered.policies.filter((policy) => policy.collection === 'gatewayRoutes')).toEqual([
      { collection: 'gatewayRoutes', key: 'legacy/catalog' },
      { collection: 'gatewayRoutes', key: 'shop/storefront' },
    ]);
  });

  it('sends a redirect without a scheme on as https, leaving out the well-known port', () => {
    const listener: SnapshotGatewayListener = { ...HTTPS_LISTENER, port: 443 };
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf([listener]),
      gatewayRoutes: gatewayRoute(
        'shop/moved',
        [on('https')],
        [
          {
            matches: [exact('/old')],
            redirect: { path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 301 },
            backends: [],
          },
        ],
      ),
    });
    const text = renderGatewayConfig(snapshot, gatewayContext()).text;
    expect(text).toContain('return 301 https://$host$mesh_gateway_route_port/new$is_args$args;');
    expect(text).toMatch(
      /map "\$server_port \$server_name" \$mesh_gateway_route_port \{\n {8}default "";\n {4}\}/,
    );
  });
});

describe('conflicts', () => {
  it('leaves out a listener on the proxy’s own port, or that conflicts with an earlier one', () => {
    const listeners: SnapshotGatewayListener[] = [
      HTTP_LISTENER,
      { name: 'proxy', port: 8889, protocol: 'HTTP' },
      { name: 'tls-on-http', port: 8080, protocol: 'HTTPS', hostname: 'a.example.com' },
      { name: 'again', port: 8080, protocol: 'HTTP' },
      { name: 'named', port: 9090, protocol: 'HTTP', hostname: 'a.example.com' },
    ];
    const { model: gateway, warnings } = model(
      gatewaySnapshot({ gateways: gatewayOf(listeners), gatewayRoutes: {} }),
      gatewayContext({ certificates: new Set(['tls-on-http']) }),
    );
    expect(names(gateway)).toEqual(['8080 _', '9090 _', '9090 a.example.com']);
    expect(warnings).toEqual([
      "gateway edge/gw listener proxy: port 8889 is the proxy's own; left out",
      'gateway edge/gw listener tls-on-http: port 8080 is HTTP for listener http; left out',
      'gateway edge/gw listener again: listener http takes any host on port 8080 already; left out',
    ]);
  });
});

describe('routing', () => {
  it('gives the gateway’s rules their own ids in the shared upstream map, beside the sidecar’s', () => {
    const scenario = gatewayScenarios().find((each) => each.name === 'with-gamma-routes');
    if (scenario === undefined) throw new Error('no with-gamma-routes scenario');
    const text = renderGatewayConfig(scenario.snapshot, scenario.context).text;
    const upstreamMap = /map \$mesh_rule \$mesh_outbound_upstream \{\n([^}]*)\}/.exec(text)?.[1];
    expect(upstreamMap?.split('\n').map((line) => line.trim().split(' ')[0])).toEqual([
      'default',
      'r1',
      'w2',
      'w4',
      'w5',
      'w6',
      '',
    ]);
    // each http-level dispatch variable is defined once: the sidecar's and the gateway's
    for (const variable of [
      'mesh_routed',
      'mesh_route_match',
      'mesh_route_port',
      'mesh_gateway_routed',
      'mesh_gateway_route_match',
      'mesh_gateway_route_port',
    ])
      expect(text.split(`$${variable} {`)).toHaveLength(2);
    expect(text).toContain('map $server_addr $mesh_routed {');
    expect(text).toContain('map "$server_port $server_name" $mesh_gateway_routed {');
  });

  it('keys each match on its server and holds in a server the locations of its rules only', () => {
    const snapshot = gatewaySnapshot({ gateways: gatewayOf([HTTP_LISTENER]) });
    const { model: gateway } = model(snapshot);
    expect(
      gateway.routes?.entries.map((entry) => [entry.regex.split('\\n')[0], entry.action]),
    ).toEqual([
      ['^8080 \\*\\.example\\.com', 'w1'],
      ['^8080 \\*\\.example\\.com', 'w2'],
      ['^8080 shop\\.example\\.com', 'w3'],
      ['^8080 shop\\.example\\.com', 'w4'],
      ['^8080 shop\\.example\\.com', 'w5'],
      ['^8080 shop\\.example\\.com', 'w6'],
    ]);
    const text = renderGatewayConfig(snapshot, gatewayContext()).text;
    const wildcard = serverText(text, '*.example.com');
    expect(wildcard).toContain('location = /.mesh/rule/w2 {');
    expect(wildcard).not.toContain('location = /.mesh/rule/w3 {');
    expect(serverText(text, 'shop.example.com')).not.toContain('location = /.mesh/rule/w2 {');
  });

  it('redirects on the listener’s port unless a scheme is given', () => {
    const text = renderGatewayConfig(
      gatewaySnapshot({ gateways: gatewayOf([HTTP_LISTENER]) }),
      gatewayContext(),
    ).text;
    expect(serverText(text, 'shop.example.com')).toContain(
      'return 301 http://$host$mesh_gateway_route_port/new$is_args$args;',
    );
    expect(text).toContain('"8080 shop.example.com" :8080;');
    expect(serverText(text, '*.example.com')).toContain('return 302 https://$host$request_uri;');
  });

  it('tells backends the client and scheme, and keeps the client’s Host', () => {
    const text = renderGatewayConfig(gatewaySnapshot(), gatewayContext()).text;
    const server = serverText(text, 'secure.example.com');
    expect(server).toContain('proxy_set_header Host $mesh_outbound_host;');
    expect(server).toContain('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
    expect(server).toContain('proxy_set_header X-Forwarded-Proto $scheme;');
    expect(server).toContain('proxy_set_header X-Gateway edge;');
    // the sidecar's own outbound server forwards as before
    const outbound = text.split('        listen 8889;\n')[1] ?? '';
    expect(outbound.slice(0, outbound.indexOf('\n    }\n'))).not.toContain('X-Forwarded');
  });

  it('answers a backend on an HTTP/2 port 500, and says so', () => {
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf([HTTP_LISTENER]),
      services: {
        ...gatewaySnapshot().services,
        ...service(
          'shop/rpc',
          '10.96.0.30',
          [http2Port(50051)],
          [endpoint('10.1.0.31', { grpc: 50051 }, 'shop/rpc-1', 'shop/rpc')],
        ),
      },
      gatewayRoutes: gatewayRoute(
        'shop/rpc',
        [on('http')],
        [
          {
            matches: [prefix('/')],
            backends: [
              { service: 'shop/rpc', port: 50051, weight: 1 },
              { service: 'shop/web', port: 80, weight: 1 },
            ],
          },
        ],
      ),
    });
    const { model: gateway, warnings } = model(snapshot);
    expect(warnings).toEqual([
      'HTTPRoute shop/rpc: backend shop/rpc:50051 speaks HTTP/2; its share is answered 500',
    ]);
    expect(gateway.routes?.actions[0]?.backends).toEqual([
      { upstream: '', percent: '50' },
      { upstream: 'mesh_shop__web_80', percent: '*' },
    ]);
  });
});

describe('counting and policies', () => {
  it('names the backend’s Service of a gateway request where the address names none', () => {
    const text = renderGatewayConfig(gatewaySnapshot(), gatewayContext()).text;
    expect(text).toContain(
      'map $server_addr $mesh_outbound_service {\n        default $mesh_gateway_service;',
    );
    expect(text).toContain(
      [
        'map $mesh_outbound_upstream $mesh_gateway_service {',
        '        default "";',
        '        mesh_legacy__catalog_80 legacy/catalog;',
        '        mesh_shop__api_8080 shop/api;',
        '        mesh_shop__api_v2_8080 shop/api-v2;',
        '        mesh_shop__web_80 shop/web;',
        '    }',
      ].join('\n'),
    );
    const server = serverText(text, 'shop.example.com');
    expect(server).toContain('mesh_stats mesh_http "{\\"dir\\":\\"out\\"');
  });

  it('logs the listeners as outbound traffic when the pod has an access log', () => {
    const context = gatewayContext({ accessLog: '/etc/nginx-mesh/access.log' });
    const text = renderGatewayConfig(gatewaySnapshot(), context).text;
    expect(serverText(text, 'secure.example.com')).toContain(
      'access_log /etc/nginx-mesh/access.log mesh_http_outbound',
    );
  });

  it('names the routes it serves as policies, beside the sidecar’s', () => {
    const scenario = gatewayScenarios().find((each) => each.name === 'with-gamma-routes');
    if (scenario === undefined) throw new Error('no with-gamma-routes scenario');
    expect(renderGatewayConfig(scenario.snapshot, scenario.context).policies).toEqual([
      { collection: 'gatewayRoutes', key: 'legacy/catalog' },
      { collection: 'gatewayRoutes', key: 'shop/storefront' },
      { collection: 'httpRoutes', key: 'shop/api-canary' },
    ]);
  });
});

describe('the sidecar', () => {
  it('renders the transparent configuration while the mesh is removed', () => {
    const snapshot = withMesh({ transparent: true });
    const context = gatewayContext();
    expect(
      renderGatewayConfig({ ...snapshot, gateways: gatewayOf([HTTP_LISTENER]) }, context),
    ).toEqual(renderSidecarConfig(snapshot, context));
  });

  it('keeps the sidecar’s configuration of a pod the same when no Gateway is served', () => {
    const context = gatewayContext();
    const snapshot = gatewaySnapshot({ gateways: {}, gatewayRoutes: {} });
    const gateway = renderGatewayConfig(snapshot, context);
    const sidecar = renderSidecarConfig(snapshot, context);
    expect(gateway.text).toBe(
      sidecar.text
        .replace(
          'map $server_addr $mesh_outbound_service {\n        default "";',
          'map $server_addr $mesh_outbound_service {\n        default $mesh_gateway_service;',
        )
        .replace(
          '    map $server_addr $mesh_inbound_port {',
          '    map $mesh_outbound_upstream $mesh_gateway_service {\n        default "";\n    }\n    map $server_addr $mesh_inbound_port {',
        ),
    );
    expect(gateway.members).toBe(sidecar.members);
  });
});

describe('backends', () => {
  it('calls a Service port a route sends to over HTTP, even one the mesh would carry as TCP', () => {
    const snapshot = gatewaySnapshot({
      gateways: gatewayOf([HTTP_LISTENER]),
      services: {
        ...gatewayServices,
        ...service(
          'shop/plain',
          '10.96.0.50',
          [{ name: '', port: 8080, protocol: 'TCP', kind: 'tcp' }],
          [endpoint('10.1.5.1', { '': 3000 })],
        ),
      },
      gatewayRoutes: gatewayRoute(
        'shop/plain',
        [on('http')],
        [{ matches: [prefix('/')], backends: [{ service: 'shop/plain', port: 8080, weight: 1 }] }],
      ),
    });
    const { text } = renderGatewayConfig(snapshot, gatewayContext());
    expect(text).toContain('mesh_shop__plain_8080 http://mesh_shop__plain_8080;');
    // The sidecar of any other pod still carries the port as TCP.
    expect(renderSidecarConfig(snapshot, gatewayContext()).text).not.toContain(
      'http://mesh_shop__plain_8080',
    );
  });
});
