// The chart's values: NGINX Service Mesh's Helm value names, deploy's defaults, a JSON schema with
// deploy's rules, and the map from deploy's flags to values. Pure.
import { CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME } from '../constants';
import {
  ACCESS_CONTROL_MODES,
  MTLS_CA_KEY_TYPES,
  MTLS_MODES,
  NGINX_ERROR_LOG_LEVELS,
  NGINX_LB_METHODS,
  NGINX_LOG_FORMATS,
  PERSISTENT_STORAGE_OPTIONS,
  SPIRE_SERVER_KEY_MANAGERS,
} from '../mesh-config/deploy-flags';
import type { DeployInput } from '../mesh-config/deploy-input';
import { defaultDeployInput } from '../mesh-config/deploy-input';
import { parseSamplerRatio, parseTelemetryExporter } from '../mesh-config/telemetry';
import type { MeshSecrets } from '../mesh-config/types';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The chart's values for what deploy was asked (the files it names already read into secrets). */
export function valuesOf(input: DeployInput, secrets: MeshSecrets): { [key: string]: Json } {
  const registry = secrets.registry;
  const upstream = secrets.upstreamAuthority;
  const [exporter] = input.telemetryExporters;
  const otlp = exporter === undefined ? undefined : parseTelemetryExporter(exporter);
  const telemetry: { [key: string]: Json } =
    otlp === undefined || 'problem' in otlp
      ? {}
      : {
          exporters: { otlp: { host: otlp.host, port: otlp.port } },
          samplerRatio: parseSamplerRatio(input.telemetrySamplerRatio) ?? 0,
        };
  return {
    registry: {
      server: input.registryServer,
      imageTag: input.imageTag,
      key: registry?.kind === 'key' ? registry.key : '',
      username: registry?.kind === 'password' ? registry.username : '',
      password: registry?.kind === 'password' ? registry.password : '',
      disablePublicImages: input.disablePublicImages,
      imagePullPolicy: input.pullAlways ? 'Always' : 'IfNotPresent',
    },
    accessControlMode: input.accessControlMode,
    environment: input.environment,
    enableUDP: input.enableUdp,
    nginxErrorLogLevel: input.nginxErrorLogLevel,
    nginxLogFormat: input.nginxLogFormat,
    nginxLBMethod: input.nginxLbMethod,
    clientMaxBodySize: input.clientMaxBodySize,
    prometheusAddress: input.prometheusAddress,
    telemetry,
    mtls: {
      mode: input.mtlsMode,
      caKeyType: input.mtlsCaKeyType,
      caTTL: input.mtlsCaTtl,
      svidTTL: input.mtlsSvidTtl,
      trustDomain: input.mtlsTrustDomain,
      persistentStorage: input.persistentStorage,
      spireServerKeyManager: input.spireServerKeyManager,
      upstreamAuthority:
        upstream === undefined
          ? {}
          : {
              disk: {
                cert: upstream.cert,
                key: upstream.key,
                ...(upstream.bundle === '' ? {} : { bundle: upstream.bundle }),
              },
            },
    },
  };
}

/** values.yaml: every value at deploy's default. */
export function defaultValues(version: string): { [key: string]: Json } {
  return valuesOf(defaultDeployInput(version), {});
}

// Patterns deploy applies to the same values (src/manifests/mesh-config/model.ts); a unit test
// holds the two to the same answers.
export const VALUE_PATTERNS = {
  clientMaxBodySize: '^\\d+[kKmMgG]?$',
  imageTag: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  caTTL: '^(2[4-9]|[3-9][0-9]|[1-9][0-9]{2,5})h$',
  svidTTL: '^[1-9][0-9]{0,5}(h|m)$',
  trustDomain: '^[a-z0-9._-]{1,255}$',
  registryServer: '^[^\\s/]+(/[^\\s/]+)*$',
  prometheusAddress:
    '^$|^https?://[^\\s]+$|^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$',
} as const;

const text = (description: string, pattern?: string): Json => ({
  type: 'string',
  description,
  ...(pattern === undefined ? {} : { pattern }),
});
const oneOf = (description: string, values: readonly string[]): Json => ({
  type: 'string',
  description,
  enum: [...values],
});
const flag = (description: string): Json => ({ type: 'boolean', description });

const IMAGES = [CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME].join(', ');

/** values.schema.json: Helm refuses values that deploy would refuse, naming the value. */
export function valuesSchema(): Json {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'NGINX Service Mesh chart values',
    type: 'object',
    additionalProperties: false,
    required: ['registry', 'mtls', 'accessControlMode', 'environment', 'nginxLBMethod'],
    properties: {
      global: { type: 'object', description: 'Helm global values (unused).' },
      registry: {
        type: 'object',
        additionalProperties: false,
        required: ['server', 'imageTag', 'imagePullPolicy'],
        properties: {
          server: text(
            `Registry (hostname[:port][/path]) of ${IMAGES}.`,
            VALUE_PATTERNS.registryServer,
          ),
          imageTag: text(`Tag of ${IMAGES}.`, VALUE_PATTERNS.imageTag),
          key: text('JSON key for the registry (user _json_key); not with username/password.'),
          username: text('Registry user; needs password.'),
          password: text('Registry password; needs username.'),
          disablePublicImages: flag('Pull NATS from the registry too, not from its public name.'),
          imagePullPolicy: oneOf('Pull policy of every mesh image.', ['Always', 'IfNotPresent']),
        },
      },
      accessControlMode: oneOf('Access to Services no TrafficTarget names.', ACCESS_CONTROL_MODES),
      environment: oneOf('Only kubernetes: nothing for OpenShift is rendered.', ['kubernetes']),
      enableUDP: flag('UDP is not proxied: it keeps bypassing the sidecars.'),
      nginxErrorLogLevel: oneOf('Sidecar NGINX error log level.', NGINX_ERROR_LOG_LEVELS),
      nginxLogFormat: oneOf('Sidecar access log format.', NGINX_LOG_FORMATS),
      nginxLBMethod: oneOf(
        'Load-balancing method; least_time ones fall back to least_conn.',
        NGINX_LB_METHODS,
      ),
      clientMaxBodySize: text(
        'NGINX client_max_body_size (0 = unlimited).',
        VALUE_PATTERNS.clientMaxBodySize,
      ),
      prometheusAddress: text(
        'Prometheus for the metrics API: <service>.<namespace>:<port> or an http(s) URL.',
        VALUE_PATTERNS.prometheusAddress,
      ),
      telemetry: {
        type: 'object',
        additionalProperties: false,
        properties: {
          exporters: {
            type: 'object',
            additionalProperties: false,
            required: ['otlp'],
            properties: {
              otlp: {
                type: 'object',
                additionalProperties: false,
                required: ['host', 'port'],
                properties: {
                  host: { type: 'string', minLength: 1 },
                  port: { type: 'integer', minimum: 1, maximum: 65535 },
                },
              },
            },
          },
          samplerRatio: { type: 'number', minimum: 0, maximum: 1 },
        },
      },
      mtls: {
        type: 'object',
        additionalProperties: false,
        required: ['mode', 'caKeyType', 'caTTL', 'svidTTL', 'trustDomain'],
        properties: {
          mode: oneOf('mTLS between sidecars.', MTLS_MODES),
          caKeyType: oneOf('Key type of the mesh CA.', MTLS_CA_KEY_TYPES),
          caTTL: text('CA lifetime, whole hours 24h-999999h.', VALUE_PATTERNS.caTTL),
          svidTTL: text('Workload certificate lifetime (h or m).', VALUE_PATTERNS.svidTTL),
          trustDomain: text('SPIFFE trust domain.', VALUE_PATTERNS.trustDomain),
          persistentStorage: oneOf('Stored in the mesh configuration.', PERSISTENT_STORAGE_OPTIONS),
          spireServerKeyManager: oneOf(
            'Stored in the mesh configuration.',
            SPIRE_SERVER_KEY_MANAGERS,
          ),
          upstreamAuthority: {
            type: 'object',
            description: 'Only disk: the PEM texts of the upstream CA.',
            additionalProperties: false,
            properties: {
              disk: {
                type: 'object',
                additionalProperties: false,
                required: ['cert', 'key'],
                properties: {
                  cert: { type: 'string', minLength: 1 },
                  key: { type: 'string', minLength: 1 },
                  bundle: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
  };
}
