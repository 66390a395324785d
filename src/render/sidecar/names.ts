// Names the sidecar configuration derives from mesh objects: upstream and zone names, SPIFFE
// IDs, the DNS SAN our CA puts in every SVID, and the loopback addresses that carry a
// destination from one internal hop to the next. Pure and stable: the same object always gets
// the same name, so reloads reuse shared-memory zones and diffs stay small.

/** 32-bit FNV-1a of the UTF-16 code units, as 8 hex digits: short, stable, dependency-free. */
export function fnv1a32(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** Letters, digits and underscores only: safe in nginx upstream, zone and variable names. */
export function nameSafe(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, '_');
}

/** The upstream of one port of a Service ("<namespace>/<name>"). */
export function upstreamName(service: string, port: number): string {
  return `mesh_${nameSafe(service.replace('/', '__'))}_${port}`;
}

/**
 * The twin of an outbound HTTP upstream that keeps no connections, for the one retry of a request
 * whose kept-alive connections all failed. Service names have no "_", so no Service's upstream
 * ends in "_fresh".
 */
export function freshUpstreamName(upstream: string): string {
  return `${upstream}_fresh`;
}

/**
 * The upstream of one endpoint ("addr:port") for traffic addressed to that pod itself. No Service's
 * upstream has this shape: that would need a namespace "ep" and a name starting with "_".
 */
export function endpointUpstreamName(address: string): string {
  return `mesh_ep_${nameSafe(address)}`;
}

/** Prefix of the inbound upstreams; no Service's upstream has this shape (those have "__"). */
export const INBOUND_UPSTREAM_PREFIX = 'mesh_inbound_';

/** The upstream of the app's inbound HTTP port. */
export function inboundUpstreamName(port: number): string {
  return `${INBOUND_UPSTREAM_PREFIX}${port}`;
}

/** SPIFFE ID of a "<namespace>/<service account>" identity. */
export function spiffeId(trustDomain: string, identity: string): string {
  const [namespace = '', account = ''] = identity.split('/');
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${account}`;
}

/** DNS SAN of an identity's SVID, <sa>.<ns>.svc: what proxy_ssl_name can verify. */
export function identityDnsName(identity: string): string {
  const [namespace = '', account = ''] = identity.split('/');
  return `${account}.${namespace}.svc`;
}

/** "addr:port", with IPv6 addresses in brackets, as $mesh_original_dst prints it. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Loopback addresses name a destination across an internal hop, because a REDIRECTed
 * connection's PROXY protocol header carries the redirect port, not the original one.
 * 127.1.h.l is inbound port h*256+l. An outbound destination's address comes from a hash of
 * what it means (a Service port, or a pod's address), so it does not move when other Services
 * come and go: across a reload, a connection the old worker's stream server opens to the HTTP
 * server, which the new worker accepts, still means what it meant. HTTP destinations take
 * 127.2.0.1 to 127.127.255.254, TCP destinations 127.128.0.1 to 127.253.255.254.
 */
export function loopbackAddress(kind: 'inbound', port: number): string;
export function loopbackAddress(kind: 'http' | 'tcp', slot: number): string;
export function loopbackAddress(kind: 'inbound' | 'http' | 'tcp', number: number): string {
  if (kind === 'inbound') return `127.1.${number >> 8}.${number & 255}`;
  const block = Math.floor(number / LOOPBACK_BLOCK);
  const rest = number % LOOPBACK_BLOCK;
  return `127.${(kind === 'http' ? 2 : 128) + block}.${Math.floor(rest / 254)}.${(rest % 254) + 1}`;
}

/** Addresses per second octet: third octet 0-255, fourth 1-254. */
const LOOPBACK_BLOCK = 256 * 254;

/** The most destinations loopbackAddress can number per kind: 126 second octets' worth. */
export const LOOPBACK_MAX = 126 * LOOPBACK_BLOCK;

/** The slot of a destination's loopback address: from its meaning, then the next free one. */
export function loopbackSlot(meaning: string, taken: Set<number>): number {
  let slot = Number.parseInt(fnv1a32(meaning), 16) % LOOPBACK_MAX;
  while (taken.has(slot)) slot = (slot + 1) % LOOPBACK_MAX;
  taken.add(slot);
  return slot;
}

/** A literal as a PCRE pattern. */
export function regexLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, (c) => `\\${c}`);
}
