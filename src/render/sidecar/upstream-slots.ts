// Endpoints that change without a reload. A Service's upstream is printed as slots (server lines
// marked down, which ngx_mesh's mesh_upstream_slots fills), and its endpoints go to the members
// file, which the agent rewrites and nginx re-reads on a PUT to mesh_members_update. The
// configuration text then changes only when a Service, a policy or a slot count changes; a slot
// count stays while the members still fit (the previous counts come back in the context), so
// endpoints coming and going in a rolling update or a scale within 4× never reload nginx. The
// endpoints of a ClusterIP Service, which route like the Service when addressed directly, go to
// the same file as the members map "outbound" (and "plain_service" for plaintext TCP), which the
// stream server reads through mesh_members_map. Pure.
import type { UpstreamSlots } from './context';
import type {
  OutboundHttp,
  OutboundTcp,
  SidecarModel,
  UpstreamModel,
  UpstreamServer,
} from './model';

/** The fewest slots an upstream gets: room for a rolling update of one or two replicas. */
export const MIN_UPSTREAM_SLOTS = 4;

/** A slot's server line address: never used, since a slot without a member is down. */
export const SLOT_ADDRESS = '127.0.0.1:1';

/** The members file nginx reads, in the run directory (the agent writes it). */
export function membersPath(runDir: string): string {
  return `${runDir}/members`;
}

/** The members map tables the stream server reads (stream-directives.ts). */
export const MEMBERS_OUTBOUND_TABLE = 'outbound';
export const MEMBERS_PLAIN_SERVICE_TABLE = 'plain_service';

/**
 * Slots for members: twice the members rounded up to a power of two, at least
 * MIN_UPSTREAM_SLOTS; or, when the previous count still fits them and is not more than 4× that,
 * the previous count. None for no members without a previous count (an upstream without backups).
 */
export function slotCount(members: number, previous?: number): number {
  if (members === 0 && previous === undefined) return 0;
  const needed = Math.max(MIN_UPSTREAM_SLOTS, 2 ** Math.ceil(Math.log2(Math.max(1, 2 * members))));
  if (previous !== undefined && members <= previous && previous <= 4 * needed) return previous;
  return needed;
}

/** The slots of an upstream's servers, given its slots in the configuration in force. */
export function upstreamSlots(
  servers: readonly UpstreamServer[],
  previous?: UpstreamSlots,
): UpstreamSlots {
  const backups = servers.filter((server) => server.backup).length;
  return {
    primary: slotCount(servers.length - backups, previous?.primary),
    backup: slotCount(backups, previous?.backup),
  };
}

/** The server lines of a slotted upstream: its primary slots, then its backup slots. */
export function slotServers(upstream: UpstreamModel, slots: UpstreamSlots): UpstreamServer[] {
  const primary = upstream.servers.find((server) => !server.backup);
  const guard =
    primary?.maxFails === undefined
      ? {}
      : {
          maxFails: primary.maxFails,
          ...(primary.failTimeoutSeconds === undefined
            ? {}
            : { failTimeoutSeconds: primary.failTimeoutSeconds }),
        };
  return [
    ...Array.from({ length: slots.primary }, () => ({
      address: SLOT_ADDRESS,
      backup: false,
      down: true,
      ...guard,
    })),
    ...Array.from({ length: slots.backup }, () => ({
      address: SLOT_ADDRESS,
      backup: true,
      down: true,
    })),
  ];
}

function upstreamLine(name: string, servers: readonly UpstreamServer[]): string {
  const primary = servers.filter((server) => !server.backup).map((server) => server.address);
  const backup = servers.filter((server) => server.backup).map((server) => server.address);
  return ['upstream', name, ...primary, ...(backup.length > 0 ? ['backup', ...backup] : [])].join(
    ' ',
  );
}

/**
 * The members file for a model: one "upstream" line per slotted upstream (and its twin that
 * keeps no connections, twinName), and the "map" lines of the endpoints' destinations.
 * outbound(tcp) is what the stream server's $mesh_outbound gives for a destination.
 */
export function membersText(
  model: SidecarModel,
  twinName: (upstream: UpstreamModel) => string | undefined,
  outbound: {
    readonly http: (http: OutboundHttp) => string;
    readonly tcp: (tcp: OutboundTcp) => string;
  },
): string {
  const lines: string[] = [];
  for (const upstream of [...model.httpUpstreams, ...model.tcpUpstreams]) {
    if (upstream.slots === undefined) continue;
    lines.push(upstreamLine(upstream.name, upstream.servers));
    const twin = twinName(upstream);
    if (twin !== undefined) lines.push(upstreamLine(twin, upstream.servers));
  }
  for (const http of model.outboundHttp)
    for (const endpoint of http.endpoints)
      lines.push(`map ${MEMBERS_OUTBOUND_TABLE} ${endpoint} ${outbound.http(http)}`);
  for (const tcp of model.outboundTcp) {
    for (const endpoint of tcp.endpoints)
      lines.push(`map ${MEMBERS_OUTBOUND_TABLE} ${endpoint} ${outbound.tcp(tcp)}`);
    if (tcp.tlsName === undefined)
      for (const endpoint of tcp.endpoints)
        lines.push(`map ${MEMBERS_PLAIN_SERVICE_TABLE} ${endpoint} ${tcp.service}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The slots of every slotted upstream, by name, for the next render's context. */
export function slotsOf(model: SidecarModel): Map<string, UpstreamSlots> {
  const slots = new Map<string, UpstreamSlots>();
  for (const upstream of [...model.httpUpstreams, ...model.tcpUpstreams])
    if (upstream.slots !== undefined) slots.set(upstream.name, upstream.slots);
  return slots;
}
