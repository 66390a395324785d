// The nginx configuration of an ingress gateway's pod: the agent and nginx of a sidecar, without
// an app or a redirect, serving the listeners of one Gateway (Gateway API) and routing the
// HTTPRoutes attached to them to the mesh's Services. Pure: identical input gives identical bytes.
//
// Decisions:
// - One renderer: the sidecar's (renderSidecarConfig), extended. Its model of this pod gives the
//   Services' upstreams, their URL, TLS-name and fresh-twin maps, the members file (endpoints
//   change without a reload), the stats server and the access log; a route's backend is a Service
//   port, whose upstream is upstreamName(service, port), so a gateway calls meshed backends over
//   mTLS with its own SVID exactly as a sidecar's outbound path does. The sidecar's other servers
//   stay; without a redirect they see no traffic.
// - Route rules are the sidecar's route machinery (routes.ts, route-directives.ts) with action
//   ids "w…" in the shared $mesh_rule → $mesh_outbound_upstream map. The match text's key is the
//   server ("$server_port $server_name"), and the table's http-level variables are the gateway's
//   own ($mesh_gateway_routed, $mesh_gateway_route_match, $mesh_gateway_route_port), so the
//   sidecar's own GAMMA table may sit in the same http block.
// - One server per (listener port, host name): each listener's hostname, and each host name a
//   route narrows a listener to; nginx's server_name selection is then the Gateway API's host
//   precedence (exact before wildcard, the longest wildcard first; "*.example.com" takes one or
//   more labels, never example.com). A host belongs to the listener on its port that takes it
//   most closely, with that listener's routes only. A listener without a hostname is its port's
//   default server; a port without one gets a default server answering 404 (on HTTPS its
//   handshake is refused: it has no certificate to show).
// - A request no rule of its server matches is answered 404. A redirect without a port keeps the
//   listener's port (left out when it is the well-known port of the request's scheme); with a
//   scheme and no port, the scheme's well-known port.
// - HTTPS listeners terminate TLS with "<certificateDir>/<listener>.crt" and ".key"; SNI picks
//   the server. An HTTPS listener whose certificate is not usable is left out, as are a listener
//   on a port the proxy uses itself, and the later of two listeners that conflict (one port with
//   two protocols, or the same port and hostname).
// - Backends see the client's Host, and X-Forwarded-For and X-Forwarded-Proto. A backend on an
//   HTTP/2 port (gRPC, h2c) cannot take an HTTPRoute's request: its share is answered 500.
// - The listeners count and log as the sidecar's outbound server does, naming the backend's
//   Service, so top and the metrics show the gateway's traffic; like it, they answer one more
//   request on a kept-alive connection across a reload (mesh_keepalive_drain).
// - While the mesh is being removed (transparent), the gateway serves no listener: its backends'
//   proxies no longer terminate mTLS.
// - A Service port an HTTPRoute of this gateway sends to speaks HTTP, whatever its name or
//   appProtocol say (the route says so): a port the mesh would carry as TCP gets an HTTP upstream
//   here. HTTP/2 ports stay HTTP/2.
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import { renderSidecarConfig } from '../sidecar';
import type { RenderedSidecar } from '../sidecar';
import type { GatewayContext } from './context';
import { buildGatewayExtension } from './directives';
import { buildGatewayModel } from './model';

export type { GatewayContext } from './context';
export { buildGatewayModel } from './model';
export type { GatewayModel, GatewayServerModel } from './model';

/** The configuration nginx runs in a gateway's pod, its members, and what could not be applied. */
export function renderGatewayConfig(given: MeshSnapshot, context: GatewayContext): RenderedSidecar {
  const snapshot = withHttpBackends(given, context.gateway);
  return renderSidecarConfig(snapshot, context, (sidecar) => {
    const { model, warnings, policies } = buildGatewayModel(snapshot, context, sidecar);
    return {
      outbound: buildGatewayExtension(model, sidecar, context),
      warnings,
      policies,
    };
  });
}

/** The snapshot with every TCP Service port a route of `gateway` sends to taken as HTTP. */
function withHttpBackends(snapshot: MeshSnapshot, gateway: string): MeshSnapshot {
  const ports = new Map<string, Set<number>>();
  for (const route of Object.values(snapshot.gatewayRoutes)) {
    if (!route.attachments.some((attachment) => attachment.gateway === gateway)) continue;
    for (const rule of route.rules) {
      for (const target of [...rule.backends, ...(rule.mirrors ?? [])]) {
        const set = ports.get(target.service) ?? new Set<number>();
        set.add(target.port);
        ports.set(target.service, set);
      }
    }
  }
  let changed = false;
  const services = { ...snapshot.services };
  for (const [key, numbers] of ports) {
    const service = services[key];
    if (service === undefined) continue;
    if (!service.ports.some((port) => numbers.has(port.port) && port.kind === 'tcp')) continue;
    changed = true;
    services[key] = {
      ...service,
      ports: service.ports.map((port) =>
        numbers.has(port.port) && port.kind === 'tcp' ? { ...port, kind: 'http' } : port,
      ),
    };
  }
  return changed ? { ...snapshot, services } : snapshot;
}
