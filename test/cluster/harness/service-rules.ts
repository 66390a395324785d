// The test cluster's Services as kube-proxy in iptables mode would install them in the node's
// network namespace, rendered as `iptables-restore --noflush` input. Pure: no I/O, no clock, no
// randomness; the same services and installed state give byte-identical text.
//
// Shape (both tables): built-in chains jump to NMK-SERVICES through "hooks", added only when
// iptables-save does not show them, so that a restore never touches a rule it does not own and
// re-applying the same state is a no-op. Every NMK-* chain is declared (which flushes it) and
// rewritten as a whole; NMK-* chains that no longer belong to any service port are deleted.
//   nat:    NMK-SERVICES -> NMK-SVC-<hash> (one per service port, picks an endpoint uniformly)
//           -> NMK-SEP-<hash> (one per endpoint: marks hairpin traffic, DNATs to the endpoint);
//           NMK-POSTROUTING masquerades marked (hairpin) connections.
//   filter: NMK-SERVICES rejects new connections to service ports that have no endpoints.

export type ServiceProtocol = 'TCP' | 'UDP';

export interface ServiceEndpoint {
  readonly ip: string;
  readonly port: number;
}

/** One port of one Service with its ready endpoints. */
export interface ServiceRule {
  readonly namespace: string;
  readonly name: string;
  /** The Service port's name; '' for the unnamed port of a single-port Service. */
  readonly portName: string;
  readonly protocol: ServiceProtocol;
  readonly clusterIP: string;
  readonly port: number;
  /** Order and duplicates do not matter. */
  readonly endpoints: readonly ServiceEndpoint[];
}

/** What the node's tables hold of this project's rules, as read back from iptables-save. */
export interface InstalledRules {
  readonly natChains: readonly string[];
  readonly filterChains: readonly string[];
  /** Hooks present, each as `<table>:<built-in chain>`, e.g. `nat:PREROUTING`. */
  readonly hooks: readonly string[];
}

/** A node whose tables hold nothing of the project yet: the render installs the hooks. */
export const NOTHING_INSTALLED: InstalledRules = { natChains: [], filterChains: [], hooks: [] };

/** Entry chain of the service rules in both tables (kube-proxy's KUBE-SERVICES). */
export const SERVICES_CHAIN = 'NMK-SERVICES';
/** Every chain this project owns starts with it; no other chain is ever touched. */
const PROJECT_CHAIN_PREFIX = 'NMK-';
const POSTROUTING_CHAIN = 'NMK-POSTROUTING';
const MARK_MASQUERADE_CHAIN = 'NMK-MARK-MASQ';
const SERVICE_CHAIN_PREFIX = 'NMK-SVC-';
const ENDPOINT_CHAIN_PREFIX = 'NMK-SEP-';
/** iptables limits chain names to 28 characters; ours are a prefix and 16 hex digits. */
export const MAX_CHAIN_NAME_LENGTH = 28;
/** The packet-mark bit of hairpin connections: kube-proxy's default, free in the node netns. */
const MASQUERADE_BIT = '0x4000';
const MASQUERADE_MARK = `${MASQUERADE_BIT}/${MASQUERADE_BIT}`;
/** xt_statistic keeps a probability as a 31-bit fraction of this. */
const STATISTIC_SCALE = 0x80000000;

type Table = 'filter' | 'nat';

interface Hook {
  readonly table: Table;
  readonly chain: string;
  readonly matches: string;
  readonly target: string;
  readonly comment: string;
}

const NEW_CONNECTIONS = '-m conntrack --ctstate NEW';
const PORTALS = 'nmk service portals';

/** Jumps from built-in chains into ours, as kube-proxy installs them. */
const HOOKS: readonly Hook[] = [
  {
    table: 'filter',
    chain: 'INPUT',
    matches: NEW_CONNECTIONS,
    target: SERVICES_CHAIN,
    comment: PORTALS,
  },
  {
    table: 'filter',
    chain: 'FORWARD',
    matches: NEW_CONNECTIONS,
    target: SERVICES_CHAIN,
    comment: PORTALS,
  },
  {
    table: 'filter',
    chain: 'OUTPUT',
    matches: NEW_CONNECTIONS,
    target: SERVICES_CHAIN,
    comment: PORTALS,
  },
  { table: 'nat', chain: 'PREROUTING', matches: '', target: SERVICES_CHAIN, comment: PORTALS },
  { table: 'nat', chain: 'OUTPUT', matches: '', target: SERVICES_CHAIN, comment: PORTALS },
  {
    table: 'nat',
    chain: 'POSTROUTING',
    matches: '',
    target: POSTROUTING_CHAIN,
    comment: 'nmk service hairpin',
  },
];

/** Input that iptables-restore cannot be trusted with, or that would make chains ambiguous. */
export class ServiceRuleError extends Error {
  override readonly name = 'ServiceRuleError';
}

interface EndpointModel {
  readonly ip: string;
  readonly port: number;
  readonly chain: string;
  /** The statistic match's probability; undefined for the last endpoint, which takes the rest. */
  readonly probability: string | undefined;
}

interface ServicePortModel {
  /** `namespace/name[:portName]`, as kube-proxy names a service port in comments. */
  readonly label: string;
  readonly protocol: 'tcp' | 'udp';
  readonly clusterIP: string;
  readonly port: number;
  readonly chain: string;
  readonly endpoints: readonly EndpointModel[];
}

/**
 * The complete `iptables-restore --noflush` input for the given services on a node whose tables
 * hold `installed`. Throws a ServiceRuleError for a malformed service or an ambiguous set (the
 * same service port twice, or two services on one cluster IP, port and protocol).
 */
export function renderServiceRules(
  services: readonly ServiceRule[],
  installed: InstalledRules = NOTHING_INSTALLED,
): string {
  const model = toServiceModel(services);
  return (
    [...renderFilterTable(model, installed), ...renderNatTable(model, installed)].join('\n') + '\n'
  );
}

/** Reads the project's chains and hooks out of `iptables-save` output (any tables, any order). */
export function parseInstalledRules(iptablesSave: string): InstalledRules {
  const chains: Record<Table, string[]> = { filter: [], nat: [] };
  const hooks: string[] = [];
  let table: string | undefined;
  for (const line of iptablesSave.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    if (table !== 'filter' && table !== 'nat') continue;
    const declared = /^:(\S+) /.exec(line)?.[1];
    if (declared?.startsWith(PROJECT_CHAIN_PREFIX) === true) chains[table].push(declared);
    const hook = HOOKS.find(
      (candidate) =>
        candidate.table === table &&
        line.startsWith(`-A ${candidate.chain} `) &&
        line.trimEnd().endsWith(` -j ${candidate.target}`),
    );
    if (hook !== undefined) hooks.push(hookId(hook));
  }
  return {
    natChains: uniqueSorted(chains.nat),
    filterChains: uniqueSorted(chains.filter),
    hooks: uniqueSorted(hooks),
  };
}

/** The nat chain of one service port: stable for its namespace, name, port name and protocol. */
export function serviceChainName(
  rule: Pick<ServiceRule, 'namespace' | 'name' | 'portName' | 'protocol'>,
): string {
  return SERVICE_CHAIN_PREFIX + hashHex(servicePortKey(rule));
}

/** IPv4 dotted quad to its 32-bit value; undefined unless strictly a.b.c.d with 0-255 parts. */
export function ipv4ToNumber(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

function renderFilterTable(
  model: readonly ServicePortModel[],
  installed: InstalledRules,
): string[] {
  const rejects = model
    .filter((service) => service.endpoints.length === 0)
    .map(
      (service) =>
        `-A ${SERVICES_CHAIN} ${matchServicePort(service, `${service.label} has no endpoints`)}` +
        ` -j REJECT --reject-with ${service.protocol === 'tcp' ? 'tcp-reset' : 'icmp-port-unreachable'}`,
    );
  return renderTable('filter', [SERVICES_CHAIN], rejects, installed);
}

function renderNatTable(model: readonly ServicePortModel[], installed: InstalledRules): string[] {
  const served = model.filter((service) => service.endpoints.length > 0);
  const chains = [SERVICES_CHAIN, POSTROUTING_CHAIN, MARK_MASQUERADE_CHAIN];
  const rules = [
    `-A ${MARK_MASQUERADE_CHAIN} -j MARK --set-xmark ${MASQUERADE_MARK}`,
    `-A ${POSTROUTING_CHAIN} -m mark ! --mark ${MASQUERADE_MARK} -j RETURN`,
    // Cleared so that a packet traversing the node again is not masqueraded twice.
    `-A ${POSTROUTING_CHAIN} -j MARK --set-xmark 0x0/${MASQUERADE_BIT}`,
    `-A ${POSTROUTING_CHAIN} -m comment --comment "hairpin to a service endpoint" -j MASQUERADE`,
  ];
  for (const service of served) {
    rules.push(
      `-A ${SERVICES_CHAIN} ${matchServicePort(service, `${service.label} cluster IP`)} -j ${service.chain}`,
    );
  }
  for (const service of served) {
    chains.push(service.chain, ...service.endpoints.map((endpoint) => endpoint.chain));
    rules.push(...renderServiceChain(service));
  }
  return renderTable('nat', chains, rules, installed);
}

function renderServiceChain(service: ServicePortModel): string[] {
  const rules: string[] = [];
  for (const endpoint of service.endpoints) {
    const pick =
      endpoint.probability === undefined
        ? ''
        : ` -m statistic --mode random --probability ${endpoint.probability}`;
    rules.push(
      `-A ${service.chain} -m comment --comment "${service.label} -> ${endpoint.ip}:${endpoint.port}"${pick} -j ${endpoint.chain}`,
    );
  }
  for (const endpoint of service.endpoints) {
    // A pod reaching itself through its service: masquerade, or the reply would bypass the DNAT.
    rules.push(
      `-A ${endpoint.chain} -s ${endpoint.ip}/32 -m comment --comment "${service.label}" -j ${MARK_MASQUERADE_CHAIN}`,
      `-A ${endpoint.chain} -p ${service.protocol} -m comment --comment "${service.label}"` +
        ` -j DNAT --to-destination ${endpoint.ip}:${endpoint.port}`,
    );
  }
  return rules;
}

/** One table's block: declarations (flush), missing hooks, rules, then deletion of stale chains. */
function renderTable(
  table: Table,
  chains: readonly string[],
  rules: readonly string[],
  installed: InstalledRules,
): string[] {
  const wanted = new Set(chains);
  const present = table === 'nat' ? installed.natChains : installed.filterChains;
  const stale = uniqueSorted(present.filter((chain) => !wanted.has(chain)));
  const hooks = HOOKS.filter(
    (hook) => hook.table === table && !installed.hooks.includes(hookId(hook)),
  ).map(renderHook);
  return [
    `*${table}`,
    ...[...chains, ...stale].map((chain) => `:${chain} - [0:0]`),
    ...hooks,
    ...rules,
    ...stale.map((chain) => `-X ${chain}`),
    'COMMIT',
  ];
}

function renderHook(hook: Hook): string {
  const matches = hook.matches === '' ? '' : `${hook.matches} `;
  return `-A ${hook.chain} ${matches}-m comment --comment "${hook.comment}" -j ${hook.target}`;
}

function hookId(hook: Hook): string {
  return `${hook.table}:${hook.chain}`;
}

/** Matches a service port, in the order iptables-save prints the same rule back. */
function matchServicePort(service: ServicePortModel, comment: string): string {
  return (
    `-d ${service.clusterIP}/32 -p ${service.protocol} -m comment --comment "${comment}"` +
    ` -m ${service.protocol} --dport ${service.port}`
  );
}

function toServiceModel(services: readonly ServiceRule[]): ServicePortModel[] {
  const sorted = [...services].sort((a, b) => compareText(servicePortKey(a), servicePortKey(b)));
  const keys = new Set<string>();
  const frontends = new Set<string>();
  const chains = new Map<string, string>();
  return sorted.map((rule) => {
    validateService(rule);
    const key = servicePortKey(rule);
    const frontend = `${rule.clusterIP}:${rule.port}/${rule.protocol}`;
    if (keys.has(key)) throw new ServiceRuleError(`service port ${key} is listed twice`);
    if (frontends.has(frontend)) {
      throw new ServiceRuleError(`two service ports listen on ${frontend}; the second is ${key}`);
    }
    keys.add(key);
    frontends.add(frontend);
    const chain = claimChain(chains, SERVICE_CHAIN_PREFIX, key);
    const endpoints = sortEndpoints(rule.endpoints);
    return {
      label: serviceLabel(rule),
      protocol: rule.protocol === 'TCP' ? 'tcp' : 'udp',
      clusterIP: rule.clusterIP,
      port: rule.port,
      chain,
      endpoints: endpoints.map((endpoint, index) => ({
        ...endpoint,
        chain: claimChain(
          chains,
          ENDPOINT_CHAIN_PREFIX,
          `${key} -> ${endpoint.ip}:${endpoint.port}`,
        ),
        probability:
          index === endpoints.length - 1 ? undefined : uniformShare(endpoints.length - index),
      })),
    };
  });
}

/**
 * Endpoint i of n is taken with probability 1/(n-i) among those not yet passed over, which makes
 * every endpoint equally likely. Printed at the kernel's 31-bit precision, as iptables-save
 * prints it back, so the installed rules read exactly as rendered.
 */
function uniformShare(remaining: number): string {
  return (Math.round(STATISTIC_SCALE / remaining) / STATISTIC_SCALE).toFixed(11);
}

/** A chain name for key; two keys that hash alike are refused rather than merged. */
function claimChain(chains: Map<string, string>, prefix: string, key: string): string {
  const chain = prefix + hashHex(key);
  const owner = chains.get(chain);
  if (owner !== undefined && owner !== key) {
    throw new ServiceRuleError(`chain ${chain} would serve both "${owner}" and "${key}"`);
  }
  chains.set(chain, key);
  return chain;
}

function sortEndpoints(endpoints: readonly ServiceEndpoint[]): ServiceEndpoint[] {
  const byKey = new Map<string, ServiceEndpoint>();
  for (const endpoint of endpoints) {
    byKey.set(`${endpoint.ip}:${endpoint.port}`, { ip: endpoint.ip, port: endpoint.port });
  }
  return [...byKey.values()].sort(
    (a, b) => (ipv4ToNumber(a.ip) ?? 0) - (ipv4ToNumber(b.ip) ?? 0) || a.port - b.port,
  );
}

/** Kubernetes object names (DNS-1123) and port names: nothing iptables would misread. */
const NAME_PATTERN = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** A Service port's name is a DNS-1123 label, or empty for a single unnamed port. */
const PORT_NAME_PATTERN = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$/;

type Check = readonly [ok: boolean, what: string, value: unknown, expected: string];

function validateService(rule: ServiceRule): void {
  const checks: Check[] = [
    [NAME_PATTERN.test(rule.namespace), 'namespace', rule.namespace, 'a DNS-1123 name'],
    [NAME_PATTERN.test(rule.name), 'name', rule.name, 'a DNS-1123 name'],
    [PORT_NAME_PATTERN.test(rule.portName), 'port name', rule.portName, 'a DNS-1123 label or ""'],
    [rule.protocol === 'TCP' || rule.protocol === 'UDP', 'protocol', rule.protocol, 'TCP or UDP'],
    [ipv4ToNumber(rule.clusterIP) !== undefined, 'cluster IP', rule.clusterIP, 'an IPv4 address'],
    [isPort(rule.port), 'port', rule.port, '1-65535'],
    ...rule.endpoints.flatMap((endpoint): Check[] => [
      [ipv4ToNumber(endpoint.ip) !== undefined, 'endpoint IP', endpoint.ip, 'an IPv4 address'],
      [isPort(endpoint.port), 'endpoint port', endpoint.port, '1-65535'],
    ]),
  ];
  const failed = checks.find(([ok]) => !ok);
  if (failed === undefined) return;
  const [, what, value, expected] = failed;
  throw new ServiceRuleError(
    `invalid ${what} ${JSON.stringify(value)} of service ${serviceLabel(rule)}: expected ${expected}`,
  );
}

function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

function servicePortKey(
  rule: Pick<ServiceRule, 'namespace' | 'name' | 'portName' | 'protocol'>,
): string {
  return `${rule.namespace}/${rule.name}:${rule.portName}/${rule.protocol}`;
}

function serviceLabel(rule: Pick<ServiceRule, 'namespace' | 'name' | 'portName'>): string {
  return `${rule.namespace}/${rule.name}${rule.portName === '' ? '' : `:${rule.portName}`}`;
}

/** Code-unit order: unlike localeCompare, the same on every machine. */
function compareText(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function uniqueSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareText);
}

const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const UINT64_MASK = 0xffffffffffffffffn;

/** 64-bit FNV-1a of the UTF-8 bytes, as 16 upper-case hex digits: short, stable names. */
function hashHex(text: string): string {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & UINT64_MASK;
  }
  return hash.toString(16).toUpperCase().padStart(16, '0');
}
