// Services of the snapshot: addresses, ports and load-balancing method from the Service, ready
// endpoints from its EndpointSlices. Decisions:
// - The protocol of a TCP port is chosen as Kubernetes says: by its appProtocol when it has one,
//   else by the prefix of its name (<protocol> or <protocol>-<suffix>, as Istio and Linkerd
//   document). 'http2' (HTTP/2 in cleartext with prior knowledge from the app: gRPC, h2c) for
//   appProtocol grpc, http2, h2c, kubernetes.io/h2c and names grpc, http2, h2c; 'http' (HTTP/1.x,
//   WebSocket upgrades included) for appProtocol http, kubernetes.io/http, kubernetes.io/ws,
//   grpc-web and names http, ws, grpc-web; anything else, an unknown appProtocol included, is
//   'tcp' (bytes passed as they are). UDP and SCTP ports are 'tcp'.
// - Ports are sorted by number, then protocol; a port without a valid number is left out.
// - An endpoint is used unless conditions.ready is false; FQDN slices are ignored. When two
//   slices hold one address, the slice first by name wins, so the result is order-independent.
// - An invalid lb-method annotation is ignored with a warning; the mesh-wide method applies.
// Pure.
import { ENDPOINT_SLICE_SERVICE_LABEL, LB_METHOD_ANNOTATION } from '../constants';
import { NGINX_LB_METHODS } from '../mesh-config/deploy-flags';
import type { NginxLbMethod } from '../mesh-config/deploy-flags';
import { lbMethodFallbackWarning, openSourceLbMethod } from '../mesh-config/lb-method';
import {
  annotationsOf,
  arrayOf,
  compareText,
  keyOf,
  labelsOf,
  objectOf,
  portOf,
  refOf,
  sortedRecord,
  sortedUnique,
  stringOf,
} from './kube-objects';
import type { Json, KubeObject, ObjectRef } from './kube-objects';
import type { InjectedPod, PodIndex } from './pods';
import type { SnapshotEndpoint, SnapshotService, SnapshotServicePort } from './types';

const APP_PROTOCOL_KINDS: ReadonlyMap<string, SnapshotServicePort['kind']> = new Map([
  ['grpc', 'http2'],
  ['http2', 'http2'],
  ['h2c', 'http2'],
  ['kubernetes.io/h2c', 'http2'],
  ['http', 'http'],
  ['kubernetes.io/http', 'http'],
  ['kubernetes.io/ws', 'http'],
  ['grpc-web', 'http'],
]);
/** Port name prefixes, longest first, so that grpc-web wins over grpc. */
const PORT_NAME_KINDS: readonly (readonly [string, SnapshotServicePort['kind']])[] = [
  ['grpc-web', 'http'],
  ['http2', 'http2'],
  ['grpc', 'http2'],
  ['h2c', 'http2'],
  ['http', 'http'],
  ['ws', 'http'],
];
const IP_ADDRESS_TYPES = new Set(['IPv4', 'IPv6']);

/** The Services, and the pods their EndpointSlices name. */
export interface ServiceIndex {
  /** By "<namespace>/<name>", in no particular order. */
  readonly byKey: ReadonlyMap<string, SnapshotService>;
  /** Pod keys ("<namespace>/<name>") of every endpoint of a Service, ready or not, sorted. */
  readonly podKeysOf: (serviceKey: string) => readonly string[];
}

/**
 * Builds every Service outside the ignored namespaces; warnings name the Service. Of two Services
 * with one key (which the API server never returns) the one that prints first as JSON wins.
 */
export function buildServiceIndex(
  services: readonly KubeObject[],
  endpointSlices: readonly KubeObject[],
  pods: PodIndex,
  ignored: ReadonlySet<string>,
  warnings: string[],
): ServiceIndex {
  const slices = slicesByService(endpointSlices, ignored);
  const byKey = new Map<string, SnapshotService>();
  for (const object of services) {
    const ref = refOf(object);
    if (ref === undefined || ignored.has(ref.namespace)) continue;
    const key = keyOf(ref.namespace, ref.name);
    const endpoints = endpointsOf(slices.get(key) ?? [], ref.namespace, pods);
    const service = toService(object, ref, endpoints, warnings);
    const existing = byKey.get(key);
    if (existing === undefined || JSON.stringify(service) < JSON.stringify(existing)) {
      byKey.set(key, service);
    }
  }
  const podKeysOf = (serviceKey: string): string[] => {
    const namespace = serviceKey.slice(0, serviceKey.indexOf('/'));
    const keys = (slices.get(serviceKey) ?? []).flatMap((slice) =>
      arrayOf(slice.endpoints).map((endpoint) => targetPod(objectOf(endpoint), namespace)),
    );
    return sortedUnique(keys.filter((key): key is string => key !== undefined));
  };
  return { byKey, podKeysOf };
}

function toService(
  object: KubeObject,
  { namespace, name }: ObjectRef,
  endpoints: readonly SnapshotEndpoint[],
  warnings: string[],
): SnapshotService {
  const spec = objectOf(object.spec);
  const lbMethod = serviceLbMethod(object, `Service ${keyOf(namespace, name)}`, warnings);
  return {
    namespace,
    name,
    clusterIPs: clusterIPs(spec),
    ports: servicePorts(spec),
    ...(lbMethod === undefined ? {} : { lbMethod }),
    endpoints,
  };
}

/** spec.clusterIPs, else spec.clusterIP; none for a headless Service ("None"). */
function clusterIPs(spec: Json): string[] {
  const listed = arrayOf(spec.clusterIPs)
    .map(stringOf)
    .filter((ip): ip is string => ip !== undefined);
  const ips = listed.length > 0 ? listed : [stringOf(spec.clusterIP)];
  if (ips.includes('None')) return [];
  return ips.filter((ip): ip is string => ip !== undefined);
}

function servicePorts(spec: Json): SnapshotServicePort[] {
  const ports: SnapshotServicePort[] = [];
  for (const entry of arrayOf(spec.ports)) {
    const port = objectOf(entry);
    const number = portOf(port.port);
    if (number === undefined) continue;
    const name = stringOf(port.name) ?? '';
    const protocol = port.protocol === 'UDP' || port.protocol === 'SCTP' ? port.protocol : 'TCP';
    const kind = protocol === 'TCP' ? portKind(name, stringOf(port.appProtocol)) : 'tcp';
    ports.push({ name, port: number, protocol, kind });
  }
  return ports.sort((a, b) => a.port - b.port || compareText(a.protocol, b.protocol));
}

/** What a TCP port carries: its appProtocol decides when set, else its name's prefix. */
export function portKind(
  name: string,
  appProtocol: string | undefined,
): SnapshotServicePort['kind'] {
  if (appProtocol !== undefined && appProtocol !== '')
    return APP_PROTOCOL_KINDS.get(appProtocol.toLowerCase()) ?? 'tcp';
  const lower = name.toLowerCase();
  for (const [prefix, kind] of PORT_NAME_KINDS)
    if (lower === prefix || lower.startsWith(`${prefix}-`)) return kind;
  return 'tcp';
}

/** The open-source method the Service's annotation asks for, or undefined. */
function serviceLbMethod(
  object: KubeObject,
  where: string,
  warnings: string[],
): NginxLbMethod | undefined {
  const value = annotationsOf(object)[LB_METHOD_ANNOTATION];
  if (value === undefined) return undefined;
  const method = NGINX_LB_METHODS.find((candidate) => candidate === value);
  if (method === undefined) {
    warnings.push(
      `${where}: invalid annotation ${LB_METHOD_ANNOTATION} ${JSON.stringify(value)}: expected one of ${NGINX_LB_METHODS.join(', ')}; using the mesh-wide method`,
    );
    return undefined;
  }
  const fallback = lbMethodFallbackWarning(method, `${where} annotation ${LB_METHOD_ANNOTATION}`);
  if (fallback !== undefined) warnings.push(fallback);
  return openSourceLbMethod(method);
}

/** EndpointSlices by the key of their Service, each list sorted by slice name, then uid. */
function slicesByService(
  endpointSlices: readonly KubeObject[],
  ignored: ReadonlySet<string>,
): Map<string, KubeObject[]> {
  const byService = new Map<string, KubeObject[]>();
  for (const slice of endpointSlices) {
    const namespace = stringOf(objectOf(slice.metadata).namespace);
    const service = stringOf(labelsOf(slice)[ENDPOINT_SLICE_SERVICE_LABEL]);
    if (namespace === undefined || service === undefined || ignored.has(namespace)) continue;
    const serviceKey = keyOf(namespace, service);
    const list = byService.get(serviceKey);
    if (list === undefined) byService.set(serviceKey, [slice]);
    else list.push(slice);
  }
  for (const list of byService.values()) {
    if (list.length > 1) list.sort((a, b) => compareText(sliceOrder(a), sliceOrder(b)));
  }
  return byService;
}

function sliceOrder(slice: KubeObject): string {
  const metadata = objectOf(slice.metadata);
  return `${stringOf(metadata.name) ?? ''}/${stringOf(metadata.uid) ?? ''}`;
}

/**
 * Ready endpoints, sorted by address; of one address named twice the first (by slice order) is
 * kept. A stable sort then a scan is cheaper than a map for the few endpoints a Service has.
 */
function endpointsOf(
  slices: readonly KubeObject[],
  namespace: string,
  pods: PodIndex,
): SnapshotEndpoint[] {
  const all: SnapshotEndpoint[] = [];
  for (const slice of slices) {
    const addressType = stringOf(slice.addressType);
    if (addressType !== undefined && !IP_ADDRESS_TYPES.has(addressType)) continue;
    const ports = slicePorts(slice);
    for (const entry of arrayOf(slice.endpoints)) {
      const endpoint = objectOf(entry);
      if (objectOf(endpoint.conditions).ready === false) continue;
      const target = objectOf(endpoint.targetRef);
      const podName = target.kind === 'Pod' ? stringOf(target.name) : undefined;
      const podNamespace = stringOf(target.namespace) ?? namespace;
      const injected = podName === undefined ? undefined : pods.find(podNamespace, podName);
      const pod =
        injected?.key ?? (podName === undefined ? undefined : keyOf(podNamespace, podName));
      for (const address of arrayOf(endpoint.addresses)) {
        const text = stringOf(address);
        if (text !== undefined) all.push(toEndpoint(text, ports, pod, injected));
      }
    }
  }
  all.sort((a, b) => compareText(a.address, b.address));
  return all.filter(
    (endpoint, index) => index === 0 || all[index - 1]?.address !== endpoint.address,
  );
}

function toEndpoint(
  address: string,
  ports: Readonly<Record<string, number>>,
  pod: string | undefined,
  injected: InjectedPod | undefined,
): SnapshotEndpoint {
  if (pod === undefined) return { address, ports };
  return injected === undefined
    ? { address, ports, pod }
    : { address, ports, pod, identity: injected.identity, owner: injected.owner };
}

/** Slice port name → number; ports without a number ("all ports") are left out. */
function slicePorts(slice: KubeObject): Record<string, number> {
  const entries: [string, number][] = [];
  for (const entry of arrayOf(slice.ports)) {
    const port = objectOf(entry);
    const number = portOf(port.port);
    if (number !== undefined) entries.push([stringOf(port.name) ?? '', number]);
  }
  if (entries.length === 1) {
    const [name, number] = entries[0] as [string, number];
    return { [name]: number };
  }
  return sortedRecord(entries);
}

function targetPod(endpoint: Json, namespace: string): string | undefined {
  const target = objectOf(endpoint.targetRef);
  const name = stringOf(target.name);
  if (target.kind !== 'Pod' || name === undefined) return undefined;
  return keyOf(stringOf(target.namespace) ?? namespace, name);
}
