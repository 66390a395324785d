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
  NATS_AGENT_USER,
  NATS_CLIENT_PORT,
  NATS_CONFIG_MAP_NAME,
  NATS_CONFIG_SUBJECT,
  NATS_CONTROLLER_PASSWORD_KEY,
  NATS_CONTROLLER_USER,
  NATS_CREDENTIALS_SECRET_NAME,
  NATS_IMAGE,
  NATS_INBOX_SUBJECTS,
  NATS_MONITOR_PORT,
  NATS_NAME,
  NATS_PING_SUBJECT,
  NATS_SERVICE_ACCOUNT_NAME,
  NATS_SUBSCRIPTION_SUBJECT,
  REGISTRAR_API_PORT,
  REGISTRAR_NAME,
  SIDECAR_UID,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
  UPSTREAM_CA_SECRET_NAME,
  WEBHOOK_PORT,
  WEBHOOK_SERVICE_NAME,
} from '../constants';
import { buildIdentityVolume } from '../identity-volume';
import type { FullMeshConfig } from '../mesh-config/types';
import type { Labels, Manifest } from './objects';
import { meta, NAME_LABEL } from './objects';

/** Where the registrar finds the upstream CA's files (Secret UPSTREAM_CA_SECRET_NAME). */
export const UPSTREAM_CA_MOUNT_PATH = '/run/nginx-mesh/upstream-ca';
const NATS_CONFIG_DIR = '/etc/nats-config';
export const NATS_CONFIG_FILE = 'nats.conf';
const NATS_PID_DIR = '/var/run/nats';
const NATS_PID_FILE = `${NATS_PID_DIR}/nats.pid`;
/** The NATS server's SVID and trust bundle, written by the cert-reloader (memory only). */
const NATS_TLS_DIR = '/etc/nats-tls';
/** Environment variable of the NATS server holding the controller's password. */
export const NATS_CONTROLLER_PASSWORD_ENV = 'NATS_CONTROLLER_PASSWORD';

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

/** The controller's NATS password, for nats-server's configuration and for the controller. */
function natsPasswordEnv(): object {
  return {
    name: NATS_CONTROLLER_PASSWORD_ENV,
    valueFrom: {
      secretKeyRef: { name: NATS_CREDENTIALS_SECRET_NAME, key: NATS_CONTROLLER_PASSWORD_KEY },
    },
  };
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
          natsPasswordEnv(),
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

/**
 * nats.conf: the config bus. Every client must present an SVID from the mesh CA (TLS with
 * `verify`). A client without credentials is an agent: it may subscribe to configuration and
 * publish its subscriptions and acknowledgements only. The controller signs in with the password
 * deploy generated (in the server's environment, never in this file) and may publish
 * configuration and read acknowledgements. SIGHUP reloads the certificate, key and bundle.
 */
export interface NatsLayout {
  /** Listen address of the client port; all interfaces when absent. */
  readonly host?: string;
  readonly clientPort: number;
  readonly monitorPort: number;
  readonly pidFile: string;
  /** Directory of the SVID (SVID_FILE_NAME) and trust bundle (SVID_BUNDLE_FILE_NAME). */
  readonly tlsDir: string;
}

/** Where things are in the NATS pod. */
export const NATS_POD_LAYOUT: NatsLayout = {
  clientPort: NATS_CLIENT_PORT,
  monitorPort: NATS_MONITOR_PORT,
  pidFile: NATS_PID_FILE,
  tlsDir: NATS_TLS_DIR,
};

export function renderNatsConfig(layout: NatsLayout = NATS_POD_LAYOUT): string {
  const list = (subjects: readonly string[]): string =>
    `[${subjects.map((subject) => `"${subject}"`).join(', ')}]`;
  const permissions = (
    publish: readonly string[],
    subscribe: readonly string[],
    answers: boolean,
  ): string =>
    `permissions: { publish: ${list(publish)}, subscribe: ${list(subscribe)}${answers ? ', allow_responses: true' : ''} }`;
  // The controller publishes configuration and pings and answers subscribe requests; an agent
  // publishes subscriptions and acks and reads configuration, pings and the replies to its own
  // requests, never another agent's acks.
  const controller = permissions(
    [NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT],
    [NATS_SUBSCRIPTION_SUBJECT],
    true,
  );
  const agent = permissions(
    [NATS_SUBSCRIPTION_SUBJECT],
    [NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT, NATS_INBOX_SUBJECTS],
    false,
  );
  return [
    '# NATS for the mesh: configuration down to the sidecars, acknowledgements back up.',
    ...(layout.host === undefined ? [] : [`host: "${layout.host}"`]),
    `port: ${layout.clientPort}`,
    `http_port: ${layout.monitorPort}`,
    `pid_file: "${layout.pidFile}"`,
    '# A whole mesh snapshot travels in one message.',
    'max_payload: 8MB',
    '# The SVID (certificate chain and key in one file) and trust bundle of the cert-reloader.',
    'tls {',
    `  cert_file: "${layout.tlsDir}/${SVID_FILE_NAME}"`,
    `  key_file: "${layout.tlsDir}/${SVID_FILE_NAME}"`,
    `  ca_file: "${layout.tlsDir}/${SVID_BUNDLE_FILE_NAME}"`,
    '  verify: true',
    '  timeout: 2',
    '}',
    'authorization {',
    '  users: [',
    `    { user: "${NATS_CONTROLLER_USER}", password: $${NATS_CONTROLLER_PASSWORD_ENV}, ${controller} }`,
    `    { user: "${NATS_AGENT_USER}", ${agent} }`,
    '  ]',
    '}',
    `no_auth_user: "${NATS_AGENT_USER}"`,
    '',
  ].join('\n');
}

function natsImage(config: FullMeshConfig): string {
  return config.registry.disablePublicImages
    ? `${config.registry.server}/${NATS_IMAGE}`
    : NATS_IMAGE;
}

const NATS_TLS_VOLUME = { name: 'tls', emptyDir: { medium: 'Memory' } };
const NATS_PID_VOLUME = { name: 'pid', emptyDir: {} };

/**
 * The cert-reloader as a native sidecar: its startup probe passes once the first SVID is on
 * disk, and only then does the kubelet start nats-server. It signals NATS through the shared
 * process namespace; both run as the same user, so no capability is needed.
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
        `--pid-file=${NATS_PID_FILE}`,
      ],
      ports: [HEALTH],
      probes: ROLE_PROBES,
      resources: { cpu: '10m', memory: '48Mi', memoryLimit: '192Mi' },
      volumes: [
        { volume: IDENTITY_VOLUME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
        { volume: NATS_TLS_VOLUME, mountPath: NATS_TLS_DIR, readOnly: false },
        { volume: NATS_PID_VOLUME, mountPath: NATS_PID_DIR, readOnly: true },
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
        args: ['--config', `${NATS_CONFIG_DIR}/${NATS_CONFIG_FILE}`],
        env: [natsPasswordEnv()],
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
          { volume: NATS_PID_VOLUME, mountPath: NATS_PID_DIR, readOnly: false },
          { volume: NATS_TLS_VOLUME, mountPath: NATS_TLS_DIR, readOnly: true },
        ],
      },
      context,
      {
        initContainers: [certReloader(context)],
        volumes: [IDENTITY_VOLUME],
        shareProcessNamespace: true,
      },
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
