// The objects injection adds to a pod: the init container, the sidecar and their volumes. Keys are
// written in one fixed order so that printed manifests are byte-identical run after run.
import {
  IDENTITY_MOUNT_PATH,
  IDENTITY_VOLUME_NAME,
  INIT_CONTAINER_NAME,
  SIDECAR_CONFIG_MOUNT_PATH,
  SIDECAR_CONFIG_VOLUME_NAME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_METRICS_PORT,
  SIDECAR_AGENT_ENV,
  SIDECAR_READY_PATH,
  SIDECAR_UID,
} from '../constants';
import { buildIdentityVolume } from '../identity-volume';
import type { JsonObject } from './json';
import { sortKeysDeep } from './json';
import type { InjectionSettings, MtlsMode, PodOwner } from './types';

/** How often the kubelet asks the sidecar whether the proxy is ready. */
const READINESS_PERIOD_SECONDS = 2;
/** A native sidecar gets two minutes (120 × 1 s) to become ready before it is restarted. */
const STARTUP_PERIOD_SECONDS = 1;
const STARTUP_FAILURE_THRESHOLD = 120;

export interface InitContainerInput {
  readonly settings: InjectionSettings;
  /** Inbound ports to leave alone, 8887 first, without duplicates. */
  readonly ignoreIncomingPorts: readonly number[];
  readonly ignoreOutgoingPorts: readonly number[];
}

/**
 * The init container that installs the redirect. It runs this project's executable (the image's
 * ENTRYPOINT), so only `args` is set. NET_ADMIN and NET_RAW are all iptables needs; the eBPF UDP
 * path also needs SYS_RESOURCE and SYS_ADMIN, and Kubernetes rejects SYS_ADMIN together with
 * allowPrivilegeEscalation: false, so that field is left unset when UDP is enabled.
 */
export function buildInitContainer(input: InitContainerInput): JsonObject {
  const { settings } = input;
  const args = ['run', '--role', 'init'];
  if (settings.enableUdp) args.push('--enable-udp');
  args.push('--ignore-incoming-ports', input.ignoreIncomingPorts.join(','));
  if (input.ignoreOutgoingPorts.length > 0) {
    args.push('--ignore-outgoing-ports', input.ignoreOutgoingPorts.join(','));
  }
  const add = settings.enableUdp
    ? ['NET_ADMIN', 'NET_RAW', 'SYS_RESOURCE', 'SYS_ADMIN']
    : ['NET_ADMIN', 'NET_RAW'];
  return {
    name: INIT_CONTAINER_NAME,
    image: settings.initImage,
    imagePullPolicy: settings.imagePullPolicy,
    args,
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      privileged: false,
      ...(settings.enableUdp ? {} : { allowPrivilegeEscalation: false }),
      capabilities: { add, drop: ['ALL'] },
    },
  };
}

export interface SidecarInput {
  readonly settings: InjectionSettings;
  readonly owner: PodOwner;
  /** Ports of the containers that serve traffic, ascending. */
  readonly containerPorts: readonly number[];
  readonly healthRedirects: Readonly<Record<string, JsonObject>>;
  readonly usesHttpRedirect: boolean;
  readonly usesHttpsRedirect: boolean;
  readonly mtlsMode: MtlsMode | undefined;
  readonly clientMaxBodySize: string | undefined;
  readonly defaultEgressAllowed: boolean;
}

/**
 * The sidecar container. As a native sidecar it carries `restartPolicy: Always` and a startup
 * probe, so the kubelet starts later init containers and the app only once the proxy is ready.
 */
export function buildSidecarContainer(input: SidecarInput): JsonObject {
  const { settings } = input;
  // A fresh object per probe: a YAML printer would turn a shared one into an anchor and alias.
  const readyCheck = (): JsonObject => ({
    httpGet: { path: SIDECAR_READY_PATH, port: SIDECAR_METRICS_PORT },
  });
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: settings.sidecarImage,
    imagePullPolicy: settings.imagePullPolicy,
    ...(settings.nativeSidecar ? { restartPolicy: 'Always' } : {}),
    args: buildSidecarArgs(input),
    ports: buildSidecarPorts(input),
    env: buildSidecarEnv(input.owner),
    volumeMounts: [
      { name: IDENTITY_VOLUME_NAME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
      { name: SIDECAR_CONFIG_VOLUME_NAME, mountPath: SIDECAR_CONFIG_MOUNT_PATH },
    ],
    // Ready once configured (or after the agent's --config-wait): a transparent proxy would hand
    // meshed clients' TLS to the app, and would send the app's first requests in plaintext, which
    // strict peers refuse. A native sidecar's startup probe therefore holds the app back as long.
    readinessProbe: { ...readyCheck(), periodSeconds: READINESS_PERIOD_SECONDS },
    ...(settings.nativeSidecar
      ? {
          startupProbe: {
            ...readyCheck(),
            periodSeconds: STARTUP_PERIOD_SECONDS,
            failureThreshold: STARTUP_FAILURE_THRESHOLD,
          },
        }
      : {}),
    securityContext: sidecarSecurityContext(),
  };
}

/** The proxy's container runs as the sidecar user, with nothing it could gain or write. */
export function sidecarSecurityContext(): JsonObject {
  return {
    runAsUser: SIDECAR_UID,
    runAsGroup: SIDECAR_UID,
    runAsNonRoot: true,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
}

function buildSidecarArgs(input: SidecarInput): string[] {
  const args = ['run', '--role', 'agent'];
  for (const port of input.containerPorts) args.push('--container-port', String(port));
  args.push('--owner', `${input.owner.kind.toLowerCase()}/${input.owner.name}`);
  args.push('--mesh-namespace', input.settings.meshNamespace);
  if (input.settings.natsUrl !== undefined) args.push('--nats-url', input.settings.natsUrl);
  if (input.settings.registrarUrl !== undefined)
    args.push('--registrar-url', input.settings.registrarUrl);
  if (Object.keys(input.healthRedirects).length > 0) {
    args.push('--health-redirects', JSON.stringify(sortKeysDeep(input.healthRedirects)));
  }
  if (input.mtlsMode !== undefined) args.push('--mtls-mode', input.mtlsMode);
  if (input.clientMaxBodySize !== undefined) {
    args.push('--client-max-body-size', input.clientMaxBodySize);
  }
  if (input.defaultEgressAllowed) args.push('--default-egress-allowed');
  return args;
}

function buildSidecarPorts(input: SidecarInput): JsonObject[] {
  const ports: JsonObject[] = [{ name: 'metrics', containerPort: SIDECAR_METRICS_PORT }];
  if (input.usesHttpRedirect) {
    ports.push({ name: 'health-http', containerPort: SIDECAR_HEALTH_HTTP_PORT });
  }
  if (input.usesHttpsRedirect) {
    ports.push({ name: 'health-https', containerPort: SIDECAR_HEALTH_HTTPS_PORT });
  }
  return ports;
}

export function buildSidecarEnv(owner: PodOwner): JsonObject[] {
  const fromField = (name: string, fieldPath: string): JsonObject => ({
    name,
    valueFrom: { fieldRef: { fieldPath } },
  });
  return [
    { name: 'MY_DEPLOY_NAME', value: owner.name },
    fromField('MY_NAMESPACE', 'metadata.namespace'),
    fromField('MY_POD_NAME', 'metadata.name'),
    fromField('MY_POD_IP', 'status.podIP'),
    fromField('MY_SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    ...Object.entries(SIDECAR_AGENT_ENV).map(([name, value]) => ({ name, value })),
  ];
}

/** Names of the environment variables the sidecar is given; the registrar accepts no others. */
export function sidecarEnvNames(): string[] {
  return buildSidecarEnv({ kind: 'Pod', name: '' }).map((entry) => String(entry.name));
}

/**
 * The sidecar's volumes: a projected ServiceAccount token the registrar verifies (instead of
 * NGINX Service Mesh's SPIRE agent socket on the node), and memory for the rendered config and
 * certificates, so keys never touch the node's disk.
 */
export function buildSidecarVolumes(): JsonObject[] {
  return [
    buildIdentityVolume({ withBundle: true, bundleOptional: true }),
    { name: SIDECAR_CONFIG_VOLUME_NAME, emptyDir: { medium: 'Memory' } },
  ];
}
