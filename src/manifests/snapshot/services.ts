// Services of the snapshot: addresses, ports and load-balancing method from the Service, ready
// endpoints from its EndpointSlices. Decisions:
// - A port is 'http' by appProtocol (http, http2, h2c, kubernetes.io/h2c) or by name (http,
//   http2, grpc, http-*, grpc-*), only when its protocol is TCP; UDP and SCTP ports are 'tcp'.
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
  indexByKey,
  keyOf,
  labelsOf,
  objectOf,
  portOf,
  refOf,
  sortedRecord,
  stringOf,
} from './kube-objects';
import type { Json, KubeObject } from './kube-objects';
import type { PodIndex } from './pods';
import type { SnapshotEndpoint, SnapshotService, SnapshotServicePort } from './types';

const HTTP_APP_PROTOCOLS = new Set(['http', 'http2', 'h2c', 'kubernetes.io/h2c']);
const HTTP_PORT_NAMES = new Set(['http', 'http2', 'grpc']);
const HTTP_PORT_NAME_PREFIXES = ['http-', 'grpc-'];
const IP_ADDRESS_TYPES = new Set(['IPv4', 'IPv6']);

/** The Services and, per Service, every pod its EndpointSlices name (ready or not). */
export interface ServiceIndex {
  /** By "<namespace>/<name>", in key order. */
  readonly byKey: ReadonlyMap<string, SnapshotService>;
  /** Service key → pod keys ("<namespace>/<name>") of its endpoints, sorted. */
  readonly podKeys: ReadonlyMap<string, readonly string[]>;
}

/** Builds every Service outside the ignored namespaces; warnings name the Service. */
export function buildServiceIndex(
  services: readonly KubeObject[],
  endpointSlices: readonly KubeObject[],
  pods: PodIndex,
  ignored: ReadonlySet<string>,
  warnings: string[],
): ServiceIndex {
  const slices = slicesByService(endpointSlices, ignored);
  const entries: [string, SnapshotService][] = [];
  const podKeys = new Map<string, readonly string[]>();
  for (const [key, object] of indexByKey(services)) {
    const ref = refOf(object);
    if (ref === undefined || ignored.has(ref.namespace)) continue;
    const ownSlices = slices.get(key) ?? [];
    const built = endpointsOf(ownSlices, ref.namespace, pods);
    entries.push([key, toService(object, ref.namespace, ref.name, built.endpoints, warnings)]);
    podKeys.set(key, built.podKeys);
  }
  entries.sort((a, b) => compareText(a[0], b[0]));
  return { byKey: new Map(entries), podKeys };
}

function toService(
  object: KubeObject,
  namespace: string,
  name: string,
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
    const http = protocol === 'TCP' && carriesHttp(name, stringOf(port.appProtocol));
    ports.push({ name, port: number, protocol, kind: http ? 'http' : 'tcp' });
  }
  return ports.sort((a, b) => a.port - b.port || compareText(a.protocol, b.protocol));
}

function carriesHttp(name: string, appProtocol: string | undefined): boolean {
  if (appProtocol !== undefined && HTTP_APP_PROTOCOLS.has(appProtocol.toLowerCase())) return true;
  return (
    HTTP_PORT_NAMES.has(name) || HTTP_PORT_NAME_PREFIXES.some((prefix) => name.startsWith(prefix))
  );
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

/** EndpointSlices by the key of their Service, each list sorted by slice name. */
function slicesByService(
  endpointSlices: readonly KubeObject[],
  ignored: ReadonlySet<string>,
): Map<string, KubeObject[]> {
  const byService = new Map<string, KubeObject[]>();
  for (const [key, slice] of indexByKey(endpointSlices)) {
    const namespace = key.slice(0, key.indexOf('/'));
    const service = stringOf(labelsOf(slice)[ENDPOINT_SLICE_SERVICE_LABEL]);
    if (service === undefined || ignored.has(namespace)) continue;
    const serviceKey = keyOf(namespace, service);
    const list = byService.get(serviceKey);
    if (list === undefined) byService.set(serviceKey, [slice]);
    else list.push(slice);
  }
  for (const list of byService.values()) {
    if (list.length > 1) list.sort((a, b) => compareText(sliceName(a), sliceName(b)));
  }
  return byService;
}

function sliceName(slice: KubeObject): string {
  return stringOf(objectOf(slice.metadata).name) ?? '';
}

/** Ready endpoints, deduplicated and sorted by address, and every pod the slices name. */
function endpointsOf(
  slices: readonly KubeObject[],
  namespace: string,
  pods: PodIndex,
): { endpoints: SnapshotEndpoint[]; podKeys: string[] } {
  const byAddress = new Map<string, SnapshotEndpoint>();
  const podKeys = new Set<string>();
  for (const slice of slices) {
    const addressType = stringOf(slice.addressType);
    if (addressType !== undefined && !IP_ADDRESS_TYPES.has(addressType)) continue;
    const ports = slicePorts(slice);
    for (const entry of arrayOf(slice.endpoints)) {
      const endpoint = objectOf(entry);
      const pod = targetPod(endpoint, namespace);
      if (pod !== undefined) podKeys.add(pod);
      if (objectOf(endpoint.conditions).ready === false) continue;
      const identity = podIdentity(pod, pods);
      for (const address of arrayOf(endpoint.addresses)) {
        const text = stringOf(address);
        if (text === undefined || byAddress.has(text)) continue;
        byAddress.set(text, {
          address: text,
          ports,
          ...(pod === undefined ? {} : { pod }),
          ...(identity === undefined ? {} : { identity }),
        });
      }
    }
  }
  const endpoints = [...byAddress.values()].sort((a, b) => compareText(a.address, b.address));
  return { endpoints, podKeys: [...podKeys].sort(compareText) };
}

/** Slice port name → number; ports without a number ("all ports") are left out. */
function slicePorts(slice: KubeObject): Record<string, number> {
  const entries: [string, number][] = [];
  for (const entry of arrayOf(slice.ports)) {
    const port = objectOf(entry);
    const number = portOf(port.port);
    if (number !== undefined) entries.push([stringOf(port.name) ?? '', number]);
  }
  return sortedRecord(entries);
}

function targetPod(endpoint: Json, namespace: string): string | undefined {
  const target = objectOf(endpoint.targetRef);
  const name = stringOf(target.name);
  if (target.kind !== 'Pod' || name === undefined) return undefined;
  return keyOf(stringOf(target.namespace) ?? namespace, name);
}

function podIdentity(pod: string | undefined, pods: PodIndex): string | undefined {
  if (pod === undefined) return undefined;
  const injected = pods.byKey.get(pod);
  return injected === undefined ? undefined : keyOf(injected.namespace, injected.serviceAccount);
}
