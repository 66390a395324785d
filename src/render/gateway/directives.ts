// Stage 2 of a gateway's own part (model.ts decides): the listeners' servers and the maps of
// their route table, added to the sidecar's http block through its outbound extension.
// Mechanical. Pure.
import type { Directive } from '../agent-nginx';
import type { SidecarContext } from '../sidecar/context';
import { httpAccessLog } from '../sidecar/access-log';
import { httpStats, outboundRuleProxy } from '../sidecar/http-directives';
import type { OutboundExtension } from '../sidecar/http-directives';
import type { SidecarModel } from '../sidecar/model';
import { routeHttpDirectives, routeServerDirectives } from '../sidecar/route-directives';
import type { RouteDispatch } from '../sidecar/route-directives';
import { block, d, map } from '../sidecar/stream-directives';
import type { GatewayModel, GatewayServerModel } from './model';

/**
 * The gateway's dispatch: a server is named by its port and its (first) server_name, and its
 * variables ($mesh_gateway_routed, …) are its own beside the sidecar's $mesh_routed.
 */
export const GATEWAY_DISPATCH: RouteDispatch = {
  key: '$server_port $server_name',
  prefix: '$mesh_gateway_',
};

/** The Service of a gateway request's upstream, as the counters and the access log name it. */
const GATEWAY_SERVICE = '$mesh_gateway_service';

/** What a backend learns of the client and of how it called. */
const FORWARDED_HEADERS: readonly Directive[] = [
  d('proxy_set_header', 'X-Forwarded-For', '$proxy_add_x_forwarded_for'),
  d('proxy_set_header', 'X-Forwarded-Proto', '$scheme'),
];

/** Protocols an HTTPS listener accepts. */
const TLS_PROTOCOLS = ['TLSv1.2', 'TLSv1.3'];

function listenDirectives(server: GatewayServerModel, ipv6: boolean): Directive[] {
  const options = [
    ...(server.protocol === 'HTTPS' ? ['ssl'] : []),
    ...(server.defaultServer ? ['default_server'] : []),
  ];
  return [
    d('listen', String(server.port), ...options),
    ...(ipv6 ? [d('listen', `[::]:${server.port}`, ...options)] : []),
  ];
}

function tlsDirectives(server: GatewayServerModel): Directive[] {
  if (server.protocol !== 'HTTPS') return [];
  if (server.certificate === undefined) return [d('ssl_reject_handshake', 'on')];
  return [
    d('ssl_certificate', server.certificate.crt),
    d('ssl_certificate_key', server.certificate.key),
    d('ssl_protocols', ...TLS_PROTOCOLS),
  ];
}

function serverBlock(
  server: GatewayServerModel,
  gateway: GatewayModel,
  sidecar: SidecarModel,
  context: SidecarContext,
): Directive {
  const routes =
    server.actions.length === 0
      ? undefined
      : routeServerDirectives(
          gateway.routes,
          outboundRuleProxy(sidecar, context, FORWARDED_HEADERS),
          {
            dispatch: GATEWAY_DISPATCH,
            scheme: server.protocol === 'HTTPS' ? 'https' : 'http',
            actions: new Set(server.actions),
          },
        );
  return block(
    'server',
    [],
    [
      ...listenDirectives(server, context.ipv6),
      d('server_name', server.name),
      ...tlsDirectives(server),
      d('mesh_keepalive_drain', 'on'),
      ...httpStats('outbound', sidecar),
      ...httpAccessLog(context, 'outbound'),
      ...(routes === undefined
        ? [d('set', '$mesh_rule', ''), block('location', ['/'], [d('return', '404')])]
        : [...routes.server, ...routes.locations]),
    ],
  );
}

/** The gateway's part of the outbound half of the http block. */
export function buildGatewayExtension(
  gateway: GatewayModel,
  sidecar: SidecarModel,
  context: SidecarContext,
): OutboundExtension {
  return {
    routes: gateway.routes === undefined ? [] : [gateway.routes],
    service: GATEWAY_SERVICE,
    directives: [
      ...routeHttpDirectives(gateway.routes, GATEWAY_DISPATCH),
      map('$mesh_outbound_upstream', GATEWAY_SERVICE, '', gateway.services),
      ...gateway.servers.map((server) => serverBlock(server, gateway, sidecar, context)),
    ],
  };
}
