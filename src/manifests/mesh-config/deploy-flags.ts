// The flags of `nginx-meshctl deploy`, as data: NGINX Service Mesh 2.0's names, types, defaults,
// usage text and valid values, so scripts written for it keep working. One difference:
// --nginx-lb-method defaults to least_conn (see LB_METHOD_DEFAULT). Where this mesh does not do
// what NGINX Service Mesh did with a value, the usage text says so, and buildMeshConfig warns
// about it or refuses it. Pure.
import {
  CONTROLLER_IMAGE_NAME,
  DEFAULT_REGISTRY_SERVER,
  DEFAULT_TRUST_DOMAIN,
  INIT_IMAGE_NAME,
  NATS_IMAGE,
  REGISTRAR_CA_SECRET_NAME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_IMAGE_NAME,
} from '../constants';
import type { FlagSpec } from '../flag-spec';

export const ACCESS_CONTROL_MODES = ['allow', 'deny'] as const;
/** NGINX Service Mesh's environments; the stored configuration may name either. */
export const ENVIRONMENTS = ['kubernetes', 'openshift'] as const;
/** The environments this mesh deploys into: it renders no OpenShift SecurityContextConstraints. */
export const SUPPORTED_ENVIRONMENTS = ['kubernetes'] as const;
export const MTLS_CA_KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'] as const;
export const MTLS_MODES = ['off', 'permissive', 'strict'] as const;
/** In severity order, as NGINX Service Mesh prints them (not sorted). */
export const NGINX_ERROR_LOG_LEVELS = [
  'debug',
  'info',
  'notice',
  'warn',
  'error',
  'crit',
  'alert',
  'emerg',
] as const;
/** NGINX Service Mesh's ten methods, sorted; the least_time ones need NGINX Plus. */
export const NGINX_LB_METHODS = [
  'least_conn',
  'least_time',
  'least_time last_byte',
  'least_time last_byte inflight',
  'random',
  'random two',
  'random two least_conn',
  'random two least_time',
  'random two least_time=last_byte',
  'round_robin',
] as const;
export const NGINX_LOG_FORMATS = ['default', 'json'] as const;
/**
 * A client_max_body_size value as the flag, the pod annotation and the MeshConfig CRD accept it:
 * bytes with an optional k, m or g suffix (0 = unlimited).
 */
export const CLIENT_MAX_BODY_SIZE_PATTERN = /^\d+[kKmMgG]?$/;
export const PERSISTENT_STORAGE_OPTIONS = ['auto', 'off', 'on'] as const;
export const SPIRE_SERVER_KEY_MANAGERS = ['disk', 'memory'] as const;

export type AccessControlMode = (typeof ACCESS_CONTROL_MODES)[number];
export type Environment = (typeof ENVIRONMENTS)[number];
export type MtlsCaKeyType = (typeof MTLS_CA_KEY_TYPES)[number];
export type MeshMtlsMode = (typeof MTLS_MODES)[number];
export type NginxErrorLogLevel = (typeof NGINX_ERROR_LOG_LEVELS)[number];
export type NginxLbMethod = (typeof NGINX_LB_METHODS)[number];
export type NginxLogFormat = (typeof NGINX_LOG_FORMATS)[number];
export type PersistentStorage = (typeof PERSISTENT_STORAGE_OPTIONS)[number];
export type SpireServerKeyManager = (typeof SPIRE_SERVER_KEY_MANAGERS)[number];

/**
 * Default load-balancing method. NGINX Service Mesh defaults to least_time, which open-source
 * NGINX does not have (NGINX Plus only); least_conn is its closest open-source equivalent and is
 * what a least_time choice falls back to.
 */
export const LB_METHOD_DEFAULT: NginxLbMethod = 'least_conn';

/** Default --telemetry-sampler-ratio (NGINX Service Mesh's 0.01), as the flag's text. */
export const TELEMETRY_SAMPLER_RATIO_DEFAULT = '0.01';

/** The images --image-tag and --registry-server apply to, sorted. */
const REGISTRY_IMAGES = [CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME].join(', ');

/** pflag usage text continues on the next help line after "\n\t\t", as NGINX Service Mesh wrote it. */
function usage(first: string, ...more: readonly string[]): string {
  return [first, ...more].join('\n\t\t');
}

function validValues(values: readonly string[]): string {
  return `Valid values: ${values.join(', ')}`;
}

/** A flag with a fixed set of values; `notes` follow the valid values in its usage text. */
function choice(
  long: string,
  first: string,
  values: readonly string[],
  defaultValue: string,
  ...notes: readonly string[]
): FlagSpec {
  return {
    long,
    type: 'string',
    usage: usage(first, validValues(values), ...notes),
    defaultValue,
    choices: values,
  };
}

function hiddenImage(long: string, what: string, ...notes: readonly string[]): FlagSpec {
  return { long, type: 'string', usage: usage(`${what} image URI`, ...notes), hidden: true };
}

/**
 * Every deploy flag, public ones sorted by name as help prints them, then the hidden ones.
 * imageTag is the default of --image-tag: this client's own version, so that a client deploys the
 * control plane and sidecars it was released with (NGINX Service Mesh's chart did the same).
 */
export function buildDeployFlags(imageTag: string): readonly FlagSpec[] {
  return [
    choice(
      'access-control-mode',
      'default access control mode for service-to-service communication',
      ACCESS_CONTROL_MODES,
      'allow',
    ),
    {
      long: 'client-max-body-size',
      type: 'string',
      usage: 'NGINX client max body size',
      defaultValue: '1m',
    },
    {
      long: 'disable-public-images',
      type: 'bool',
      usage: usage(
        "don't pull third party images from public repositories",
        `Affects: nats (<registry-server>/${NATS_IMAGE} instead of ${NATS_IMAGE})`,
      ),
    },
    {
      long: 'enable-udp',
      type: 'bool',
      usage: usage(
        'enable UDP traffic proxying (beta); Linux kernel 4.18 or greater is required',
        'Not supported: UDP traffic bypasses the sidecars; the value is only stored, with a warning',
      ),
    },
    // No choices: openshift must reach buildMeshConfig, which says why it is refused.
    {
      long: 'environment',
      type: 'string',
      usage: usage(
        'environment to deploy the mesh into',
        validValues(SUPPORTED_ENVIRONMENTS),
        'openshift is refused: no SecurityContextConstraints are rendered',
      ),
      defaultValue: 'kubernetes',
    },
    {
      long: 'image-tag',
      type: 'string',
      usage: usage('tag used for pulling images from registry', `Affects: ${REGISTRY_IMAGES}`),
      defaultValue: imageTag,
    },
    choice(
      'mtls-ca-key-type',
      'the key type used for the SPIRE Server CA',
      MTLS_CA_KEY_TYPES,
      'ec-p256',
    ),
    {
      long: 'mtls-ca-ttl',
      type: 'string',
      usage: 'the CA/signing key TTL in hours(h). Min value 24h. Max value 999999h.',
      defaultValue: '720h',
    },
    choice('mtls-mode', 'mTLS mode for pod-to-pod communication', MTLS_MODES, 'permissive'),
    {
      long: 'mtls-svid-ttl',
      type: 'string',
      usage:
        'the TTL of certificates issued to workloads in hours(h) or minutes(m). Max value is 999999.',
      defaultValue: '1h',
    },
    {
      long: 'mtls-trust-domain',
      type: 'string',
      usage: 'the trust domain of the NGINX Service Mesh',
      defaultValue: DEFAULT_TRUST_DOMAIN,
    },
    {
      long: 'mtls-upstream-ca-conf',
      type: 'string',
      usage: usage(
        'the upstream certificate authority configuration file',
        'Only upstreamAuthority "disk" is supported; the other kinds are refused',
      ),
    },
    choice('nginx-error-log-level', 'NGINX error log level', NGINX_ERROR_LOG_LEVELS, 'warn'),
    {
      long: 'nginx-lb-method',
      type: 'string',
      usage: usage(
        'NGINX load balancing method',
        validValues(NGINX_LB_METHODS),
        'least_time methods need NGINX Plus: they fall back to least_conn, with a warning',
      ),
      defaultValue: LB_METHOD_DEFAULT,
      choices: NGINX_LB_METHODS,
    },
    choice(
      'nginx-log-format',
      'NGINX access log format',
      NGINX_LOG_FORMATS,
      'default',
      `Each sidecar logs one line per HTTP request and TCP connection to its stdout (kubectl logs <pod> -c ${SIDECAR_CONTAINER_NAME}):`,
      "default is nginx's combined format followed by the mesh's fields, json one object per line",
    ),
    choice(
      'persistent-storage',
      'persistent storage for the CA',
      PERSISTENT_STORAGE_OPTIONS,
      'auto',
      `No PersistentVolume is used: the registrar keeps its CA in Secret ${REGISTRAR_CA_SECRET_NAME},`,
      'which survives restarts, whatever the value; off and on are only stored, with a warning',
    ),
    {
      long: 'prometheus-address',
      type: 'string',
      usage: usage(
        'the address of a Prometheus server deployed in your Kubernetes cluster',
        'Address should be in the format <service-name>.<namespace>:<service-port>, or an http(s) URL for a Prometheus outside the cluster',
      ),
    },
    {
      long: 'registry-key',
      type: 'string',
      usage: usage(
        'path to JSON Key file for accessing private GKE registry',
        'Cannot be used with --registry-username or --registry-password',
      ),
    },
    {
      long: 'registry-password',
      type: 'string',
      usage: usage(
        'password for accessing private registry',
        'Requires --registry-username to be set. Cannot be used with --registry-key',
      ),
    },
    {
      long: 'registry-server',
      type: 'string',
      usage: usage(
        'hostname:port (if needed) for registry and path to images',
        `Affects: ${REGISTRY_IMAGES}`,
      ),
      defaultValue: DEFAULT_REGISTRY_SERVER,
    },
    {
      long: 'registry-username',
      type: 'string',
      usage: usage(
        'username for accessing private registry',
        'Requires --registry-password to be set. Cannot be used with --registry-key',
      ),
    },
    choice(
      'spire-server-key-manager',
      "storage of the CA's private keys",
      SPIRE_SERVER_KEY_MANAGERS,
      'disk',
      `The registrar keeps them in Secret ${REGISTRAR_CA_SECRET_NAME} either way; memory is only stored, with a warning`,
    ),
    {
      long: 'telemetry-exporters',
      type: 'stringArray',
      usage: usage(
        'list of telemetry exporter key-value configurations',
        'Format: "type=<exporter_type>,host=<exporter_host>,port=<exporter_port>".',
        'Type, host, and port are required. Only type "otlp" exporter is supported.',
        'Optional protocol=grpc (the default, usually port 4317) or protocol=http (OTLP/HTTP with protobuf, usually port 4318).',
        'Every sidecar then records a span per HTTP request and gRPC call and propagates W3C traceparent',
      ),
    },
    {
      long: 'telemetry-sampler-ratio',
      type: 'string',
      usage: usage(
        'the percentage of traces that are processed and exported to the telemetry backend.',
        'Float between 0 and 1',
        'It samples the traces a sidecar starts; a request whose traceparent says sampled (or not) is recorded (or not) as it says.',
        'Without --telemetry-exporters it has no effect, with a warning',
      ),
      defaultValue: TELEMETRY_SAMPLER_RATIO_DEFAULT,
    },
    {
      long: 'pull-always',
      short: 'p',
      type: 'bool',
      usage: "set imagePullPolicy to be 'always'",
      hidden: true,
    },
    {
      long: 'dry-run',
      type: 'bool',
      usage: usage('render the manifest and print to stdout', "Doesn't deploy anything"),
      hidden: true,
    },
    hiddenImage('nginx-mesh-controller-image', 'NGINX Service Mesh Controller'),
    hiddenImage('nginx-mesh-metrics-image', 'NGINX Service Mesh metrics API'),
    hiddenImage('nginx-mesh-sidecar-image', 'NGINX Service Mesh sidecar'),
    hiddenImage('nginx-mesh-init-image', 'NGINX Service Mesh init'),
    hiddenImage(
      'cert-reloader-image',
      'NGINX Service Mesh cert reloader',
      'Ignored, with a warning: the cert reloader runs from the controller image',
    ),
    {
      long: 'cleanup-on-error',
      type: 'bool',
      usage: usage(
        'automatically remove Service Mesh pods if an error occurs during deployment',
        'This is a hidden flag for development purposes',
      ),
      defaultValue: true,
      hidden: true,
    },
  ];
}
