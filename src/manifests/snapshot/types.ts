// The mesh snapshot: everything a sidecar needs to route, secure and police its pod's traffic,
// built by the controller from Kubernetes state and sent to every agent over NATS. Pure data:
// plain JSON, sorted keys, no Kubernetes object shapes, so that two builds of the same cluster
// state are byte-identical and a change can be sent as the entries that differ.
//
// Collections are records keyed by a stable string ("<namespace>/<name>"), never arrays, so that
// a delta is "these keys changed, these went away".
import type {
  AccessControlMode,
  MeshMtlsMode,
  NginxErrorLogLevel,
  NginxLbMethod,
  NginxLogFormat,
} from '../mesh-config/deploy-flags';
import type { OtlpProtocol } from '../mesh-config/types';

/** The mesh-wide settings, from MeshConfig nginx-mesh-config (runtime) and ConfigMap meshconfig. */
export interface SnapshotMesh {
  readonly mtlsMode: MeshMtlsMode;
  readonly accessControlMode: AccessControlMode;
  /** Already an open-source method: least_time* became least_conn with a warning. */
  readonly lbMethod: NginxLbMethod;
  readonly clientMaxBodySize: string;
  readonly errorLogLevel: NginxErrorLogLevel;
  readonly logFormat: NginxLogFormat;
  /** Where sidecars export spans and which share of new traces they sample; absent: no tracing. */
  readonly telemetry?: SnapshotTelemetry;
  readonly trustDomain: string;
  /** remove asked every sidecar to pass traffic through untouched. */
  readonly transparent: boolean;
}

/** MeshConfig's telemetry: an OTLP exporter and the sampler ratio for new traces. */
export interface SnapshotTelemetry {
  readonly host: string;
  readonly port: number;
  readonly protocol: OtlpProtocol;
  /** 0 to 1. */
  readonly samplerRatio: number;
}

/** A port of a Service; targetPort is resolved per endpoint (named ports differ per pod). */
export interface SnapshotServicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /**
   * What the port carries (services.ts decides, from appProtocol, else the name): 'http' for
   * HTTP/1.x, 'http2' for HTTP/2 in cleartext from the app (gRPC, h2c), 'tcp' for anything else.
   */
  readonly kind: 'http' | 'http2' | 'tcp';
}

/** One ready address behind a Service, from its EndpointSlices. */
export interface SnapshotEndpoint {
  readonly address: string;
  /** Service port name → the port on this endpoint. */
  readonly ports: Readonly<Record<string, number>>;
  /** "<namespace>/<pod name>" when the address belongs to a pod. */
  readonly pod?: string;
  /** "<namespace>/<service account>" when that pod is injected (its sidecar speaks mTLS). */
  readonly identity?: string;
  /**
   * "<kind>/<name>" of the workload owning that pod when it is injected (kind lower case, as
   * SnapshotPod.ownerKind): what a sidecar's metrics name their peers by.
   */
  readonly owner?: string;
}

export interface SnapshotService {
  readonly namespace: string;
  readonly name: string;
  /** ClusterIPs, IPv4 and IPv6; empty for a headless Service. */
  readonly clusterIPs: readonly string[];
  readonly ports: readonly SnapshotServicePort[];
  /** From annotation config.nsm.nginx.com/lb-method, already an open-source method. */
  readonly lbMethod?: NginxLbMethod;
  /** Sorted by address. */
  readonly endpoints: readonly SnapshotEndpoint[];
}

/** An HTTP match from an HTTPRouteGroup; all present fields must match. */
export interface SnapshotHttpMatch {
  readonly name: string;
  /** Upper-case methods; empty or ['*'] means any. */
  readonly methods: readonly string[];
  readonly pathRegex?: string;
  /** Header name (lower case) → regular expression of its value. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * An injected pod, as the builder resolves policies that name workloads. Not sent to agents in
 * full: what their nginx configuration needs of pods is already on the endpoints (identity) and
 * in the resolved policies. Agents receive only SnapshotPeer, the little their metrics need to
 * name a peer; a pod's start or stop changes that collection and no sidecar's nginx
 * configuration, so the applier renders the same text and does not reload.
 */
export interface SnapshotPod {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly ips: readonly string[];
  /** Owner kind (lower case: deployment, statefulset, daemonset, replicaset, job, pod) and name. */
  readonly ownerKind: string;
  readonly ownerName: string;
}

/**
 * A meshed pod as its address names it, for the metrics' peer labels: every injected pod with an
 * address that has not finished, whether or not it backs a Service (a client, a Job, a CLI pod).
 * Keyed by pod IP in MeshSnapshot.peers. The renderer does not read it.
 */
export interface SnapshotPeer {
  /** "<namespace>/<pod name>". */
  readonly pod: string;
  /** "<kind>/<name>" of the owning workload, as SnapshotEndpoint.owner. */
  readonly owner?: string;
}

/** TrafficTarget access.smi-spec.io/v1alpha2, resolved. */
export interface SnapshotTrafficTarget {
  readonly namespace: string;
  readonly name: string;
  /** "<namespace>/<service account>" allowed to receive. */
  readonly destination: string;
  /** Only this port of the destination, when set. */
  readonly port?: number;
  /** "<namespace>/<service account>" allowed to send. */
  readonly sources: readonly string[];
  /** HTTP rules (HTTPRouteGroup matches); empty together with tcp=false means no rule admits. */
  readonly httpMatches: readonly SnapshotHttpMatch[];
  /** A TCPRoute rule: every connection to the destination is admitted (HTTP included). */
  readonly tcp: boolean;
}

/** TrafficSplit split.smi-spec.io/v1alpha3, resolved. */
export interface SnapshotTrafficSplit {
  readonly namespace: string;
  readonly name: string;
  /** "<namespace>/<name>" of the root (apex) Service. */
  readonly service: string;
  /** Backends with weight > 0, "<namespace>/<name>" → weight. */
  readonly backends: readonly { readonly service: string; readonly weight: number }[];
  /** Only requests matching one of these are split; empty: every request. */
  readonly matches: readonly SnapshotHttpMatch[];
}

/** RateLimit specs.smi.nginx.com v1alpha1/v1alpha2, resolved. */
export interface SnapshotRateLimit {
  readonly namespace: string;
  readonly name: string;
  /** "<namespace>/<pod name>" of every injected pod the destination names. */
  readonly destinationPods: readonly string[];
  /** Source pod IPs; empty means every caller. */
  readonly sourceIps: readonly string[];
  /** Requests per unit. */
  readonly rate: number;
  readonly per: 's' | 'm';
  readonly burst: number;
  /** 'nodelay', or the number of requests forwarded without delay. */
  readonly delay: number | 'nodelay';
  /** Only requests matching one of these are limited; empty: every request. */
  readonly matches: readonly SnapshotHttpMatch[];
}

/** CircuitBreaker specs.smi.nginx.com/v1alpha1, resolved. */
export interface SnapshotCircuitBreaker {
  readonly namespace: string;
  readonly name: string;
  /** "<namespace>/<name>" of the Service it guards. */
  readonly service: string;
  readonly errors: number;
  readonly timeoutSeconds: number;
  readonly fallback?: { readonly service: string; readonly port: number };
}

/** Gateway API HTTPRoute path match; a match without a path has PathPrefix "/". */
export interface SnapshotRoutePathMatch {
  readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression';
  /** Exact and PathPrefix: an absolute path; a PathPrefix's trailing "/" is dropped (but "/" stays). */
  readonly value: string;
}

/** A header or query parameter match: the value compared whole, or a regular expression (PCRE). */
export interface SnapshotRouteValueMatch {
  /** Header names lower case; query parameter names as written (they are case-sensitive). */
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/** One HTTPRouteMatch: every present condition must hold. */
export interface SnapshotRouteMatch {
  readonly path: SnapshotRoutePathMatch;
  /** Sorted by name, one per name (the route's first). */
  readonly headers: readonly SnapshotRouteValueMatch[];
  /** Sorted by name, one per name (the route's first). */
  readonly queryParams: readonly SnapshotRouteValueMatch[];
  /** Upper case; absent: any method. */
  readonly method?: string;
}

/** A header name and value, as a filter writes it. */
export interface SnapshotHeader {
  /** As written (nginx and HTTP compare names without case). */
  readonly name: string;
  readonly value: string;
}

/** RequestHeaderModifier / ResponseHeaderModifier. */
export interface SnapshotHeaderModifier {
  /** Replaces the header (or adds it). */
  readonly set: readonly SnapshotHeader[];
  /** Appends a value to the header ("old,new"), or adds it. */
  readonly add: readonly SnapshotHeader[];
  /** Names of headers to drop. */
  readonly remove: readonly string[];
}

/** A path modifier of a redirect or a rewrite. */
export interface SnapshotPathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly value: string;
}

/** RequestRedirect: the answer is a redirect, no backend is called. */
export interface SnapshotRouteRedirect {
  readonly scheme?: 'http' | 'https';
  readonly hostname?: string;
  readonly port?: number;
  readonly path?: SnapshotPathModifier;
  /** 301, 302, 303, 307 or 308. */
  readonly statusCode: number;
}

/** URLRewrite: what the backend is sent instead. */
export interface SnapshotRouteRewrite {
  readonly hostname?: string;
  readonly path?: SnapshotPathModifier;
}

/** A backendRef of a rule: a Service port of the mesh. */
export interface SnapshotRouteBackend {
  /** "<namespace>/<name>" of the Service. */
  readonly service: string;
  /** The Service's port number. */
  readonly port: number;
  /** > 0 (backends of weight 0 are left out). */
  readonly weight: number;
  /**
   * The reference could not be used (no such Service or port, a kind other than Service, another
   * namespace without a ReferenceGrant): its share of requests is answered 500, as the Gateway
   * API requires, and the route's ResolvedRefs condition names it.
   */
  readonly invalid?: true;
}

/** One HTTPRouteRule. */
export interface SnapshotRouteRule {
  /** The rule's name, when it has one. */
  readonly name?: string;
  /** At least one (a rule without matches has PathPrefix "/"). */
  readonly matches: readonly SnapshotRouteMatch[];
  readonly requestHeaders?: SnapshotHeaderModifier;
  readonly responseHeaders?: SnapshotHeaderModifier;
  readonly redirect?: SnapshotRouteRedirect;
  readonly rewrite?: SnapshotRouteRewrite;
  /** Empty: the request is answered 500 (unless it is redirected). */
  readonly backends: readonly SnapshotRouteBackend[];
  /** RequestMirror filters whose backend resolved: a copy of each request, answer ignored. */
  readonly mirrors?: readonly SnapshotRouteMirror[];
  /** rules[].timeouts, in milliseconds; 0 means none (the Gateway API's "0s"). */
  readonly timeouts?: SnapshotRouteTimeouts;
  /** rules[].retry (the experimental channel's field). */
  readonly retry?: SnapshotRouteRetry;
}

/** HTTPRouteRetry: a failed try is sent again, up to `attempts` more times. */
export interface SnapshotRouteRetry {
  /** Retries after the first try (1 when the route leaves it out). */
  readonly attempts: number;
  /** Status codes that make a try fail, sorted (500, 502, 503, 504 when left out). */
  readonly codes: readonly number[];
  /** The least wait before each retry, in milliseconds (0 when left out). */
  readonly backoffMs: number;
}

/** A RequestMirror filter: a Service port and the share of requests copied to it. */
export interface SnapshotRouteMirror {
  /** "<namespace>/<name>" of the Service. */
  readonly service: string;
  readonly port: number;
  /** Share of requests mirrored, in percent, 0 to 100 (up to two decimals). */
  readonly percent: number;
}

/** HTTPRouteTimeouts in milliseconds; absent: the mesh's own defaults. */
export interface SnapshotRouteTimeouts {
  /** The whole request, every try included. */
  readonly requestMs?: number;
  /** One try to a backend. */
  readonly backendRequestMs?: number;
}

/** A Service an HTTPRoute attaches to (a parentRef of kind Service). */
export interface SnapshotRouteParent {
  /** "<namespace>/<name>" of the Service. */
  readonly service: string;
  /** Only this Service port; absent: every HTTP port of the Service. */
  readonly port?: number;
}

/**
 * A Gateway API HTTPRoute (gateway.networking.k8s.io/v1) attached to Services (GAMMA), accepted
 * by this mesh. A route in its Service's namespace (a producer route) applies to every client; a
 * route in another namespace (a consumer route) applies to that namespace's clients only, and in
 * place of the producer's routes for them.
 */
export interface SnapshotHttpRoute {
  readonly namespace: string;
  readonly name: string;
  /** metadata.creationTimestamp (RFC 3339): older routes win ties between equal matches. */
  readonly created: string;
  /** The parents this mesh accepted, sorted. */
  readonly parents: readonly SnapshotRouteParent[];
  readonly rules: readonly SnapshotRouteRule[];
}

/** A listener of a Gateway that the gateway serves (it is Programmed). */
export interface SnapshotGatewayListener {
  /** The listener's name, unique in its Gateway. */
  readonly name: string;
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  /**
   * The host names it takes; absent: any. A wildcard "*.example.com" takes one or more labels in
   * front of "example.com", never "example.com" itself.
   */
  readonly hostname?: string;
  /**
   * HTTPS: the listener's certificate resolved. The gateway's pod holds it as
   * "<listener name>.crt" and "<listener name>.key" in its certificate directory.
   */
  readonly tls?: true;
}

/**
 * A Gateway (gateway.networking.k8s.io/v1) of this mesh's GatewayClass: the gateway pods serving
 * it render its listeners and the routes attached to them.
 */
export interface SnapshotGateway {
  readonly namespace: string;
  readonly name: string;
  /** The listeners served, in the Gateway's order. */
  readonly listeners: readonly SnapshotGatewayListener[];
}

/** Where a route is attached to a Gateway: one listener, and the host names it serves there. */
export interface SnapshotGatewayAttachment {
  /** "<namespace>/<name>" of the Gateway. */
  readonly gateway: string;
  /** The listener's name. */
  readonly listener: string;
  /**
   * The route's host names on this listener, sorted: the intersection of the listener's hostname
   * and the route's hostnames. Empty: every host the listener takes.
   */
  readonly hostnames: readonly string[];
}

/** An HTTPRoute attached to at least one listener of a Gateway of this mesh. */
export interface SnapshotGatewayRoute {
  readonly namespace: string;
  readonly name: string;
  /** metadata.creationTimestamp (RFC 3339): older routes win ties between equal matches. */
  readonly created: string;
  /** Sorted by gateway, then listener. */
  readonly attachments: readonly SnapshotGatewayAttachment[];
  readonly rules: readonly SnapshotRouteRule[];
}

/** A policy that could not be used; the rest of the snapshot stands. */
export interface SnapshotProblem {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** CamelCase reason for the Event and the status condition, e.g. UnknownService. */
  readonly reason: string;
  /** One line naming the field and the value. */
  readonly message: string;
}

/** One condition of a route's parent status, as the Gateway API defines it. */
export interface RouteCondition {
  readonly status: 'True' | 'False';
  /** The Gateway API's reason, e.g. Accepted, NoMatchingParent, UnsupportedValue, BackendNotFound. */
  readonly reason: string;
  /** One line naming the field and the value. */
  readonly message: string;
}

/** What this mesh says of one parentRef of a route (status.parents[] entry, our controllerName). */
export interface RouteParentStatus {
  /**
   * The parentRef as the route wrote it, with group and kind made explicit: "" and "Service" for
   * a Service, gateway.networking.k8s.io and "Gateway" for a Gateway.
   */
  readonly parentRef: Readonly<Record<string, unknown>>;
  readonly accepted: RouteCondition;
  readonly resolvedRefs: RouteCondition;
}

/**
 * The status this mesh owns on one route: one entry per parentRef of kind Service or naming a
 * Gateway of this mesh's GatewayClass, in the route's order.
 */
export interface RouteStatus {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** metadata.generation, the conditions' observedGeneration. */
  readonly generation: number;
  readonly parents: readonly RouteParentStatus[];
}

/** One condition of a Gateway, listener or GatewayClass status (metav1.Condition's fields). */
export interface GatewayCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  /** One line naming the field and the value. */
  readonly message: string;
}

/** status.listeners[] of a Gateway. */
export interface GatewayListenerStatus {
  readonly name: string;
  /** The route kinds the listener takes, { group, kind }. */
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly attachedRoutes: number;
  /** Accepted, Conflicted, ResolvedRefs and Programmed, in that order. */
  readonly conditions: readonly GatewayCondition[];
}

/**
 * What this mesh decides of a Gateway of its GatewayClass. The controller adds the Gateway's
 * Programmed condition and status.addresses, which depend on its pods and Service.
 */
export interface GatewayStatus {
  readonly namespace: string;
  readonly name: string;
  /** metadata.generation, the conditions' observedGeneration. */
  readonly generation: number;
  /** Accepted. */
  readonly conditions: readonly GatewayCondition[];
  readonly listeners: readonly GatewayListenerStatus[];
}

/** What this mesh says of a GatewayClass naming its controllerName. */
export interface GatewayClassStatus {
  readonly name: string;
  readonly generation: number;
  /** Accepted. */
  readonly conditions: readonly GatewayCondition[];
}

export interface MeshSnapshot {
  readonly mesh: SnapshotMesh;
  readonly services: Readonly<Record<string, SnapshotService>>;
  readonly trafficTargets: Readonly<Record<string, SnapshotTrafficTarget>>;
  readonly trafficSplits: Readonly<Record<string, SnapshotTrafficSplit>>;
  readonly rateLimits: Readonly<Record<string, SnapshotRateLimit>>;
  readonly circuitBreakers: Readonly<Record<string, SnapshotCircuitBreaker>>;
  /** Gateway API HTTPRoutes with a Service parent, "<namespace>/<name>" → route. */
  readonly httpRoutes: Readonly<Record<string, SnapshotHttpRoute>>;
  /**
   * Gateway API GRPCRoutes with a Service parent, in the same shape: a match's path is the call's
   * "/<service>/<method>" (gamma-rules.ts).
   */
  readonly grpcRoutes: Readonly<Record<string, SnapshotHttpRoute>>;
  /** Gateways of this mesh's GatewayClass, "<namespace>/<name>" → gateway. */
  readonly gateways: Readonly<Record<string, SnapshotGateway>>;
  /** HTTPRoutes attached to those Gateways, "<namespace>/<name>" → route. */
  readonly gatewayRoutes: Readonly<Record<string, SnapshotGatewayRoute>>;
  /** Pod IP → the injected pod holding it; read by the agents' metrics, not by the renderer. */
  readonly peers: Readonly<Record<string, SnapshotPeer>>;
}

/** The keyed collections of a snapshot, the units of a delta. */
export const SNAPSHOT_COLLECTIONS = [
  'services',
  'trafficTargets',
  'trafficSplits',
  'rateLimits',
  'circuitBreakers',
  'httpRoutes',
  'grpcRoutes',
  'gateways',
  'gatewayRoutes',
  'peers',
] as const;
export type SnapshotCollection = (typeof SNAPSHOT_COLLECTIONS)[number];

/** Collections no renderer reads: a change to them alone leaves every nginx configuration as is. */
export const UNRENDERED_COLLECTIONS: ReadonlySet<SnapshotCollection> = new Set(['peers']);
