// How many access-log datagrams the kernel dropped because the agent's receive buffer was full:
// the "drops" column of /proc/net/udp for the receiver's socket. A sidecar so busy that the agent
// falls behind loses records rather than slowing nginx; this counter says how many. Pure parsing;
// the caller reads the file (per network namespace, so a pod sees only its own sockets).

/** Counter of datagrams the kernel dropped before the agent could read them. */
export const ACCESS_LOG_LOST_METRIC = 'nginx_mesh_access_log_lost_total';

/** /proc/net/udp's form of an IPv4 address and port: little-endian hex address, hex port. */
function procAddress(ipv4: string, port: number): string {
  const octets = ipv4.split('.').map(Number);
  const hex = octets
    .reverse()
    .map((octet) => octet.toString(16).padStart(2, '0'))
    .join('');
  return `${hex}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/**
 * The drops of the socket bound to ipv4:port in the text of /proc/net/udp, or undefined when no
 * such socket is listed (or the table's layout is not the one expected).
 */
export function udpSocketDrops(table: string, ipv4: string, port: number): number | undefined {
  const [header, ...rows] = table.split('\n');
  const columns = (header ?? '').trim().split(/\s+/);
  const dropsColumn = columns.indexOf('drops');
  if (columns[1] !== 'local_address' || dropsColumn < 0) return undefined;
  const wanted = procAddress(ipv4, port);
  for (const row of rows) {
    const fields = row.trim().split(/\s+/);
    if (fields[1]?.toUpperCase() !== wanted) continue;
    // The header names "tx_queue rx_queue" and "tr tm->when" as two columns each, but each
    // pair is one field in the rows: the drops are the rows' last field.
    const drops = Number(fields.at(-1));
    return Number.isSafeInteger(drops) && drops >= 0 ? drops : undefined;
  }
  return undefined;
}

/** The counter's exposition, or '' without a value. */
export function renderLostDatagrams(drops: number | undefined): string {
  if (drops === undefined) return '';
  return [
    `# HELP ${ACCESS_LOG_LOST_METRIC} Access-log datagrams the kernel dropped because the agent fell behind.`,
    `# TYPE ${ACCESS_LOG_LOST_METRIC} counter`,
    `${ACCESS_LOG_LOST_METRIC} ${drops}`,
    '',
  ].join('\n');
}
