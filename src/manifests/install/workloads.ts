// The control plane's Deployments and Services: controller, registrar, metrics and NATS. Every
// pod runs as a non-root user with a read-only root filesystem, no privilege escalation and no
// capabilities, with resource requests and health probes. Pure.
import {
  CERT_RELOADER_NAME,
  CONTROL_PLANE_HEALTH_PORT,
  READY_SERVING_PATH,
  CONTROLLER_NAME,
  CONTROLLER_SVID_DIR,
  CONTROLLER_VERSION_PORT,
  IDENTITY_MOUNT_PATH,
  METRICS_API_PORT,
  METRICS_NAME,
  METRICS_SERVICE_NAME,
  NATS_CLIENT_PORT,
  NATS_IMAGE,
  NATS_NAME,
  NATS_SERVICE_ACCOUNT_NAME,
  REGISTRAR_API_PORT,
  REGISTRAR_NAME,
  SIDECAR_UID,
  UPSTREAM_CA_SECRET_NAME,
  WEBHOOK_PORT,
  WEBHOOK_SERVICE_NAME,
} from '../constants';
import { buildIdentityVolume } from '../identity-volume';
import type { FullMeshConfig } from '../mesh-config/types';
import { NATS_CONFIG_FILE, NATS_PID_DIR, NATS_POD_LAYOUT, NATS_TLS_DIR } from './nats-config';
import type { Labels, Manifest } from './objects';
import { meta, NAME_LABEL } from './objects';

/** Where the registrar finds the upstream CA's files (Secret UPSTREAM_CA_SECRET_NAME). */
export const UPSTREAM_CA_MOUNT_PATH = '/run/nginx-mesh/upstream-ca';
interface Port {
  readonly name: string;
  readonly port: number;
}

interface Resources {
  readonly cpu: string;
  readonly memory: string;
  readonly memoryLimit: string;
}

interface Volume {
  readonly volume: object;
  readonly mountPath: string;
  readonly readOnly: boolean;
}

interface WorkloadSpec {
  readonly name: string;
  readonly serviceAccount: string;
  readonly image: string;
  readonly args: readonly string[];
  readonly ports: readonly Port[];
  /** HTTP probes (readiness and liveness paths on one port), or TCP connects to a port. */
  readonly probes:
    | { readonly port: number; readonly ready: string; readonly live: string }
    | { readonly tcpPort: number };
  readonly resources: Resources;
  readonly volumes: readonly Volume[];
  readonly env?: readonly object[];
}

/** Containers started before the main one: native sidecars, sharing the pod's volumes. */
interface PodExtras {
  readonly initContainers: readonly object[];
  /** Volumes only the init containers mount. */
  readonly volumes: readonly object[];
  readonly shareProcessNamespace: boolean;
}

export interface WorkloadContext {
  readonly namespace: string;
  readonly config: FullMeshConfig;
  readonly labels: (component: string) => Labels;
  /** Whether the registrar chains to the upstream CA in UPSTREAM_CA_SECRET_NAME. */
  readonly upstreamCa: boolean;
}

function container(spec: WorkloadSpec, config: FullMeshConfig): object {
  return {
    name: spec.name,
    image: spec.image,
    imagePullPolicy: config.registry.imagePullPolicy,
    args: spec.args,
    ...(spec.env === undefined ? {} : { env: spec.env }),
    ports: spec.ports.map((port) => ({
      name: port.name,
      containerPort: port.port,
      protocol: 'TCP',
    })),
    readinessProbe: {
      ...probeAction(spec.probes, 'ready'),
      periodSeconds: 2,
      failureThreshold: 3,
    },
    livenessProbe: {
      ...probeAction(spec.probes, 'live'),
      initialDelaySeconds: 10,
      periodSeconds: 10,
      failureThreshold: 3,
    },
    resources: {
      requests: { cpu: spec.resources.cpu, memory: spec.resources.memory },
      limits: { memory: spec.resources.memoryLimit },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    ...(spec.volumes.length === 0
      ? {}
      : {
          volumeMounts: spec.volumes.map((each) => ({
            name: (each.volume as { name: string }).name,
            mountPath: each.mountPath,
            readOnly: each.readOnly,
          })),
        }),
  };
}

function probeAction(probes: WorkloadSpec['probes'], which: 'ready' | 'live'): object {
  return 'tcpPort' in probes
    ? { tcpSocket: { port: probes.tcpPort } }
    : { httpGet: { path: probes[which], port: probes.port } };
}

function deployment(spec: WorkloadSpec, context: WorkloadContext, extras?: PodExtras): Manifest {
  const { config } = context;
  const labels = context.labels(spec.name);
  const keyName = config.registry.registryKeyName;
  const volumes = [...spec.volumes.map((each) => each.volume), ...(extras?.volumes ?? [])];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(spec.name, context.namespace, labels),
    spec: {
      replicas: 1,
      // The selector cannot change after creation: it names the component only.
      selector: { matchLabels: { [NAME_LABEL]: spec.name } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: spec.serviceAccount,
          ...(extras?.shareProcessNamespace === true ? { shareProcessNamespace: true } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: SIDECAR_UID,
            runAsGroup: SIDECAR_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(keyName === '' ? {} : { imagePullSecrets: [{ name: keyName }] }),
          ...(extras === undefined ? {} : { initContainers: extras.initContainers }),
          containers: [container(spec, config)],
          ...(volumes.length === 0 ? {} : { volumes }),
        },
      },
    },
  };
}

function service(
  name: string,
  component: string,
  ports: readonly { name: string; port: number; targetPort: number | string }[],
  context: WorkloadContext,
): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(name, context.namespace, context.labels(component)),
    spec: {
      selector: { [NAME_LABEL]: component },
      ports: ports.map((port) => ({
        name: port.name,
        port: port.port,
        targetPort: port.targetPort,
        protocol: 'TCP',
      })),
    },
  };
}

/** The projected token the registrar verifies, and the bundle that verifies the registrar. */
const IDENTITY_VOLUME = buildIdentityVolume({ withBundle: true });

const HEALTH: Port = { name: 'health', port: CONTROL_PLANE_HEALTH_PORT };
const ROLE_PROBES = { port: CONTROL_PLANE_HEALTH_PORT, ready: '/readyz', live: '/healthz' };

function controllerArgs(context: WorkloadContext): string[] {
  const { config } = context;
  return [
    'run',
    '--role=controller',
    `--mesh-namespace=${context.namespace}`,
    `--sidecar-image=${config.registry.sidecarImage}`,
    `--init-image=${config.registry.sidecarInitImage}`,
    `--image-pull-policy=${config.registry.imagePullPolicy}`,
    `--mtls-mode=${config.mtls.mode}`,
    ...(config.enableUDP ? ['--enable-udp'] : []),
    ...(config.registry.registryKeyName === ''
      ? []
      : [`--registry-key-name=${config.registry.registryKeyName}`]),
  ];
}

export function buildController(context: WorkloadContext): Manifest[] {
  return [
    deployment(
      {
        name: CONTROLLER_NAME,
        serviceAccount: CONTROLLER_NAME,
        image: context.config.registry.controllerImage,
        args: controllerArgs(context),
        ports: [
          { name: 'webhook', port: WEBHOOK_PORT },
          { name: 'version', port: CONTROLLER_VERSION_PORT },
          HEALTH,
        ],
        env: [
          // The Lease holder's name in leader election.
          { name: 'MY_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ],
        // The webhook serves while NATS or the Lease waits: pod creation must not stop then.
        probes: { ...ROLE_PROBES, ready: READY_SERVING_PATH },
        resources: { cpu: '100m', memory: '128Mi', memoryLimit: '512Mi' },
        volumes: [
          { volume: IDENTITY_VOLUME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
          // Its SVID for NATS, in memory; the root filesystem is read-only.
          {
            volume: { name: 'svid', emptyDir: { medium: 'Memory' } },
            mountPath: CONTROLLER_SVID_DIR,
            readOnly: false,
          },
        ],
      },
      context,
    ),
    service(
      CONTROLLER_NAME,
      CONTROLLER_NAME,
      [{ name: 'version', port: CONTROLLER_VERSION_PORT, targetPort: CONTROLLER_VERSION_PORT }],
      context,
    ),
    service(
      WEBHOOK_SERVICE_NAME,
      CONTROLLER_NAME,
      [{ name: 'admission', port: 443, targetPort: WEBHOOK_PORT }],
      context,
    ),
  ];
}

export function buildRegistrar(context: WorkloadContext): Manifest[] {
  const { mtls } = context.config;
  const upstream: Volume[] = context.upstreamCa
    ? [
        {
          volume: {
            name: 'upstream-ca',
            secret: { secretName: UPSTREAM_CA_SECRET_NAME, defaultMode: 0o400 },
          },
          mountPath: UPSTREAM_CA_MOUNT_PATH,
          readOnly: true,
        },
      ]
    : [];
  return [
    deployment(
      {
        name: REGISTRAR_NAME,
        serviceAccount: REGISTRAR_NAME,
        image: context.config.registry.controllerImage,
        args: [
          'run',
          '--role=registrar',
          `--mesh-namespace=${context.namespace}`,
          `--trust-domain=${mtls.trustDomain}`,
          `--ca-key-type=${mtls.caKeyType}`,
          `--ca-ttl=${mtls.caTTL}`,
          `--svid-ttl=${mtls.svidTTL}`,
          // Only pods that run these images as the injector and deploy render them get SVIDs.
          `--sidecar-image=${context.config.registry.sidecarImage}`,
          `--control-plane-image=${context.config.registry.controllerImage}`,
          ...(context.upstreamCa ? [`--upstream-ca-dir=${UPSTREAM_CA_MOUNT_PATH}`] : []),
        ],
        ports: [{ name: 'api', port: REGISTRAR_API_PORT }, HEALTH],
        probes: ROLE_PROBES,
        resources: { cpu: '100m', memory: '96Mi', memoryLimit: '384Mi' },
        volumes: upstream,
      },
      context,
    ),
    service(
      REGISTRAR_NAME,
      REGISTRAR_NAME,
      [{ name: 'api', port: REGISTRAR_API_PORT, targetPort: REGISTRAR_API_PORT }],
      context,
    ),
  ];
}

export function buildMetrics(context: WorkloadContext): Manifest[] {
  const address = context.config.prometheusAddress;
  return [
    deployment(
      {
        name: METRICS_NAME,
        serviceAccount: METRICS_NAME,
        image: context.config.registry.metricsImage,
        args: [
          'run',
          '--role=metrics',
          `--mesh-namespace=${context.namespace}`,
          ...(address === '' ? [] : [`--prometheus-address=${address}`]),
        ],
        ports: [{ name: 'metrics', port: METRICS_API_PORT }, HEALTH],
        probes: ROLE_PROBES,
        resources: { cpu: '50m', memory: '96Mi', memoryLimit: '384Mi' },
        volumes: [],
      },
      context,
    ),
    service(
      METRICS_SERVICE_NAME,
      METRICS_NAME,
      [{ name: 'http', port: 443, targetPort: 'metrics' }],
      context,
    ),
  ];
}

function natsImage(config: FullMeshConfig): string {
  return config.registry.disablePublicImages
    ? `${config.registry.server}/${NATS_IMAGE}`
    : NATS_IMAGE;
}

const NATS_TLS_VOLUME = { name: 'tls', emptyDir: { medium: 'Memory' } };
/**
 * The API credentials the kubelet would mount everywhere (the NATS ServiceAccount does not
 * automount them): here only in the cert-reloader, which lists ServiceAccounts; nats-server,
 * which faces every client, holds no API token.
 */
const NATS_API_VOLUME = {
  name: 'kube-api-access',
  projected: {
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }],
        },
      },
    ],
  },
};
const KUBE_API_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const NATS_PID_VOLUME = { name: 'pid', emptyDir: {} };

/**
 * The cert-reloader as a native sidecar: it writes the SVID, the bundle and nats.conf (whose users
 * it renders from the cluster's ServiceAccounts, see nats-config.ts); its startup probe passes
 * once all three are on disk, and only then does the kubelet start nats-server. It signals NATS
 * through the shared process namespace; both run as the same user, so no capability is needed.
 */
function certReloader(context: WorkloadContext): object {
  const reloader = container(
    {
      name: CERT_RELOADER_NAME,
      serviceAccount: NATS_SERVICE_ACCOUNT_NAME,
      image: context.config.registry.controllerImage,
      args: [
        'run',
        '--role=cert-reloader',
        `--mesh-namespace=${context.namespace}`,
        `--output-dir=${NATS_TLS_DIR}`,
        `--pid-file=${NATS_POD_LAYOUT.pidFile}`,
        `--nats-config=${NATS_TLS_DIR}/${NATS_CONFIG_FILE}`,
      ],
      ports: [HEALTH],
      probes: ROLE_PROBES,
      resources: { cpu: '10m', memory: '48Mi', memoryLimit: '192Mi' },
      volumes: [
        { volume: IDENTITY_VOLUME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
        { volume: NATS_TLS_VOLUME, mountPath: NATS_TLS_DIR, readOnly: false },
        { volume: NATS_PID_VOLUME, mountPath: NATS_PID_DIR, readOnly: true },
        { volume: NATS_API_VOLUME, mountPath: KUBE_API_MOUNT_PATH, readOnly: true },
      ],
    },
    context.config,
  );
  return {
    ...reloader,
    restartPolicy: 'Always',
    startupProbe: {
      httpGet: { path: ROLE_PROBES.ready, port: ROLE_PROBES.port },
      periodSeconds: 1,
      failureThreshold: 300,
    },
  };
}

export function buildNats(context: WorkloadContext): Manifest[] {
  return [
    deployment(
      {
        name: NATS_NAME,
        serviceAccount: NATS_SERVICE_ACCOUNT_NAME,
        image: natsImage(context.config),
        args: ['--config', `${NATS_TLS_DIR}/${NATS_CONFIG_FILE}`],
        // Monitoring listens on loopback only (it lists every connection): the kubelet checks
        // that the client port accepts connections.
        ports: [{ name: 'client', port: NATS_CLIENT_PORT }],
        probes: { tcpPort: NATS_CLIENT_PORT },
        resources: { cpu: '50m', memory: '64Mi', memoryLimit: '256Mi' },
        volumes: [
          { volume: NATS_PID_VOLUME, mountPath: NATS_PID_DIR, readOnly: false },
          { volume: NATS_TLS_VOLUME, mountPath: NATS_TLS_DIR, readOnly: true },
        ],
      },
      context,
      {
        initContainers: [certReloader(context)],
        volumes: [IDENTITY_VOLUME, NATS_API_VOLUME],
        shareProcessNamespace: true,
      },
    ),
    service(
      NATS_NAME,
      NATS_NAME,
      [{ name: 'client', port: NATS_CLIENT_PORT, targetPort: NATS_CLIENT_PORT }],
      context,
    ),
    natsNetworkPolicy(context),
  ];
}

/**
 * Where a network plugin enforces NetworkPolicy, NATS's pod accepts connections on its client
 * port only (from any pod: sidecars run in every namespace; who may do what is NATS's own
 * certificate-based authorization).
 */
function natsNetworkPolicy(context: WorkloadContext): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(NATS_NAME, context.namespace, context.labels(NATS_NAME)),
    spec: {
      podSelector: { matchLabels: { [NAME_LABEL]: NATS_NAME } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ namespaceSelector: {} }],
          ports: [{ protocol: 'TCP', port: NATS_CLIENT_PORT }],
        },
      ],
    },
  };
}
