// Stage 1 of the sidecar configuration: decides, from the mesh snapshot and this pod's context,
// which destinations, upstreams, splits, access rules and rate limits apply to this pod, as
// plain data plus warnings. Stage 2 (directives.ts) prints it without further policy. Pure.
//
// A sidecar holds only the policies that can act on its own traffic, so that an object of one
// namespace reaches no configuration it cannot matter to: TrafficTargets whose destination is
// this pod's identity, RateLimits naming this pod, CircuitBreakers of Services with endpoints
// (every pod may call them), and TrafficSplits of Services this pod may call. Under access
// control "deny" a Service is callable when one of its endpoints is not meshed or has an identity
// some TrafficTarget lets this pod's identity reach; a split goes in when its root or a backend
// is callable (otherwise every request it would route is refused anyway).
import type {
  MeshMtlsMode,
  NginxErrorLogLevel,
  NginxLbMethod,
  NginxLogFormat,
} from '../../manifests/mesh-config/deploy-flags';
import type {
  MeshSnapshot,
  SnapshotCircuitBreaker,
  SnapshotEndpoint,
  SnapshotHttpMatch,
  SnapshotService,
  SnapshotServicePort,
} from '../../manifests/snapshot/types';
import type { SidecarContext, UpstreamSlots } from './context';
import type { PolicyCollection, SidecarPolicy } from './policies';
import { buildRouteTable } from './routes';
import type { RoutablePort, RouteTableModel } from './routes';
import { upstreamSlots } from './upstream-slots';
import {
  LOOPBACK_MAX,
  endpointUpstreamName,
  fnv1a32,
  hostPort,
  identityDnsName,
  inboundUpstreamName,
  loopbackAddress,
  loopbackSlot,
  nameSafe,
  spiffeId,
  upstreamName,
} from './names';

/** One server line of an upstream. */
export interface UpstreamServer {
  readonly address: string;
  readonly backup: boolean;
  /** From a CircuitBreaker: max_fails and fail_timeout (seconds). */
  readonly maxFails?: number;
  readonly failTimeoutSeconds?: number;
  /** A slot without a member yet (upstream-slots.ts). */
  readonly down?: boolean;
}

/** The endpoints of one Service port, with the load-balancing method. */
export interface UpstreamModel {
  readonly name: string;
  /** Arguments of the method directive; empty for round robin. */
  readonly method: readonly string[];
  readonly servers: readonly UpstreamServer[];
  /** proxy_ssl_name when every endpoint is meshed and mTLS is on; plaintext otherwise. */
  readonly tlsName?: string;
  /** Idle connections each worker keeps open for reuse (http upstreams only). */
  readonly keepalive?: number;
  /** How long an idle kept-alive connection stays open (nginx's default, 60 s, when absent). */
  readonly keepaliveTimeout?: string;
  /** The endpoints speak HTTP/2 (gRPC, h2c): reached with grpc_pass, HTTP/2 over TLS with ALPN. */
  readonly http2?: boolean;
  /**
   * A Service's upstream: its servers are slots the members file fills (upstream-slots.ts), so
   * that its endpoints change without a reload. Absent: the servers are in the configuration.
   */
  readonly slots?: UpstreamSlots;
}

/**
 * Idle keep-alive connections per worker and upstream on the HTTP paths: to a peer sidecar (a
 * new connection there costs an mTLS handshake, about ten times a request) and to the app. A cap,
 * not a reservation: nginx opens them as load needs.
 */
export const HTTP_UPSTREAM_KEEPALIVE = 32;

/**
 * How long the sidecar keeps an idle connection to its app: shorter than the app's own idle
 * timeout, so the app never closes a connection just as the sidecar sends a request on it (which
 * nginx answers 502, with no other server to try). Node's HTTP server closes after 5 s, as do
 * uvicorn and many others; nginx's own default of 60 s outlived them all.
 */
export const APP_KEEPALIVE_TIMEOUT = '4s';

/** Where an outbound HTTP destination goes: an upstream, a split, or nowhere (503). */
export type HttpTarget =
  | { readonly kind: 'upstream'; readonly upstream: string }
  | { readonly kind: 'split'; readonly split: string }
  | { readonly kind: 'none' };

/** A Service port the pod's traffic may go to, and the original destinations that mean it. */
export interface OutboundDestination {
  /** Loopback address that names it on the internal hop. */
  readonly loopback: string;
  /** "addr:port" of the ClusterIPs, or of the one pod a pod-addressed destination is. */
  readonly destinations: readonly string[];
  /**
   * "addr:port" of a ClusterIP Service's endpoints, which mean the Service too: in the members
   * file, so that they change without a reload.
   */
  readonly endpoints: readonly string[];
}

export interface OutboundHttp extends OutboundDestination {
  readonly target: HttpTarget;
  /** "<namespace>/<name>" of the Service addressed, as the metrics name it. */
  readonly service: string;
  /** The app speaks HTTP/2 in cleartext (gRPC, h2c): the outbound HTTP/2 server takes it. */
  readonly http2: boolean;
}

export interface OutboundTcp extends OutboundDestination {
  /** An upstream's name, or the "addr:port" of the one endpoint a pod-addressed destination is. */
  readonly upstream: string;
  /** "<namespace>/<name>" of the Service addressed, as the metrics name it. */
  readonly service: string;
  /**
   * The DNS SAN the peer's certificate must carry: through the outbound TCP server with mTLS.
   * Absent: plaintext straight from the redirect.
   */
  readonly tlsName?: string;
}

/**
 * What happens to traffic for a destination the mesh does not know (no Service's address or
 * endpoint): it leaves the pod directly, or (strict mTLS, without the pod's
 * default-egress-allowed annotation) it is refused.
 */
export type EgressPolicy = 'direct' | 'refused';

/** An HTTP match, deduplicated across policies; id numbers its variable. */
export interface MatchModel {
  readonly id: number;
  /** Empty: any method. */
  readonly methods: readonly string[];
  readonly pathRegex?: string;
  /** [variable suffix (lower case, underscores), regex], sorted. */
  readonly headers: readonly (readonly [string, string])[];
}

/** A TrafficSplit for one port of its root Service. */
export interface SplitModel {
  readonly name: string;
  /** Percentages with up to two decimals; the last is "*" (the rest). */
  readonly backends: readonly { readonly upstream: string; readonly percent: string }[];
  /** Requests matching none of these (when any) go to the root's own upstream. */
  readonly matchIds: readonly number[];
  readonly root: HttpTarget;
}

/** A port the app serves on, as the inbound redirect sees it. */
export interface InboundPort {
  readonly port: number;
  readonly kind: SnapshotServicePort['kind'];
  readonly loopback: string;
}

/** Who may reach this pod under accessControlMode deny. */
export interface AccessRule {
  readonly identity: string;
  /** Only this port, when set. */
  readonly port?: number;
  /** A TCPRoute rule: every connection admitted. */
  readonly tcp: boolean;
  /** HTTP rules: requests matching one of these are admitted. */
  readonly matchIds: readonly number[];
}

export interface RateLimitModel {
  readonly zone: string;
  readonly rate: number;
  readonly per: 's' | 'm';
  readonly burst: number;
  readonly delay: number | 'nodelay';
  readonly sourceIps: readonly string[];
  readonly matchIds: readonly number[];
}

/** Every decision the printer needs, sorted. */
export interface SidecarModel {
  readonly mtlsMode: MeshMtlsMode;
  readonly accessControl: 'allow' | 'deny';
  readonly clientMaxBodySize: string;
  readonly errorLogLevel: NginxErrorLogLevel;
  readonly logFormat: NginxLogFormat;
  /** Requests are traced (MeshConfig has an exporter): the share of new traces sampled, "0.01". */
  readonly tracing?: { readonly ratio: string };
  readonly egress: EgressPolicy;
  readonly outboundHttp: readonly OutboundHttp[];
  readonly outboundTcp: readonly OutboundTcp[];
  readonly httpUpstreams: readonly UpstreamModel[];
  readonly tcpUpstreams: readonly UpstreamModel[];
  readonly splits: readonly SplitModel[];
  /** Gateway API HTTPRoutes acting on this pod's outbound requests; absent when none do. */
  readonly routes?: RouteTableModel;
  /** Gateway API GRPCRoutes acting on this pod's outbound calls (HTTP/2 ports); absent: none. */
  readonly grpcRoutes?: RouteTableModel;
  readonly matches: readonly MatchModel[];
  readonly inboundPorts: readonly InboundPort[];
  /** One upstream per inbound HTTP port: the app on loopback, over kept-alive connections. */
  readonly inboundHttpUpstreams: readonly UpstreamModel[];
  readonly accessRules: readonly AccessRule[];
  readonly rateLimits: readonly RateLimitModel[];
}

const byKey = <T>(record: Readonly<Record<string, T>>): T[] =>
  Object.keys(record)
    .sort()
    .map((key) => record[key] as T);

/** A ratio as mesh_trace_ratio reads it: 0 to 1, at most six decimals. */
export function samplerRatioText(ratio: number): string {
  const clamped = Math.min(1, Math.max(0, ratio));
  return clamped.toFixed(6).replace(/\.?0+$/, '') || '0';
}

/** The pod's mode: its annotation, except that nothing weakens a mesh-wide strict. */
export function effectiveMtlsMode(
  mesh: MeshMtlsMode,
  pod: MeshMtlsMode | undefined,
  warnings: string[],
): MeshMtlsMode {
  if (pod === undefined) return mesh;
  if (mesh === 'strict' && pod !== 'strict') {
    warnings.push(`pod mTLS mode "${pod}" ignored: the mesh-wide mode is strict`);
    return 'strict';
  }
  return pod;
}

/** The method directive's arguments; least_time needs NGINX Plus and becomes least_conn. */
export function lbMethodArgs(method: NginxLbMethod, warnings: string[], what: string): string[] {
  switch (method) {
    case 'round_robin':
      return [];
    case 'least_conn':
    case 'random':
      return [method];
    case 'random two':
    case 'random two least_conn':
      return method.split(' ');
    case 'least_time':
    case 'least_time last_byte':
    case 'least_time last_byte inflight':
      warnings.push(`${what}: lb-method "${method}" needs NGINX Plus; using least_conn`);
      return ['least_conn'];
    case 'random two least_time':
    case 'random two least_time=last_byte':
      warnings.push(`${what}: lb-method "${method}" needs NGINX Plus; using random two least_conn`);
      return ['random', 'two', 'least_conn'];
  }
}

/** Splits 100% among weights in hundredths (largest remainder), as split_clients percentages. */
export function splitPercentages(weights: readonly number[]): string[] {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  if (total <= 0) return weights.map(() => '0');
  const exact = weights.map((weight) => (weight * 10000) / total);
  const shares = exact.map(Math.floor);
  const order = exact
    .map((value, index) => ({ index, rest: value - Math.floor(value) }))
    .sort((a, b) => b.rest - a.rest || a.index - b.index);
  let missing = 10000 - shares.reduce((sum, share) => sum + share, 0);
  for (const { index } of order) {
    if (missing <= 0) break;
    shares[index] = (shares[index] ?? 0) + 1;
    missing -= 1;
  }
  return shares.map((share) => {
    const whole = Math.floor(share / 100);
    const cents = share % 100;
    if (cents === 0) return `${whole}`;
    return `${whole}.${String(cents).padStart(2, '0').replace(/0$/, '')}`;
  });
}

/** Zone name of a RateLimit: its name plus a hash of what nginx binds to the zone. */
export function rateLimitZoneName(
  namespace: string,
  name: string,
  key: string,
  rate: string,
): string {
  return `mesh_rl_${nameSafe(`${namespace}_${name}`)}_${fnv1a32(`${namespace}/${name}\n${key}\n${rate}`)}`;
}

/** Interns HTTP matches so equal matches share one variable. */
class MatchTable {
  private readonly ids = new Map<string, MatchModel>();

  intern(match: SnapshotHttpMatch): number {
    const methods = match.methods.includes('*') ? [] : [...match.methods].sort();
    const headers = Object.keys(match.headers)
      .sort()
      .map((name): [string, string] => [
        name.toLowerCase().replace(/[^a-z0-9]/g, '_'),
        match.headers[name] ?? '',
      ]);
    const canonical = JSON.stringify([methods, match.pathRegex ?? null, headers]);
    const known = this.ids.get(canonical);
    if (known !== undefined) return known.id;
    const model: MatchModel = {
      id: this.ids.size + 1,
      methods,
      ...(match.pathRegex === undefined ? {} : { pathRegex: match.pathRegex }),
      headers,
    };
    this.ids.set(canonical, model);
    return model.id;
  }

  internAll(matches: readonly SnapshotHttpMatch[]): number[] {
    return [...new Set(matches.map((match) => this.intern(match)))].sort((a, b) => a - b);
  }

  all(): MatchModel[] {
    return [...this.ids.values()];
  }
}

interface Builder {
  readonly snapshot: MeshSnapshot;
  readonly context: SidecarContext;
  readonly mtlsMode: MeshMtlsMode;
  readonly warnings: string[];
  readonly matches: MatchTable;
  readonly breakers: ReadonlyMap<string, SnapshotCircuitBreaker>;
  /** "<collection> <key>" of every policy object the configuration is made of. */
  readonly used: Set<string>;
}

/** Notes that the configuration holds the policy `key` of `collection`. */
function use(
  b: Builder,
  collection: PolicyCollection,
  policy: { namespace: string; name: string },
) {
  b.used.add(`${collection} ${policy.namespace}/${policy.name}`);
}

/** Endpoint "addr:port" of one Service port, sorted by address (the snapshot's order). */
function endpointAddresses(service: SnapshotService, portName: string): string[] {
  return service.endpoints.flatMap((endpoint) => {
    const port = endpoint.ports[portName];
    return port === undefined ? [] : [hostPort(endpoint.address, port)];
  });
}

/** The single identity every endpoint of the port has, or undefined (some are not meshed). */
function commonIdentity(
  b: Builder,
  service: SnapshotService,
  port: SnapshotServicePort,
): string | undefined {
  const endpoints = service.endpoints.filter((endpoint) => endpoint.ports[port.name] !== undefined);
  const identities = [...new Set(endpoints.map((endpoint) => endpoint.identity ?? ''))].sort();
  if (endpoints.length === 0 || identities.includes('')) {
    if (identities.length > 1)
      b.warnings.push(
        `service ${service.namespace}/${service.name} port ${port.port}: some endpoints are not meshed; using plaintext`,
      );
    return undefined;
  }
  if (identities.length > 1)
    b.warnings.push(
      `service ${service.namespace}/${service.name} port ${port.port}: endpoints have several identities (${identities.join(', ')}); verifying ${identities[0] ?? ''}`,
    );
  return identities[0];
}

function fallbackServers(b: Builder, breaker: SnapshotCircuitBreaker): UpstreamServer[] {
  const fallback = breaker.fallback;
  if (fallback === undefined) return [];
  const what = `circuit breaker ${breaker.namespace}/${breaker.name}`;
  const service = b.snapshot.services[fallback.service];
  if (service === undefined) {
    b.warnings.push(`${what}: fallback service ${fallback.service} is not in the mesh`);
    return [];
  }
  const port = service.ports.find((candidate) => candidate.port === fallback.port);
  const addresses =
    port === undefined
      ? service.endpoints.map((endpoint) => hostPort(endpoint.address, fallback.port))
      : endpointAddresses(service, port.name);
  if (addresses.length === 0)
    b.warnings.push(`${what}: fallback service ${fallback.service} has no endpoints`);
  return addresses.map((address) => ({ address, backup: true }));
}

function buildUpstream(
  b: Builder,
  service: SnapshotService,
  port: SnapshotServicePort,
): UpstreamModel | undefined {
  const key = `${service.namespace}/${service.name}`;
  const addresses = endpointAddresses(service, port.name);
  if (addresses.length === 0) return undefined;
  const what = `service ${key}`;
  const method = lbMethodArgs(service.lbMethod ?? b.snapshot.mesh.lbMethod, b.warnings, what);
  const breaker = b.breakers.get(key);
  if (breaker !== undefined) use(b, 'circuitBreakers', breaker);
  const guard =
    breaker === undefined
      ? {}
      : { maxFails: breaker.errors, failTimeoutSeconds: breaker.timeoutSeconds };
  let backups = breaker === undefined ? [] : fallbackServers(b, breaker);
  if (backups.length > 0 && method.length > 0 && method[0] !== 'least_conn') {
    b.warnings.push(
      `circuit breaker ${breaker?.namespace ?? ''}/${breaker?.name ?? ''}: lb-method "${method.join(' ')}" of ${key} cannot have backup servers; fallback ignored`,
    );
    backups = [];
  }
  const identity = b.mtlsMode === 'off' ? undefined : commonIdentity(b, service, port);
  return {
    name: upstreamName(key, port.port),
    method,
    servers: [...addresses.map((address) => ({ address, backup: false, ...guard })), ...backups],
    ...(identity === undefined ? {} : { tlsName: identityDnsName(identity) }),
  };
}

interface SplitBuild {
  readonly splits: SplitModel[];
  /** "<namespace>/<name>:<port>" of a root Service port → its split. */
  readonly byRootPort: Map<string, string>;
}

/**
 * Whether this pod may call a Service ("<namespace>/<name>"): always under access control
 * "allow"; under "deny" when an endpoint is not meshed or a TrafficTarget admits this pod's
 * identity to the endpoint's (any port, any rule: an over-estimate, never an under-estimate).
 */
function callableServices(b: Builder): (service: string) => boolean {
  if (b.snapshot.mesh.accessControlMode === 'allow') return () => true;
  const namespace = b.context.pod.split('/')[0] ?? '';
  const self = `${namespace}/${b.context.serviceAccount}`;
  const reachable = new Set<string>();
  for (const target of Object.values(b.snapshot.trafficTargets))
    if (target.sources.includes(self)) reachable.add(target.destination);
  return (key) =>
    (b.snapshot.services[key]?.endpoints ?? []).some(
      (endpoint) => endpoint.identity === undefined || reachable.has(endpoint.identity),
    );
}

function buildSplits(b: Builder, upstreams: ReadonlySet<string>): SplitBuild {
  const splits: SplitModel[] = [];
  const byRootPort = new Map<string, string>();
  const callable = callableServices(b);
  for (const split of byKey(b.snapshot.trafficSplits)) {
    const what = `traffic split ${split.namespace}/${split.name}`;
    const services = [split.service, ...split.backends.map((backend) => backend.service)];
    if (!services.some(callable)) continue;
    const root = b.snapshot.services[split.service];
    if (root === undefined) {
      b.warnings.push(`${what}: root service ${split.service} is not in the mesh`);
      continue;
    }
    for (const port of root.ports.filter((candidate) => candidate.kind !== 'tcp')) {
      const rootPort = `${split.service}:${port.port}`;
      if (byRootPort.has(rootPort)) {
        b.warnings.push(`${what}: ${rootPort} is already split by another TrafficSplit`);
        continue;
      }
      const backends = split.backends.flatMap((backend) => {
        const service = b.snapshot.services[backend.service];
        const match =
          service?.ports.find((candidate) => candidate.port === port.port) ??
          service?.ports.find((candidate) => candidate.name === port.name);
        const upstream = match === undefined ? '' : upstreamName(backend.service, match.port);
        if (!upstreams.has(upstream)) {
          b.warnings.push(
            `${what}: backend ${backend.service} has no endpoints for port ${port.port}`,
          );
          return [];
        }
        return [{ upstream, weight: backend.weight }];
      });
      if (backends.length === 0) continue;
      const percents = splitPercentages(backends.map((backend) => backend.weight));
      const name = `mesh_split_${nameSafe(split.namespace)}__${nameSafe(split.name)}_${port.port}`;
      const rootUpstream = upstreamName(split.service, port.port);
      splits.push({
        name,
        backends: backends
          .map((backend, index) => ({
            upstream: backend.upstream,
            percent: percents[index] ?? '0',
          }))
          .filter((backend) => backend.percent !== '0')
          .map((backend, index, all) =>
            index === all.length - 1 ? { ...backend, percent: '*' } : backend,
          ),
        matchIds: b.matches.internAll(split.matches),
        root: upstreams.has(rootUpstream)
          ? { kind: 'upstream', upstream: rootUpstream }
          : { kind: 'none' },
      });
      byRootPort.set(rootPort, name);
      use(b, 'trafficSplits', split);
    }
  }
  return { splits, byRootPort };
}

interface Outbound {
  readonly routable: RoutablePort[];
  readonly outboundHttp: OutboundHttp[];
  readonly outboundTcp: OutboundTcp[];
  readonly httpUpstreams: UpstreamModel[];
  readonly tcpUpstreams: UpstreamModel[];
  readonly splits: SplitModel[];
}

/**
 * The upstream of one pod of a headless Service, for traffic that addresses the pod itself (a
 * StatefulSet's pod by its DNS name): it reaches that pod and no other, over mTLS when the pod
 * is meshed.
 */
function endpointUpstream(
  b: Builder,
  endpoint: SnapshotEndpoint,
  address: string,
  port: SnapshotServicePort,
): UpstreamModel {
  return {
    name: endpointUpstreamName(address),
    method: [],
    servers: [{ address, backup: false }],
    ...endpointTls(b, endpoint),
    keepalive: HTTP_UPSTREAM_KEEPALIVE,
    ...(port.kind === 'http2' ? { http2: true } : {}),
  };
}

/** mTLS to one endpoint: when mTLS is on and the endpoint is meshed, its identity's DNS SAN. */
function endpointTls(b: Builder, endpoint: SnapshotEndpoint): { tlsName?: string } {
  return b.mtlsMode === 'off' || endpoint.identity === undefined
    ? {}
    : { tlsName: identityDnsName(endpoint.identity) };
}

/** The Service upstreams of every TCP-protocol port: http and http2 ports', and TCP ports'. */
function serviceUpstreams(b: Builder): { http: UpstreamModel[]; tcp: UpstreamModel[] } {
  const http: UpstreamModel[] = [];
  const tcp: UpstreamModel[] = [];
  for (const service of byKey(b.snapshot.services)) {
    for (const port of service.ports.filter((candidate) => candidate.protocol === 'TCP')) {
      const built = buildUpstream(b, service, port);
      if (built === undefined) continue;
      const upstream = {
        ...built,
        slots: upstreamSlots(built.servers, b.context.upstreamSlots?.get(built.name)),
      };
      if (port.kind === 'tcp') tcp.push(upstream);
      else
        http.push({
          ...upstream,
          keepalive: HTTP_UPSTREAM_KEEPALIVE,
          ...(port.kind === 'http2' ? { http2: true } : {}),
        });
    }
  }
  return { http, tcp };
}

/** The destinations found so far; an address two Services share goes to the first. */
class Destinations {
  readonly http: OutboundHttp[] = [];
  readonly tcp: OutboundTcp[] = [];
  readonly endpointUpstreams: UpstreamModel[] = [];
  /** The Service ports (not pod-addressed destinations) among http, for HTTPRoutes. */
  readonly routable: RoutablePort[] = [];
  private readonly seen = new Set<string>();
  private readonly httpSlots = new Set<number>();
  private readonly tcpSlots = new Set<number>();

  /** The addresses not taken yet, now taken. */
  take(addresses: readonly string[]): string[] {
    return addresses.filter((address) => !this.seen.has(address) && this.seen.add(address));
  }

  /** Destinations beyond LOOPBACK_MAX of a kind, which pass through. */
  overflow = 0;

  /** meaning: what the destination stands for ("<ns>/<svc>:<port>", or a pod's address). */
  addHttp(meaning: string, entry: Omit<OutboundHttp, 'loopback'>): string | undefined {
    const loopback = this.loopback('http', meaning);
    if (loopback !== undefined) this.http.push({ loopback, ...entry });
    return loopback;
  }

  addTcp(meaning: string, entry: Omit<OutboundTcp, 'loopback'>): void {
    const loopback = this.loopback('tcp', meaning);
    if (loopback !== undefined) this.tcp.push({ loopback, ...entry });
  }

  /** A new destination's loopback address; undefined, counted, past LOOPBACK_MAX of its kind. */
  private loopback(kind: 'http' | 'tcp', meaning: string): string | undefined {
    const slots = kind === 'http' ? this.httpSlots : this.tcpSlots;
    if (slots.size >= LOOPBACK_MAX) {
      this.overflow += 1;
      return undefined;
    }
    return loopbackAddress(kind, loopbackSlot(meaning, slots));
  }
}

/**
 * The destinations that mean a Service port as a whole: its ClusterIPs, and the addresses of its
 * endpoints (balanced like the ClusterIP: a pod of a ClusterIP Service is one of its replicas).
 * A headless Service has none: each of its pods is a destination of its own (pod-addressed).
 */
function serviceDestinations(
  found: Destinations,
  service: SnapshotService,
  port: SnapshotServicePort,
): { destinations: string[]; endpoints: string[] } {
  if (service.clusterIPs.length === 0) return { destinations: [], endpoints: [] };
  return {
    destinations: found.take(service.clusterIPs.map((ip) => hostPort(ip, port.port))),
    endpoints: found.take(endpointAddresses(service, port.name)),
  };
}

/**
 * The endpoints of a headless Service port that no other destination took: "addr:port" and
 * endpoint. A ClusterIP Service's endpoints are its serviceDestinations.
 */
function ownAddresses(
  found: Destinations,
  service: SnapshotService,
  port: SnapshotServicePort,
): { address: string; endpoint: SnapshotEndpoint }[] {
  if (service.clusterIPs.length > 0) return [];
  return service.endpoints.flatMap((endpoint) => {
    const target = endpoint.ports[port.name];
    if (target === undefined) return [];
    const address = hostPort(endpoint.address, target);
    return found.take([address]).length === 0 ? [] : [{ address, endpoint }];
  });
}

function addHttpPort(
  found: Destinations,
  b: Builder,
  service: SnapshotService,
  port: SnapshotServicePort,
  routes: { readonly httpNames: ReadonlySet<string>; readonly byRootPort: Map<string, string> },
): void {
  const key = `${service.namespace}/${service.name}`;
  const name = upstreamName(key, port.port);
  const http2 = port.kind === 'http2';
  const { destinations, endpoints } = serviceDestinations(found, service, port);
  if (destinations.length + endpoints.length > 0) {
    const split = routes.byRootPort.get(`${key}:${port.port}`);
    const target: HttpTarget =
      split !== undefined
        ? { kind: 'split', split }
        : routes.httpNames.has(name)
          ? { kind: 'upstream', upstream: name }
          : { kind: 'none' };
    const loopback = found.addHttp(`${key}:${port.port}`, {
      destinations,
      endpoints,
      target,
      service: key,
      http2,
    });
    if (loopback !== undefined) found.routable.push({ loopback, service, port });
  }
  for (const { address, endpoint } of ownAddresses(found, service, port)) {
    const upstream = endpointUpstream(b, endpoint, address, port);
    found.endpointUpstreams.push(upstream);
    found.addHttp(address, {
      destinations: [address],
      endpoints: [],
      target: { kind: 'upstream', upstream: upstream.name },
      service: key,
      http2,
    });
  }
}

function addTcpPort(
  found: Destinations,
  b: Builder,
  service: SnapshotService,
  port: SnapshotServicePort,
  tcpByName: ReadonlyMap<string, UpstreamModel>,
): void {
  const key = `${service.namespace}/${service.name}`;
  const name = upstreamName(key, port.port);
  const upstream = tcpByName.get(name);
  const { destinations, endpoints } = serviceDestinations(found, service, port);
  if (upstream !== undefined && destinations.length + endpoints.length > 0)
    found.addTcp(`${key}:${port.port}`, {
      destinations,
      endpoints,
      upstream: name,
      service: key,
      ...(upstream.tlsName === undefined ? {} : { tlsName: upstream.tlsName }),
    });
  // A pod's own address goes straight to it: no upstream needed for one server.
  for (const { address, endpoint } of ownAddresses(found, service, port))
    found.addTcp(address, {
      destinations: [address],
      endpoints: [],
      upstream: address,
      service: key,
      ...endpointTls(b, endpoint),
    });
}

/**
 * Every destination this pod's traffic may go to. A Service's ClusterIPs and endpoints reach its
 * upstream (or its TrafficSplit); each pod of a headless Service is reached by its own address
 * only, which is how a StatefulSet's web-0.web.ns.svc is served. An address two Services share
 * belongs to the first by namespace and name.
 */
function buildOutbound(b: Builder): Outbound {
  const upstreams = serviceUpstreams(b);
  const httpNames = new Set(upstreams.http.map((upstream) => upstream.name));
  const tcpByName = new Map(upstreams.tcp.map((upstream) => [upstream.name, upstream]));
  const { splits, byRootPort } = buildSplits(b, httpNames);
  const found = new Destinations();
  for (const service of byKey(b.snapshot.services))
    for (const port of service.ports.filter((candidate) => candidate.protocol === 'TCP'))
      if (port.kind === 'tcp') addTcpPort(found, b, service, port, tcpByName);
      else addHttpPort(found, b, service, port, { httpNames, byRootPort });
  if (found.overflow > 0) {
    b.warnings.push(`more than ${LOOPBACK_MAX} HTTP or TCP destinations; the rest pass through`);
  }
  const kept = found.http;
  const keptUpstreams = new Set(
    kept.flatMap((http) => (http.target.kind === 'upstream' ? [http.target.upstream] : [])),
  );
  return {
    routable: found.routable,
    outboundHttp: kept,
    outboundTcp: found.tcp,
    httpUpstreams: [
      ...upstreams.http,
      ...found.endpointUpstreams.filter((upstream) => keptUpstreams.has(upstream.name)),
    ],
    tcpUpstreams: upstreams.tcp,
    splits,
  };
}

/** The app's ports: declared container ports and every port a Service targets on this pod. */
function buildInboundPorts(b: Builder): InboundPort[] {
  const kinds = new Map<number, Set<InboundPort['kind']>>();
  const note = (port: number, kind: InboundPort['kind']): void => {
    const known = kinds.get(port) ?? new Set();
    known.add(kind);
    kinds.set(port, known);
  };
  for (const service of byKey(b.snapshot.services)) {
    for (const endpoint of service.endpoints.filter(
      (candidate) => candidate.pod === b.context.pod,
    )) {
      for (const port of service.ports) {
        const target = endpoint.ports[port.name];
        if (target !== undefined && port.protocol === 'TCP') note(target, port.kind);
      }
    }
  }
  for (const port of b.context.containerPorts) if (!kinds.has(port)) note(port, 'tcp');
  return [...kinds.keys()]
    .sort((x, y) => x - y)
    .map((port) => {
      const seen = [...(kinds.get(port) ?? new Set())].sort();
      if (seen.length > 1)
        b.warnings.push(
          `port ${port} is served as ${seen.join(' and ')} by different Services; serving it as TCP`,
        );
      return {
        port,
        kind: seen.length === 1 ? (seen[0] ?? 'tcp') : 'tcp',
        loopback: loopbackAddress('inbound', port),
      };
    });
}

function buildAccessRules(b: Builder): AccessRule[] {
  if (b.snapshot.mesh.accessControlMode === 'allow') return [];
  const namespace = b.context.pod.split('/')[0] ?? '';
  const self = `${namespace}/${b.context.serviceAccount}`;
  const rules: AccessRule[] = [];
  for (const target of byKey(b.snapshot.trafficTargets)) {
    if (target.destination !== self) continue;
    use(b, 'trafficTargets', target);
    const matchIds = target.tcp ? [] : b.matches.internAll(target.httpMatches);
    for (const source of [...target.sources].sort()) {
      rules.push({
        identity: spiffeId(b.snapshot.mesh.trustDomain, source),
        ...(target.port === undefined ? {} : { port: target.port }),
        tcp: target.tcp,
        matchIds,
      });
    }
  }
  return rules;
}

function buildRateLimits(b: Builder): RateLimitModel[] {
  const limits: RateLimitModel[] = [];
  for (const limit of byKey(b.snapshot.rateLimits)) {
    if (!limit.destinationPods.includes(b.context.pod)) continue;
    const matchIds = b.matches.internAll(limit.matches);
    const sourceIps = [...limit.sourceIps].sort();
    const key = JSON.stringify({ sourceIps, matches: matchIds.length > 0 ? limit.matches : [] });
    const rate = `${limit.rate}r/${limit.per}`;
    if (limit.rate < 1) {
      b.warnings.push(
        `rate limit ${limit.namespace}/${limit.name}: rate ${limit.rate} is below 1 request per ${limit.per}`,
      );
      continue;
    }
    use(b, 'rateLimits', limit);
    limits.push({
      zone: rateLimitZoneName(limit.namespace, limit.name, key, rate),
      rate: limit.rate,
      per: limit.per,
      burst: limit.burst,
      delay: limit.delay,
      sourceIps,
      matchIds,
    });
  }
  return limits;
}

/**
 * Decides the sidecar configuration; warnings name what could not apply, policies the policy
 * objects the configuration is made of (sorted), the candidates when nginx refuses it.
 */
export function buildSidecarModel(
  snapshot: MeshSnapshot,
  context: SidecarContext,
): {
  readonly model: SidecarModel;
  readonly warnings: readonly string[];
  readonly policies: readonly SidecarPolicy[];
} {
  const warnings: string[] = [];
  const breakers = new Map<string, SnapshotCircuitBreaker>();
  for (const breaker of byKey(snapshot.circuitBreakers)) {
    if (breakers.has(breaker.service)) {
      warnings.push(
        `circuit breaker ${breaker.namespace}/${breaker.name}: ${breaker.service} already has one; ignored`,
      );
      continue;
    }
    breakers.set(breaker.service, breaker);
  }
  const b: Builder = {
    snapshot,
    context,
    mtlsMode: effectiveMtlsMode(snapshot.mesh.mtlsMode, context.mtlsMode, warnings),
    warnings,
    matches: new MatchTable(),
    breakers,
    used: new Set(),
  };
  const { routable, ...outbound } = buildOutbound(b);
  const tableInput = {
    namespace: context.pod.split('/')[0] ?? '',
    upstreams: new Map(outbound.httpUpstreams.map((upstream) => [upstream.name, upstream])),
    percentages: splitPercentages,
  };
  const routes = buildRouteTable(byKey(snapshot.httpRoutes), routable, {
    ...tableInput,
    use: (route) => use(b, 'httpRoutes', route),
  });
  const grpcRoutes = buildRouteTable(byKey(snapshot.grpcRoutes), routable, {
    ...tableInput,
    use: (route) => use(b, 'grpcRoutes', route),
    kind: 'http2',
  });
  const inboundPorts = buildInboundPorts(b);
  const accessRules = buildAccessRules(b);
  const rateLimits = buildRateLimits(b);
  return {
    model: {
      mtlsMode: b.mtlsMode,
      accessControl: snapshot.mesh.accessControlMode,
      clientMaxBodySize: context.clientMaxBodySize ?? snapshot.mesh.clientMaxBodySize,
      errorLogLevel: snapshot.mesh.errorLogLevel,
      logFormat: snapshot.mesh.logFormat,
      ...(snapshot.mesh.telemetry === undefined
        ? {}
        : { tracing: { ratio: samplerRatioText(snapshot.mesh.telemetry.samplerRatio) } }),
      egress:
        b.mtlsMode === 'strict' && context.defaultEgressAllowed !== true ? 'refused' : 'direct',
      ...outbound,
      ...(routes === undefined ? {} : { routes }),
      ...(grpcRoutes === undefined ? {} : { grpcRoutes }),
      matches: b.matches.all(),
      inboundPorts,
      inboundHttpUpstreams: inboundPorts
        .filter((port) => port.kind !== 'tcp')
        .map((port) => ({
          name: inboundUpstreamName(port.port),
          method: [],
          servers: [{ address: `127.0.0.1:${port.port}`, backup: false }],
          keepalive: HTTP_UPSTREAM_KEEPALIVE,
          keepaliveTimeout: APP_KEEPALIVE_TIMEOUT,
          ...(port.kind === 'http2' ? { http2: true } : {}),
        })),
      accessRules,
      rateLimits,
    },
    warnings,
    policies: [...b.used].sort().map((entry) => {
      const [collection, key = ''] = entry.split(' ');
      return { collection: collection as PolicyCollection, key };
    }),
  };
}
