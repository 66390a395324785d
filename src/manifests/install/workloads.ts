// The control plane's Deployments and Services: controller, registrar, metrics and NATS. Every
// pod runs as a non-root user with a read-only root filesystem, no privilege escalation and no
// capabilities, with resource requests and health probes. Pure.
import {
  CONTROL_PLANE_HEALTH_PORT,
  CONTROLLER_NAME,
  CONTROLLER_VERSION_PORT,
  METRICS_API_PORT,
  METRICS_NAME,
  METRICS_SERVICE_NAME,
  NATS_CLIENT_PORT,
  NATS_CONFIG_MAP_NAME,
  NATS_IMAGE,
  NATS_MONITOR_PORT,
  NATS_NAME,
  NATS_SERVICE_ACCOUNT_NAME,
  REGISTRAR_API_PORT,
  REGISTRAR_NAME,
  SIDECAR_UID,
  UPSTREAM_CA_SECRET_NAME,
  WEBHOOK_PORT,
  WEBHOOK_SERVICE_NAME,
} from '../constants';
import type { FullMeshConfig } from '../mesh-config/types';
import type { Labels, Manifest } from './objects';
import { meta, NAME_LABEL } from './objects';

/** Where the registrar finds the upstream CA's files (Secret UPSTREAM_CA_SECRET_NAME). */
export const UPSTREAM_CA_MOUNT_PATH = '/run/nginx-mesh/upstream-ca';
const NATS_CONFIG_DIR = '/etc/nats-config';
export const NATS_CONFIG_FILE = 'nats.conf';
const NATS_PID_DIR = '/var/run/nats';

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
  /** HTTP probes: readiness and liveness paths on one port. */
  readonly probes: { readonly port: number; readonly ready: string; readonly live: string };
  readonly resources: Resources;
  readonly volumes: readonly Volume[];
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
    ports: spec.ports.map((port) => ({
      name: port.name,
      containerPort: port.port,
      protocol: 'TCP',
    })),
    readinessProbe: {
      httpGet: { path: spec.probes.ready, port: spec.probes.port },
      periodSeconds: 2,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: spec.probes.live, port: spec.probes.port },
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

function deployment(spec: WorkloadSpec, context: WorkloadContext): Manifest {
  const { config } = context;
  const labels = context.labels(spec.name);
  const keyName = config.registry.registryKeyName;
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
          securityContext: {
            runAsNonRoot: true,
            runAsUser: SIDECAR_UID,
            runAsGroup: SIDECAR_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(keyName === '' ? {} : { imagePullSecrets: [{ name: keyName }] }),
          containers: [container(spec, config)],
          ...(spec.volumes.length === 0
            ? {}
            : { volumes: spec.volumes.map((each) => each.volume) }),
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
        probes: ROLE_PROBES,
        resources: { cpu: '100m', memory: '128Mi', memoryLimit: '512Mi' },
        volumes: [],
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

/** nats.conf: the config bus's listeners. TLS with SVIDs is added with the registrar's client. */
export function renderNatsConfig(): string {
  return [
    '# NATS for the mesh: configuration down to the sidecars, acknowledgements back up.',
    `port: ${NATS_CLIENT_PORT}`,
    `http_port: ${NATS_MONITOR_PORT}`,
    `pid_file: "${NATS_PID_DIR}/nats.pid"`,
    '# A whole mesh snapshot travels in one message.',
    'max_payload: 8MB',
    '',
  ].join('\n');
}

function natsImage(config: FullMeshConfig): string {
  return config.registry.disablePublicImages
    ? `${config.registry.server}/${NATS_IMAGE}`
    : NATS_IMAGE;
}

export function buildNats(context: WorkloadContext): Manifest[] {
  return [
    deployment(
      {
        name: NATS_NAME,
        serviceAccount: NATS_SERVICE_ACCOUNT_NAME,
        image: natsImage(context.config),
        args: ['--config', `${NATS_CONFIG_DIR}/${NATS_CONFIG_FILE}`],
        ports: [
          { name: 'client', port: NATS_CLIENT_PORT },
          { name: 'monitor', port: NATS_MONITOR_PORT },
        ],
        probes: { port: NATS_MONITOR_PORT, ready: '/healthz', live: '/' },
        resources: { cpu: '50m', memory: '64Mi', memoryLimit: '256Mi' },
        volumes: [
          {
            volume: { name: 'config', configMap: { name: NATS_CONFIG_MAP_NAME } },
            mountPath: NATS_CONFIG_DIR,
            readOnly: true,
          },
          { volume: { name: 'pid', emptyDir: {} }, mountPath: NATS_PID_DIR, readOnly: false },
        ],
      },
      context,
    ),
    service(
      NATS_NAME,
      NATS_NAME,
      [
        { name: 'client', port: NATS_CLIENT_PORT, targetPort: NATS_CLIENT_PORT },
        { name: 'monitor', port: NATS_MONITOR_PORT, targetPort: NATS_MONITOR_PORT },
      ],
      context,
    ),
  ];
}
