// deploy's flags → the mesh's full configuration. Every flag is checked and every problem is
// reported at once, in flag order, each naming the flag and the value (NGINX Service Mesh's
// wording where it had its own message). Pure: files arrive as contents, read by the caller.
import { quoteGo } from '../../render/help';
import {
  CONTROLLER_IMAGE_NAME,
  INIT_IMAGE_NAME,
  REGISTRAR_CA_SECRET_NAME,
  REGISTRY_KEY_SECRET_NAME,
  SIDECAR_IMAGE_NAME,
} from '../constants';
import {
  ACCESS_CONTROL_MODES,
  CLIENT_MAX_BODY_SIZE_PATTERN,
  MTLS_CA_KEY_TYPES,
  MTLS_MODES,
  NGINX_ERROR_LOG_LEVELS,
  NGINX_LB_METHODS,
  NGINX_LOG_FORMATS,
  PERSISTENT_STORAGE_OPTIONS,
  SPIRE_SERVER_KEY_MANAGERS,
  SUPPORTED_ENVIRONMENTS,
  TELEMETRY_SAMPLER_RATIO_DEFAULT,
} from './deploy-flags';
import type {
  AccessControlMode,
  Environment,
  MeshMtlsMode,
  MtlsCaKeyType,
  NginxErrorLogLevel,
  NginxLbMethod,
  NginxLogFormat,
  PersistentStorage,
  SpireServerKeyManager,
} from './deploy-flags';
import type { DeployInput } from './deploy-input';
import { deployInputFlags, inputKeyOf } from './deploy-input';
import { lbMethodFallbackWarning, openSourceLbMethod } from './lb-method';
import { parseSamplerRatio, parseTelemetryExporter } from './telemetry';
import type {
  DiskUpstreamAuthority,
  FullMeshConfig,
  MeshConfigOutcome,
  MeshConfigRegistry,
  MeshConfigTelemetry,
  MeshSecrets,
  RegistryCredentials,
} from './types';
import { CA_TTL_MIN_SVID_MULTIPLE } from '../registrar/svid-policy';
import { parseUpstreamAuthority } from './upstream-ca';
import { parsePrometheusAddress } from '../traffic-metrics/prometheus-address';

export interface MeshConfigContext {
  /** Namespace of the control plane (-n/--namespace). */
  readonly namespace: string;
  /**
   * Contents of the files the input names, by path: --registry-key, --mtls-upstream-ca-conf and
   * the files that configuration names (upstreamCaFilePaths). A missing path is a problem.
   */
  readonly files: ReadonlyMap<string, string>;
}

interface Problem {
  /** The flag the problem is reported under (its position sets the order). */
  readonly flag: string;
  readonly message: string;
}

const INVALID_CONFIGURATION = 'invalid configuration';

const ENUM_FLAGS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['access-control-mode', ACCESS_CONTROL_MODES],
  ['environment', SUPPORTED_ENVIRONMENTS],
  ['mtls-ca-key-type', MTLS_CA_KEY_TYPES],
  ['mtls-mode', MTLS_MODES],
  ['nginx-error-log-level', NGINX_ERROR_LOG_LEVELS],
  ['nginx-lb-method', NGINX_LB_METHODS],
  ['nginx-log-format', NGINX_LOG_FORMATS],
  ['persistent-storage', PERSISTENT_STORAGE_OPTIONS],
  ['spire-server-key-manager', SPIRE_SERVER_KEY_MANAGERS],
];

interface FormatRule {
  readonly flag: string;
  readonly valid: (value: string) => boolean;
  readonly expected: string;
  /** "" is valid (the flag is off). */
  readonly optional?: boolean;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const IMAGE_REFERENCE = /^[^\s]+$/;

/**
 * NSM's <service-name>.<namespace>:<port>, or (beyond NSM) an http(s) URL for a Prometheus outside
 * the cluster or behind TLS, which the metrics role takes as it is.
 */
function isPrometheusAddress(value: string): boolean {
  if (/^https?:\/\//i.test(value)) return parsePrometheusAddress(value).kind === 'url';
  const match = /^([^.:]+)\.([^.:]+):(\d{1,5})$/.exec(value);
  if (match === null) return false;
  const [, service = '', namespace = '', port = ''] = match;
  const number = Number(port);
  return SERVICE_NAME.test(service) && DNS_LABEL.test(namespace) && number >= 1 && number <= 65_535;
}

const FORMAT_RULES: readonly FormatRule[] = [
  {
    flag: 'client-max-body-size',
    valid: (value) => CLIENT_MAX_BODY_SIZE_PATTERN.test(value),
    expected: 'a size in bytes with an optional k, m or g suffix, e.g. 1m (0 = unlimited)',
  },
  {
    flag: 'image-tag',
    valid: (value) => /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(value),
    expected: 'an image tag (letters, digits, "_", "." and "-", at most 128 characters)',
  },
  {
    flag: 'mtls-ca-ttl',
    valid: (value) => /^(2[4-9]|[3-9][0-9]|[1-9][0-9]{2,5})h$/.test(value),
    expected: 'whole hours from 24h to 999999h',
  },
  {
    flag: 'mtls-svid-ttl',
    valid: (value) => /^[1-9][0-9]{0,5}(h|m)$/.test(value),
    expected: '1 to 999999 hours (h) or minutes (m), e.g. 1h or 30m',
  },
  {
    flag: 'mtls-trust-domain',
    valid: (value) => /^[a-z0-9._-]{1,255}$/.test(value),
    expected: 'a SPIFFE trust domain (lower-case letters, digits, ".", "-" and "_")',
  },
  {
    flag: 'prometheus-address',
    valid: isPrometheusAddress,
    expected: '<service-name>.<namespace>:<service-port>',
    optional: true,
  },
  {
    flag: 'registry-server',
    valid: (value) => /^[^\s/]+(\/[^\s/]+)*$/.test(value) && !value.includes('://'),
    expected: 'hostname[:port][/path] without a scheme or a trailing "/"',
  },
  ...[
    'nginx-mesh-controller-image',
    'nginx-mesh-metrics-image',
    'nginx-mesh-sidecar-image',
    'nginx-mesh-init-image',
    'cert-reloader-image',
  ].map((flag) => ({
    flag,
    valid: (value: string) => IMAGE_REFERENCE.test(value),
    expected: 'an image reference without spaces',
    optional: true,
  })),
];

function text(input: DeployInput, flag: string): string {
  const value = (input as unknown as Readonly<Record<string, unknown>>)[inputKeyOf(flag)];
  return typeof value === 'string' ? value : String(value);
}

function invalidValue(flag: string, value: string, expected: string): Problem {
  return { flag, message: `invalid value ${quoteGo(value)} for --${flag}: must be ${expected}` };
}

/**
 * Values NGINX Service Mesh accepted that this mesh refuses rather than ignores: why, and what to
 * do instead.
 */
const UNSUPPORTED_VALUES: ReadonlyArray<{ flag: string; value: string; reason: string }> = [
  {
    flag: 'environment',
    value: 'openshift',
    reason:
      'this mesh renders no SecurityContextConstraints and is not tested on OpenShift; deploy with --environment kubernetes (the default)',
  },
];

function valueProblems(input: DeployInput): Problem[] {
  const problems: Problem[] = [];
  for (const [flag, allowed] of ENUM_FLAGS) {
    const value = text(input, flag);
    const unsupported = UNSUPPORTED_VALUES.find(
      (each) => each.flag === flag && each.value === value,
    );
    if (unsupported !== undefined) {
      problems.push({
        flag,
        message: `${INVALID_CONFIGURATION}: --${flag} ${value} is not supported: ${unsupported.reason}`,
      });
    } else if (!allowed.includes(value)) {
      problems.push(invalidValue(flag, value, `one of ${allowed.join(', ')}`));
    }
  }
  for (const rule of FORMAT_RULES) {
    const value = text(input, rule.flag);
    if (rule.optional === true && value === '') continue;
    if (!rule.valid(value)) problems.push(invalidValue(rule.flag, value, rule.expected));
  }
  if (parseSamplerRatio(input.telemetrySamplerRatio) === undefined) {
    problems.push(
      invalidValue(
        'telemetry-sampler-ratio',
        String(input.telemetrySamplerRatio),
        'a number from 0 to 1',
      ),
    );
  }
  return problems;
}

/** NGINX Service Mesh's registry checks, then the key file. */
function registryProblems(input: DeployInput, files: ReadonlyMap<string, string>): Problem[] {
  const problems: Problem[] = [];
  if ((input.registryUsername === '') !== (input.registryPassword === '')) {
    problems.push({
      flag: 'registry-password',
      message: `${INVALID_CONFIGURATION}: both --registry-username and --registry-password must be set`,
    });
  }
  if (
    input.registryKey !== '' &&
    (input.registryUsername !== '' || input.registryPassword !== '')
  ) {
    problems.push({
      flag: 'registry-key',
      message: `${INVALID_CONFIGURATION}: cannot set both --registry-key and --registry-username/--registry-password`,
    });
  }
  if (input.registryKey !== '') {
    const key = files.get(input.registryKey);
    const problem =
      key === undefined
        ? 'the file could not be read'
        : key.trim() === ''
          ? 'the file is empty'
          : undefined;
    if (problem !== undefined) {
      problems.push({
        flag: 'registry-key',
        message: `--registry-key ${quoteGo(input.registryKey)}: ${problem}`,
      });
    }
  }
  return problems;
}

function telemetryProblems(input: DeployInput): Problem[] {
  const flag = 'telemetry-exporters';
  if (input.telemetryExporters.length > 1) {
    return [
      { flag, message: `${INVALID_CONFIGURATION}: only one telemetry exporter may be configured` },
    ];
  }
  const [exporter] = input.telemetryExporters;
  if (exporter === undefined) return [];
  const parsed = parseTelemetryExporter(exporter);
  return 'problem' in parsed ? [{ flag, message: parsed.problem }] : [];
}

function upstreamAuthority(
  input: DeployInput,
  files: ReadonlyMap<string, string>,
): { authority?: DiskUpstreamAuthority; problems: readonly Problem[] } {
  const path = input.mtlsUpstreamCaConf;
  if (path === '') return { problems: [] };
  const flag = 'mtls-upstream-ca-conf';
  const conf = files.get(path);
  if (conf === undefined) {
    return {
      problems: [{ flag, message: `--${flag} ${quoteGo(path)}: the file could not be read` }],
    };
  }
  const parsed = parseUpstreamAuthority(path, conf, files);
  if ('problems' in parsed) {
    return { problems: parsed.problems.map((message) => ({ flag, message })) };
  }
  return { authority: parsed.authority, problems: [] };
}

function namespaceProblems(namespace: string): Problem[] {
  return DNS_LABEL.test(namespace)
    ? []
    : [
        invalidValue(
          'namespace',
          namespace,
          'a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)',
        ),
      ];
}

/** Problems sorted by their flag's position among the deploy flags; --namespace comes last. */
function inFlagOrder(problems: readonly Problem[]): string[] {
  const order = deployInputFlags();
  const position = (flag: string): number => {
    const index = order.indexOf(flag);
    return index === -1 ? order.length : index;
  };
  return [...problems]
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => position(a.problem.flag) - position(b.problem.flag) || a.index - b.index)
    .map(({ problem }) => problem.message);
}

function image(input: DeployInput, name: string, override: string): string {
  return override !== '' ? override : `${input.registryServer}/${name}:${input.imageTag}`;
}

function credentials(
  input: DeployInput,
  files: ReadonlyMap<string, string>,
): RegistryCredentials | undefined {
  if (input.registryKey !== '') return { kind: 'key', key: files.get(input.registryKey) ?? '' };
  if (input.registryUsername !== '') {
    return { kind: 'password', username: input.registryUsername, password: input.registryPassword };
  }
  return undefined;
}

function registry(input: DeployInput, withCredentials: boolean): MeshConfigRegistry {
  const controllerImage = image(input, CONTROLLER_IMAGE_NAME, input.nginxMeshControllerImage);
  return {
    server: input.registryServer,
    imageTag: input.imageTag,
    imagePullPolicy: input.pullAlways ? 'Always' : 'IfNotPresent',
    sidecarImage: image(input, SIDECAR_IMAGE_NAME, input.nginxMeshSidecarImage),
    sidecarInitImage: image(input, INIT_IMAGE_NAME, input.nginxMeshInitImage),
    registryKeyName: withCredentials ? REGISTRY_KEY_SECRET_NAME : '',
    disablePublicImages: input.disablePublicImages,
    controllerImage,
    metricsImage:
      input.nginxMeshMetricsImage !== '' ? input.nginxMeshMetricsImage : controllerImage,
  };
}

function telemetry(input: DeployInput): MeshConfigTelemetry {
  const [exporter] = input.telemetryExporters;
  if (exporter === undefined) return {};
  const parsed = parseTelemetryExporter(exporter);
  if ('problem' in parsed) return {};
  return {
    exporters: { otlp: parsed },
    samplerRatio: parseSamplerRatio(input.telemetrySamplerRatio) ?? 0,
  };
}

/**
 * Where the registrar's CA lives whatever --persistent-storage and --spire-server-key-manager say
 * (NGINX Service Mesh's SPIRE server kept it on a PersistentVolume, or only in memory).
 */
function caStorageWarnings(input: DeployInput, namespace: string): string[] {
  const secret = `Secret ${namespace}/${REGISTRAR_CA_SECRET_NAME}`;
  const warnings: string[] = [];
  if (input.persistentStorage === 'off') {
    warnings.push(
      `--persistent-storage off: the registrar's CA persists all the same, in ${secret}, and survives restarts; the value is only stored`,
    );
  }
  if (input.persistentStorage === 'on') {
    warnings.push(
      `--persistent-storage on: no PersistentVolume is used (no StorageClass is needed); the registrar's CA persists in ${secret}`,
    );
  }
  if (input.spireServerKeyManager === 'memory') {
    warnings.push(
      `--spire-server-key-manager memory: the CA's private keys are not kept in memory only; the registrar stores them in ${secret}, where they survive restarts`,
    );
  }
  return warnings;
}

/** Non-fatal findings: what this mesh does differently from what was asked. */
function warningsFor(input: DeployInput, namespace: string): string[] {
  const warnings: string[] = [];
  const fallback = lbMethodFallbackWarning(
    input.nginxLbMethod as NginxLbMethod,
    '--nginx-lb-method',
  );
  if (fallback !== undefined) warnings.push(fallback);
  if (input.enableUdp) {
    warnings.push('--enable-udp: UDP traffic is not proxied yet; it keeps bypassing the sidecars');
  }
  if (
    input.telemetryExporters.length === 0 &&
    parseSamplerRatio(input.telemetrySamplerRatio) !==
      parseSamplerRatio(TELEMETRY_SAMPLER_RATIO_DEFAULT)
  ) {
    warnings.push('--telemetry-sampler-ratio has no effect without --telemetry-exporters');
  }
  if (input.certReloaderImage !== '') {
    warnings.push(
      '--cert-reloader-image is ignored: this mesh has no separate cert reloader image',
    );
  }
  return [...warnings, ...caStorageWarnings(input, namespace)];
}

export function fullConfig(
  input: DeployInput,
  namespace: string,
  withCredentials: boolean,
): FullMeshConfig {
  return {
    mtls: {
      mode: input.mtlsMode as MeshMtlsMode,
      caKeyType: input.mtlsCaKeyType as MtlsCaKeyType,
      caTTL: input.mtlsCaTtl,
      svidTTL: input.mtlsSvidTtl,
      trustDomain: input.mtlsTrustDomain,
      persistentStorage: input.persistentStorage as PersistentStorage,
      spireServerKeyManager: input.spireServerKeyManager as SpireServerKeyManager,
    },
    accessControlMode: input.accessControlMode as AccessControlMode,
    clientMaxBodySize: input.clientMaxBodySize,
    environment: input.environment as Environment,
    namespace,
    nginxErrorLogLevel: input.nginxErrorLogLevel as NginxErrorLogLevel,
    nginxLBMethod: openSourceLbMethod(input.nginxLbMethod as NginxLbMethod),
    nginxLogFormat: input.nginxLogFormat as NginxLogFormat,
    prometheusAddress: input.prometheusAddress,
    registry: registry(input, withCredentials),
    telemetry: telemetry(input),
    enableUDP: input.enableUdp,
    transparent: false,
  };
}

/** Hours in a TTL of the flags' formats (Nh or Nm), or undefined when it has neither. */
function ttlHours(value: string): number | undefined {
  const match = /^(\d+)(h|m)$/.exec(value);
  if (match === null) return undefined;
  return Number(match[1]) / (match[2] === 'h' ? 1 : 60);
}

/** The registrar's CA must live several SVID lifetimes (it refuses to start otherwise). */
function ttlProblems(input: DeployInput): Problem[] {
  const valid = (flag: string, value: string): boolean =>
    FORMAT_RULES.find((rule) => rule.flag === flag)?.valid(value) === true;
  if (!valid('mtls-ca-ttl', input.mtlsCaTtl) || !valid('mtls-svid-ttl', input.mtlsSvidTtl)) {
    return [];
  }
  const ca = ttlHours(input.mtlsCaTtl);
  const svid = ttlHours(input.mtlsSvidTtl);
  if (ca === undefined || svid === undefined || ca >= CA_TTL_MIN_SVID_MULTIPLE * svid) return [];
  return [
    {
      flag: 'mtls-ca-ttl',
      message: `${INVALID_CONFIGURATION}: --mtls-ca-ttl (${input.mtlsCaTtl}) must be at least ${CA_TTL_MIN_SVID_MULTIPLE} times --mtls-svid-ttl (${input.mtlsSvidTtl}), so that a new CA reaches every workload before it signs`,
    },
  ];
}

/**
 * The mesh's configuration from deploy's flags, with warnings; or every problem with them, in flag
 * order. Enumerations are checked here too, so a caller that skips the parser's checks (an
 * upgrade replaying stored values, a test) gets the same answers.
 */
export function buildMeshConfig(input: DeployInput, context: MeshConfigContext): MeshConfigOutcome {
  const upstream = upstreamAuthority(input, context.files);
  const problems = [
    ...valueProblems(input),
    ...upstream.problems,
    ...registryProblems(input, context.files),
    ...telemetryProblems(input),
    ...ttlProblems(input),
    ...namespaceProblems(context.namespace),
  ];
  if (problems.length > 0) return { problems: inFlagOrder(problems) };
  const registryCredentials = credentials(input, context.files);
  const secrets: MeshSecrets = {
    ...(registryCredentials === undefined ? {} : { registry: registryCredentials }),
    ...(upstream.authority === undefined ? {} : { upstreamAuthority: upstream.authority }),
  };
  return {
    config: fullConfig(input, context.namespace, registryCredentials !== undefined),
    secrets,
    warnings: warningsFor(input, context.namespace),
  };
}
