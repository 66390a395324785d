// Stage 1 of a gateway's own part of the configuration: which listeners it serves, one server per
// (port, host name) with the routes attached there, and the route table of those servers, as
// plain data plus warnings. Stage 2 (directives.ts) prints it. Pure. The decisions are listed in
// index.ts.
import {
  SIDECAR_EGRESS_REFUSED_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_INBOUND_HTTP2_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP2_PORT,
  SIDECAR_INBOUND_HTTP_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_INBOUND_TCP_DENY_PORT,
  SIDECAR_INBOUND_TCP_PLAIN_PORT,
  SIDECAR_INBOUND_TCP_PORT,
  SIDECAR_METRICS_PORT,
  SIDECAR_OUTBOUND_HTTP2_PORT,
  SIDECAR_OUTBOUND_HTTP_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_OUTBOUND_TCP_PORT,
} from '../../manifests/constants';
import type {
  MeshSnapshot,
  SnapshotGatewayListener,
  SnapshotGatewayRoute,
  SnapshotRouteRule,
} from '../../manifests/snapshot/types';
import { splitPercentages } from '../sidecar/model';
import type { SidecarModel } from '../sidecar/model';
import { upstreamName } from '../sidecar/names';
import type { SidecarPolicy } from '../sidecar/policies';
import { assembleRouteTable } from '../sidecar/routes';
import type { RouteTableModel } from '../sidecar/routes';
import type { GatewayContext } from './context';

/** The server_name of a port's default server: it takes every host no other server takes. */
export const DEFAULT_SERVER_NAME = '_';

/**
 * Ports the rest of the configuration (and the agent's metrics) listen on: a listener on one of
 * them would take the proxy's own traffic, or fail to bind.
 */
const PROXY_PORTS: ReadonlySet<number> = new Set([
  SIDECAR_METRICS_PORT,
  SIDECAR_INBOUND_HTTP_PORT,
  SIDECAR_OUTBOUND_HTTP_PORT,
  SIDECAR_INBOUND_HTTP_PLAIN_PORT,
  SIDECAR_INBOUND_HTTP2_PORT,
  SIDECAR_OUTBOUND_HTTP2_PORT,
  SIDECAR_INBOUND_HTTP2_PLAIN_PORT,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_EGRESS_REFUSED_PORT,
  SIDECAR_INBOUND_TCP_PORT,
  SIDECAR_INBOUND_TCP_DENY_PORT,
  SIDECAR_OUTBOUND_TCP_PORT,
  SIDECAR_INBOUND_TCP_PLAIN_PORT,
]);

/** One nginx server: a listener's port and one host name it takes there. */
export interface GatewayServerModel {
  readonly port: number;
  /** server_name: a host name, "*.example.com", or DEFAULT_SERVER_NAME. */
  readonly name: string;
  /** The key of the server's routes in the match text: "<port> <name>". */
  readonly key: string;
  readonly protocol: 'HTTP' | 'HTTPS';
  /** The port's default server (listen … default_server). */
  readonly defaultServer: boolean;
  /**
   * HTTPS: the certificate and key files of the listener that owns the host. Absent on an HTTPS
   * port's default server that no listener owns: its handshake is refused.
   */
  readonly certificate?: { readonly crt: string; readonly key: string };
  /** The ids of the actions of the routes attached here; empty: every request is answered 404. */
  readonly actions: readonly string[];
}

/** Every decision the printer needs for the gateway's own part, sorted. */
export interface GatewayModel {
  /** By port, then name. */
  readonly servers: readonly GatewayServerModel[];
  /** The listeners' routes; absent when no route is attached to a served listener. */
  readonly routes?: RouteTableModel;
  /** The upstream of every backend of those routes and its Service, by upstream. */
  readonly services: readonly (readonly [string, string])[];
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const byKey = <T>(record: Readonly<Record<string, T>>): T[] =>
  Object.keys(record)
    .sort()
    .map((key) => record[key] as T);

/**
 * How closely a listener's hostname takes `host` (a name, or a wildcard a route narrowed it to):
 * -1 not at all; 0 any host; a wildcard by the length of its suffix; an exact name above all.
 */
function hostRank(listener: SnapshotGatewayListener, host: string): number {
  const own = listener.hostname;
  if (own === undefined) return 0;
  if (own === host) return Number.MAX_SAFE_INTEGER;
  if (!own.startsWith('*.')) return -1;
  const suffix = own.slice(1);
  return host.endsWith(suffix) && host.length > suffix.length ? suffix.length : -1;
}

/**
 * The listeners served, in the Gateway's order: not on a port of the proxy's, HTTPS only with a
 * usable certificate, and the first of any that share a port with another protocol or a port and
 * host name.
 */
function servedListeners(
  listeners: readonly SnapshotGatewayListener[],
  context: GatewayContext,
  warnings: string[],
): SnapshotGatewayListener[] {
  const served: SnapshotGatewayListener[] = [];
  for (const listener of listeners) {
    const what = `gateway ${context.gateway} listener ${listener.name}`;
    const samePort = served.filter((other) => other.port === listener.port);
    const sameHost = samePort.find((other) => other.hostname === listener.hostname);
    const otherProtocol = samePort.find((other) => other.protocol !== listener.protocol);
    if (PROXY_PORTS.has(listener.port))
      warnings.push(`${what}: port ${listener.port} is the proxy's own; left out`);
    else if (listener.protocol === 'HTTPS' && !context.certificates.has(listener.name))
      warnings.push(`${what}: no usable certificate in ${context.certificateDir}; left out`);
    else if (otherProtocol !== undefined)
      warnings.push(
        `${what}: port ${listener.port} is ${otherProtocol.protocol} for listener ${otherProtocol.name}; left out`,
      );
    else if (sameHost !== undefined)
      warnings.push(
        `${what}: listener ${sameHost.name} takes ${listener.hostname ?? 'any host'} on port ${listener.port} already; left out`,
      );
    else served.push(listener);
  }
  return served;
}

interface ServerBuild {
  readonly port: number;
  readonly name: string;
  readonly owner?: SnapshotGatewayListener;
  readonly routes: SnapshotGatewayRoute[];
}

/**
 * A backend on an HTTP/2 port (gRPC, h2c) cannot take an HTTPRoute's HTTP/1 request: its share
 * is answered 500, as for a backend that could not be resolved.
 */
function withoutHttp2Backends(
  route: SnapshotGatewayRoute,
  http2: ReadonlySet<string>,
  warnings: string[],
): SnapshotGatewayRoute {
  const rules = route.rules.map((rule): SnapshotRouteRule => {
    if (!rule.backends.some((backend) => http2.has(upstreamName(backend.service, backend.port))))
      return rule;
    return {
      ...rule,
      backends: rule.backends.map((backend) => {
        if (backend.invalid === true || !http2.has(upstreamName(backend.service, backend.port)))
          return backend;
        warnings.push(
          `HTTPRoute ${route.namespace}/${route.name}: backend ${backend.service}:${backend.port} speaks HTTP/2; its share is answered 500`,
        );
        return { ...backend, invalid: true };
      }),
    };
  });
  return { ...route, rules };
}

/**
 * The servers of the listeners served: each listener's own host name (or the default server),
 * each host name a route narrows a listener to, and a default server on every port without one.
 * A host goes to the listener on its port that takes it most closely, with that listener's routes
 * only.
 */
function buildServers(
  listeners: readonly SnapshotGatewayListener[],
  routes: readonly SnapshotGatewayRoute[],
  gateway: string,
): ServerBuild[] {
  const servers = new Map<string, ServerBuild>();
  const serverAt = (port: number, name: string, owner?: SnapshotGatewayListener): ServerBuild => {
    const key = `${port} ${name}`;
    const known = servers.get(key);
    if (known !== undefined) return known;
    const created: ServerBuild = {
      port,
      name,
      ...(owner === undefined ? {} : { owner }),
      routes: [],
    };
    servers.set(key, created);
    return created;
  };
  const owner = (port: number, host: string): SnapshotGatewayListener | undefined => {
    let best: SnapshotGatewayListener | undefined;
    let bestRank = -1;
    for (const listener of listeners.filter((candidate) => candidate.port === port)) {
      const rank = hostRank(listener, host);
      if (rank > bestRank) [best, bestRank] = [listener, rank];
    }
    return best;
  };
  for (const listener of listeners)
    serverAt(listener.port, listener.hostname ?? DEFAULT_SERVER_NAME, listener);
  for (const route of routes) {
    for (const attachment of route.attachments) {
      const listener = listeners.find((candidate) => candidate.name === attachment.listener);
      if (attachment.gateway !== gateway || listener === undefined) continue;
      const hosts =
        attachment.hostnames.length > 0
          ? attachment.hostnames
          : [listener.hostname ?? DEFAULT_SERVER_NAME];
      for (const host of hosts) {
        if (host !== DEFAULT_SERVER_NAME && owner(listener.port, host) !== listener) continue;
        const server = serverAt(listener.port, host, listener);
        if (!server.routes.includes(route)) server.routes.push(route);
      }
    }
  }
  for (const port of new Set(listeners.map((listener) => listener.port)))
    serverAt(port, DEFAULT_SERVER_NAME);
  return [...servers.values()].sort((a, b) => a.port - b.port || compareText(a.name, b.name));
}

/**
 * Decides the gateway's own part for the Gateway `context.gateway`, beside the sidecar's model of
 * the same pod (whose upstreams the routes' backends are); warnings name what could not apply,
 * policies the routes the part is made of.
 */
export function buildGatewayModel(
  snapshot: MeshSnapshot,
  context: GatewayContext,
  sidecar: SidecarModel,
): {
  readonly model: GatewayModel;
  readonly warnings: readonly string[];
  readonly policies: readonly SidecarPolicy[];
} {
  const warnings: string[] = [];
  const gateway = snapshot.gateways[context.gateway];
  if (gateway === undefined)
    warnings.push(`gateway ${context.gateway} is not in the mesh; no listener is served`);
  const listeners = servedListeners(gateway?.listeners ?? [], context, warnings);
  const http2 = new Set(
    sidecar.httpUpstreams.filter((upstream) => upstream.http2 === true).map((u) => u.name),
  );
  const attached = byKey(snapshot.gatewayRoutes).filter((route) =>
    route.attachments.some((attachment) => attachment.gateway === context.gateway),
  );
  const servers = buildServers(
    listeners,
    attached.map((route) => withoutHttp2Backends(route, http2, warnings)),
    context.gateway,
  );
  const used = new Set<string>();
  const services = new Map<string, string>();
  const routes = assembleRouteTable(
    servers.map((server) => ({
      key: `${server.port} ${server.name}`,
      port: server.port,
      ...(server.owner?.protocol === 'HTTPS' ? { tls: true as const } : {}),
      routes: server.routes,
    })),
    {
      upstreams: new Map(sidecar.httpUpstreams.map((upstream) => [upstream.name, upstream])),
      percentages: splitPercentages,
      use: (route) => {
        used.add(`${route.namespace}/${route.name}`);
        for (const rule of route.rules)
          for (const backend of rule.backends)
            if (backend.invalid !== true)
              services.set(upstreamName(backend.service, backend.port), backend.service);
      },
      idPrefix: 'w',
      kindName: 'HTTPRoute',
    },
  );
  const actionsAt = new Map(routes?.routed.map((place) => [place.key, place.actions]) ?? []);
  const protocolOf = new Map(listeners.map((listener) => [listener.port, listener.protocol]));
  const file = (listener: string, extension: string): string =>
    `${context.certificateDir}/${listener}.${extension}`;
  return {
    model: {
      servers: servers.map((server) => {
        const key = `${server.port} ${server.name}`;
        const protocol = protocolOf.get(server.port) ?? 'HTTP';
        const owner = server.owner;
        return {
          port: server.port,
          name: server.name,
          key,
          protocol,
          defaultServer: server.name === DEFAULT_SERVER_NAME,
          ...(protocol === 'HTTPS' && owner !== undefined
            ? { certificate: { crt: file(owner.name, 'crt'), key: file(owner.name, 'key') } }
            : {}),
          actions: actionsAt.get(key) ?? [],
        };
      }),
      ...(routes === undefined ? {} : { routes }),
      services: [...services].sort(([a], [b]) => compareText(a, b)),
    },
    warnings,
    policies: [...used].sort().map((key) => ({ collection: 'gatewayRoutes', key })),
  };
}
