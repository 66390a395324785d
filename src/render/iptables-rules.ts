// The pod's traffic redirect as `iptables-restore` / `ip6tables-restore` input for the nat table.
// Pure: the same options (and installed state) give byte-identical text.
//
// Shape, the same for IPv4 and IPv6:
//   PREROUTING -p tcp -> MESH_INBOUND: RETURN for ignored incoming ports (always the metrics
//       port), then -> MESH_IN_REDIRECT: REDIRECT to the sidecar's inbound port.
//   OUTPUT -p tcp -> MESH_OUTPUT: RETURN for the proxy's own uid (loop prevention), for anything
//       leaving through lo (loopback and the pod's own address), for loopback destinations, and
//       for ignored outgoing ports (always DNS); then -> MESH_REDIRECT: REDIRECT to the sidecar's
//       outbound port.
// Chain names are the ones the project's data-plane design fixes (reference/dataplane.md §3.4);
// NGINX Service Mesh never published its own.
// Every chain is declared, which empties it, and rewritten whole; the two jumps from built-in
// chains are printed only when the caller has not found them installed, so re-applying the same
// rules with `--noflush` is a no-op and no rule outside the project's chains is touched.
import { MeshctlError } from '../errors';
import {
  DNS_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_METRICS_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_UID,
} from '../manifests/constants';

/** Entry chain for inbound TCP, jumped to from PREROUTING. */
export const INBOUND_CHAIN = 'MESH_INBOUND';
/** Redirects inbound TCP to the sidecar's inbound port. */
export const IN_REDIRECT_CHAIN = 'MESH_IN_REDIRECT';
/** Entry chain for outbound TCP, jumped to from OUTPUT. */
export const OUTPUT_CHAIN = 'MESH_OUTPUT';
/** Redirects outbound TCP to the sidecar's outbound port. */
export const REDIRECT_CHAIN = 'MESH_REDIRECT';

/** Every chain the redirect owns, in the order they are declared. */
export const REDIRECT_CHAINS: readonly string[] = [
  INBOUND_CHAIN,
  IN_REDIRECT_CHAIN,
  OUTPUT_CHAIN,
  REDIRECT_CHAIN,
];

/** Flags whose ports the rules leave alone; named in validation errors. */
export const IGNORE_INCOMING_PORTS_FLAG = 'ignore-incoming-ports';
export const IGNORE_OUTGOING_PORTS_FLAG = 'ignore-outgoing-ports';

/** xt_multiport matches at most 15 ports per rule. */
const MULTIPORT_LIMIT = 15;

export type IpFamily = 'ipv4' | 'ipv6';

/** Built-in nat chains that hold a jump into the redirect. */
export type HookChain = 'PREROUTING' | 'OUTPUT';

export interface RedirectOptions {
  /** TCP ports whose inbound connections reach the app directly; order and duplicates do not matter. */
  readonly ignoreIncomingPorts: readonly number[];
  /** TCP ports whose outbound connections bypass the proxy; order and duplicates do not matter. */
  readonly ignoreOutgoingPorts: readonly number[];
  /** Accepted for NGINX Service Mesh's injector; UDP is not intercepted (a warning says so). */
  readonly enableUdp?: boolean;
}

/** One rule: the chain it is appended to and its match and target, as iptables-save prints it. */
export interface RedirectRule {
  readonly chain: string;
  readonly spec: string;
}

/** The decided rules of one address family, before printing. */
export interface RedirectRuleSet {
  readonly family: IpFamily;
  readonly chains: readonly string[];
  /** Jumps from built-in chains into the project's chains. */
  readonly hooks: readonly RedirectRule[];
  /** The contents of the project's chains, in order. */
  readonly rules: readonly RedirectRule[];
}

export interface RedirectModel {
  readonly ipv4: RedirectRuleSet;
  readonly ipv6: RedirectRuleSet;
  /** Non-fatal problems with the options, for the caller to log. */
  readonly warnings: readonly string[];
}

export interface RedirectRules {
  /** `iptables-restore --noflush` input for a namespace with nothing installed yet. */
  readonly ipv4: string;
  /** `ip6tables-restore --noflush` input for a namespace with nothing installed yet. */
  readonly ipv6: string;
  readonly warnings: readonly string[];
}

/** An option the redirect cannot be built from: names the flag, the value and what is expected. */
export class InvalidRedirectOptionError extends MeshctlError {}

export const UDP_NOT_INTERCEPTED_WARNING =
  '--enable-udp: UDP interception is not supported yet; UDP traffic bypasses the proxy';

/** The rules for both families, printed for a namespace with nothing installed. */
export function buildRedirectRules(options: RedirectOptions): RedirectRules {
  const model = buildRedirectModel(options);
  return {
    ipv4: printRestoreInput(model.ipv4),
    ipv6: printRestoreInput(model.ipv6),
    warnings: model.warnings,
  };
}

/** Decides the rules of both families; throws InvalidRedirectOptionError for a bad port. */
export function buildRedirectModel(options: RedirectOptions): RedirectModel {
  const incoming = normalizePorts(IGNORE_INCOMING_PORTS_FLAG, [
    SIDECAR_METRICS_PORT,
    ...options.ignoreIncomingPorts,
  ]);
  const outgoing = normalizePorts(IGNORE_OUTGOING_PORTS_FLAG, [
    DNS_PORT,
    ...options.ignoreOutgoingPorts,
  ]);
  return {
    ipv4: buildRuleSet('ipv4', incoming, outgoing),
    ipv6: buildRuleSet('ipv6', incoming, outgoing),
    warnings: options.enableUdp === true ? [UDP_NOT_INTERCEPTED_WARNING] : [],
  };
}

/**
 * Prints one family's rules as restore input for the nat table. Jumps from the built-in chains
 * listed in `installedHooks` are left out, because they are already there.
 */
export function printRestoreInput(
  ruleSet: RedirectRuleSet,
  installedHooks: readonly HookChain[] = [],
): string {
  const lines = ['*nat', ...ruleSet.chains.map((chain) => `:${chain} - [0:0]`)];
  for (const hook of ruleSet.hooks) {
    if (!(installedHooks as readonly string[]).includes(hook.chain)) lines.push(printRule(hook));
  }
  for (const rule of ruleSet.rules) lines.push(printRule(rule));
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** Which built-in chains already hold the redirect's jump, read from `iptables-save -t nat`. */
export function parseInstalledHooks(saved: string, ruleSet: RedirectRuleSet): HookChain[] {
  const present = new Set(saved.split('\n').map((line) => line.trim()));
  return ruleSet.hooks
    .filter((hook) => present.has(printRule(hook)))
    .map((hook) => hook.chain as HookChain);
}

/** Whether `iptables-save -t nat` output shows every chain the redirect owns. */
export function hasRedirectChains(saved: string): boolean {
  const declared = new Set(
    saved
      .split('\n')
      .filter((line) => line.startsWith(':'))
      .map((line) => line.slice(1).split(' ')[0]),
  );
  return REDIRECT_CHAINS.every((chain) => declared.has(chain));
}

/** Number of rules in restore input: the `-A` lines. */
export function countRules(restoreInput: string): number {
  return restoreInput.split('\n').filter((line) => line.startsWith('-A ')).length;
}

function buildRuleSet(
  family: IpFamily,
  incoming: readonly number[],
  outgoing: readonly number[],
): RedirectRuleSet {
  const loopback = family === 'ipv4' ? '127.0.0.0/8' : '::1/128';
  const rules: RedirectRule[] = [
    ...multiportReturns(INBOUND_CHAIN, incoming),
    { chain: INBOUND_CHAIN, spec: `-p tcp -j ${IN_REDIRECT_CHAIN}` },
    {
      chain: IN_REDIRECT_CHAIN,
      spec: `-p tcp -j REDIRECT --to-ports ${SIDECAR_INBOUND_REDIRECT_PORT}`,
    },
    // The sidecar's own connection to its pod's address (a pod calling a Service it backs)
    // leaves through lo and never meets PREROUTING: it is the pod's inbound traffic all the same,
    // so it goes to the inbound port like a peer's, mTLS and access control included. The probe
    // servers' connections to the app bind a loopback source (PROBE_SOURCE_ADDRESS) and stay
    // direct. IPv4 only: a probe over IPv6 has no loopback source to bind to a pod address.
    ...(family === 'ipv4'
      ? [
          {
            chain: OUTPUT_CHAIN,
            spec: `! -s ${loopback} ! -d ${loopback} -o lo -m owner --uid-owner ${SIDECAR_UID} -j ${INBOUND_CHAIN}`,
          },
        ]
      : []),
    { chain: OUTPUT_CHAIN, spec: `-m owner --uid-owner ${SIDECAR_UID} -j RETURN` },
    { chain: OUTPUT_CHAIN, spec: '-o lo -j RETURN' },
    { chain: OUTPUT_CHAIN, spec: `-d ${loopback} -j RETURN` },
    ...multiportReturns(OUTPUT_CHAIN, outgoing),
    { chain: OUTPUT_CHAIN, spec: `-p tcp -j ${REDIRECT_CHAIN}` },
    {
      chain: REDIRECT_CHAIN,
      spec: `-p tcp -j REDIRECT --to-ports ${SIDECAR_OUTBOUND_REDIRECT_PORT}`,
    },
  ];
  return {
    family,
    chains: REDIRECT_CHAINS,
    hooks: [
      { chain: 'PREROUTING', spec: `-p tcp -j ${INBOUND_CHAIN}` },
      { chain: 'OUTPUT', spec: `-p tcp -j ${OUTPUT_CHAIN}` },
    ],
    rules,
  };
}

function multiportReturns(chain: string, ports: readonly number[]): RedirectRule[] {
  const rules: RedirectRule[] = [];
  for (let start = 0; start < ports.length; start += MULTIPORT_LIMIT) {
    const group = ports.slice(start, start + MULTIPORT_LIMIT).join(',');
    rules.push({ chain, spec: `-p tcp -m multiport --dports ${group} -j RETURN` });
  }
  return rules;
}

function printRule(rule: RedirectRule): string {
  return `-A ${rule.chain} ${rule.spec}`;
}

/** Sorted, without duplicates; every port must be a TCP port number. */
function normalizePorts(flag: string, ports: readonly number[]): number[] {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidRedirectOptionError(`invalid port "${port}" in --${flag}: expected 1-65535`);
    }
  }
  return [...new Set(ports)].sort((a, b) => a - b);
}
