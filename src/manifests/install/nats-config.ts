// nats.conf and the subjects that bind the configuration bus to workload identities. NATS maps
// every client by the SPIFFE ID of its certificate (TLS verify_and_map) to a user of its own:
// - the controller (spiffe://<td>/ns/<mesh>/sa/nginx-mesh-controller) publishes configuration
//   and pings, reads every agent's subscription subject, and answers requests;
// - every ServiceAccount outside kube-system and the mesh's namespace is an agent identity, which
//   may publish only on its own subscription subject, nginx.nsm.agent.subscription.<ns>.<sa>,
//   and read configuration, pings and its own inbox, _INBOX.<ns>.<sa>.>.
// So the subject a message arrives on names its sender as NATS authenticated it, and no agent
// can speak for, or listen to, another identity. A certificate whose SPIFFE ID is no user's is
// refused at connect. The cert-reloader in the NATS pod renders this file from the cluster's
// ServiceAccounts and has NATS reload it when they change.
//
// Subject tokens cannot hold dots; ServiceAccount names can, and never hold underscores (DNS
// subdomains), so a dot becomes an underscore and the mapping is one to one.
// Pure.
import {
  CONTROLLER_NAME,
  NATS_CLIENT_PORT,
  NATS_CONFIG_SUBJECT,
  NATS_MONITOR_PORT,
  NATS_PING_SUBJECT,
  NATS_SUBSCRIPTION_SUBJECT,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
} from '../constants';
import { spiffeIdOf } from '../registrar/svid-policy';

/** nats.js's default inbox prefix; an agent's requests use its identity's branch of it. */
export const NATS_INBOX_PREFIX = '_INBOX';
/** Every agent's subscription subject, as the controller subscribes to it. */
export const NATS_AGENT_SUBSCRIPTIONS = `${NATS_SUBSCRIPTION_SUBJECT}.*.*`;

/** A workload identity on the bus: a ServiceAccount. */
export interface BusIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

const NAMESPACE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Whether both names are what the API server allows (and so safe in subjects and nats.conf). */
export function isBusIdentity(identity: BusIdentity): boolean {
  return (
    NAMESPACE_NAME.test(identity.namespace) && SERVICE_ACCOUNT_NAME.test(identity.serviceAccount)
  );
}

function tokenOf(serviceAccount: string): string {
  return serviceAccount.replaceAll('.', '_');
}

/** The identity a SPIFFE ID (spiffe://<td>/ns/<ns>/sa/<sa>) names, or undefined. */
export function busIdentityOfSpiffeId(spiffeId: string): BusIdentity | undefined {
  const match = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  if (match === null) return undefined;
  const identity = { namespace: match[1] ?? '', serviceAccount: match[2] ?? '' };
  return isBusIdentity(identity) ? identity : undefined;
}

/** The only subject the identity may publish its subscribe requests and acks on. */
export function agentSubscriptionSubject(identity: BusIdentity): string {
  return `${NATS_SUBSCRIPTION_SUBJECT}.${identity.namespace}.${tokenOf(identity.serviceAccount)}`;
}

/** The inbox prefix of the identity's requests; replies to it go under `<prefix>.`. */
export function agentInboxPrefix(identity: BusIdentity): string {
  return `${NATS_INBOX_PREFIX}.${identity.namespace}.${tokenOf(identity.serviceAccount)}`;
}

/** The identity a subscription subject belongs to, or undefined when it is not one. */
export function senderOfSubject(subject: string): BusIdentity | undefined {
  const prefix = `${NATS_SUBSCRIPTION_SUBJECT}.`;
  if (!subject.startsWith(prefix)) return undefined;
  const parts = subject.slice(prefix.length).split('.');
  if (parts.length !== 2) return undefined;
  const [namespace = '', token = ''] = parts;
  const identity = { namespace, serviceAccount: token.replaceAll('_', '.') };
  return isBusIdentity(identity) ? identity : undefined;
}

/** Where nats-server's files are in its pod. */
export interface NatsLayout {
  /** Listen address of the client port; all interfaces when absent. */
  readonly host?: string;
  readonly clientPort: number;
  /** Monitoring, on loopback only: it shows every connection, and no client needs it. */
  readonly monitorPort: number;
  readonly pidFile: string;
  /** Directory of the SVID (SVID_FILE_NAME) and trust bundle (SVID_BUNDLE_FILE_NAME). */
  readonly tlsDir: string;
}

/** The NATS pod's files: the cert-reloader writes the SVID, bundle and nats.conf to tlsDir. */
export const NATS_PID_DIR = '/var/run/nats';
export const NATS_TLS_DIR = '/etc/nats-tls';
export const NATS_CONFIG_FILE = 'nats.conf';
export const NATS_POD_LAYOUT: NatsLayout = {
  clientPort: NATS_CLIENT_PORT,
  monitorPort: NATS_MONITOR_PORT,
  pidFile: `${NATS_PID_DIR}/nats.pid`,
  tlsDir: NATS_TLS_DIR,
};

/** Who may connect: the mesh's trust domain and namespace, and every agent identity. */
export interface NatsAuth {
  readonly trustDomain: string;
  readonly meshNamespace: string;
  readonly identities: readonly BusIdentity[];
}

/**
 * The agent identities among ServiceAccounts ("<namespace>/<name>" pairs): all but those of
 * excluded namespaces and names the API server would not allow; sorted, without duplicates.
 */
export function buildBusIdentities(
  accounts: readonly BusIdentity[],
  excludedNamespaces: ReadonlySet<string>,
): BusIdentity[] {
  const byKey = new Map<string, BusIdentity>();
  for (const account of accounts) {
    if (excludedNamespaces.has(account.namespace) || !isBusIdentity(account)) continue;
    byKey.set(`${account.namespace}/${account.serviceAccount}`, {
      namespace: account.namespace,
      serviceAccount: account.serviceAccount,
    });
  }
  return [...byKey.keys()].sort().map((key) => byKey.get(key) as BusIdentity);
}

const list = (subjects: readonly string[]): string =>
  `[${subjects.map((subject) => `"${subject}"`).join(', ')}]`;

export function renderNatsConfig(layout: NatsLayout, auth: NatsAuth): string {
  const user = (
    spiffeId: string,
    publish: readonly string[],
    subscribe: readonly string[],
    answers: boolean,
  ): string =>
    `    { user: "${spiffeId}", permissions: { publish: ${list(publish)}, subscribe: ${list(subscribe)}${answers ? ', allow_responses: true' : ''} } }`;
  const controller = user(
    spiffeIdOf(auth.trustDomain, auth.meshNamespace, CONTROLLER_NAME),
    [NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT],
    [NATS_AGENT_SUBSCRIPTIONS],
    true,
  );
  const agents = auth.identities
    .filter(isBusIdentity)
    .map((identity) =>
      user(
        spiffeIdOf(auth.trustDomain, identity.namespace, identity.serviceAccount),
        [agentSubscriptionSubject(identity)],
        [NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT, `${agentInboxPrefix(identity)}.>`],
        false,
      ),
    );
  return [
    '# NATS for the mesh: configuration down to the sidecars, acknowledgements back up.',
    ...(layout.host === undefined ? [] : [`host: "${layout.host}"`]),
    `port: ${layout.clientPort}`,
    `http: "127.0.0.1:${layout.monitorPort}"`,
    `pid_file: "${layout.pidFile}"`,
    '# A whole mesh snapshot travels in one message.',
    'max_payload: 8MB',
    '# The SVID (certificate chain and key in one file) and trust bundle of the cert-reloader;',
    "# each client is the user its certificate's SPIFFE ID names.",
    'tls {',
    `  cert_file: "${layout.tlsDir}/${SVID_FILE_NAME}"`,
    `  key_file: "${layout.tlsDir}/${SVID_FILE_NAME}"`,
    `  ca_file: "${layout.tlsDir}/${SVID_BUNDLE_FILE_NAME}"`,
    '  verify_and_map: true',
    '  timeout: 2',
    '}',
    'authorization {',
    '  users: [',
    controller,
    ...agents,
    '  ]',
    '}',
    '',
  ].join('\n');
}
