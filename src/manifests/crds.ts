// The mesh's CustomResourceDefinitions (apiextensions.k8s.io/v1) with structural schemas, as
// NGINX Service Mesh shipped them: SMI TrafficSplit v1alpha3, TrafficTarget v1alpha2,
// HTTPRouteGroup and TCPRoute v1alpha3; RateLimit v1alpha1 + v1alpha2 and CircuitBreaker v1alpha1;
// MeshConfig and MeshConfigClass v1alpha2. Pure; the same objects for deploy, dry runs and tests.
import { OTLP_PROTOCOLS } from './mesh-config/types';
import { PART_OF_LABEL, PART_OF_VALUE } from './constants';
import {
  CLIENT_MAX_BODY_SIZE_PATTERN,
  ACCESS_CONTROL_MODES,
  MTLS_CA_KEY_TYPES,
  MTLS_MODES,
  NGINX_ERROR_LOG_LEVELS,
  NGINX_LB_METHODS,
  NGINX_LOG_FORMATS,
} from './mesh-config/deploy-flags';

type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: 'string', ...extra });
const int = (extra: Schema = {}): Schema => ({ type: 'integer', ...extra });
const obj = (
  properties: Record<string, Schema>,
  required: readonly string[] = [],
  extra: Schema = {},
): Schema => ({
  type: 'object',
  properties,
  ...(required.length === 0 ? {} : { required: [...required] }),
  ...extra,
});
const arr = (items: Schema, extra: Schema = {}): Schema => ({ type: 'array', items, ...extra });

interface CrdVersion {
  readonly name: string;
  readonly storage: boolean;
  readonly spec: Schema;
  readonly status?: Schema;
  readonly columns?: readonly { name: string; type: string; jsonPath: string }[];
}

interface CrdDefinition {
  readonly group: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly scope: 'Namespaced' | 'Cluster';
  readonly versions: readonly CrdVersion[];
}

/** A subject of SMI access and NSM policies: a workload or identity by kind and name. */
const subject = (kinds?: readonly string[]): Schema =>
  obj(
    {
      kind: str({ minLength: 1, ...(kinds === undefined ? {} : { enum: [...kinds] }) }),
      name: str({ minLength: 1 }),
      namespace: str(),
    },
    ['kind', 'name'],
  );

/**
 * Every policy kind has a status subresource: the controller writes an Accepted condition there
 * (and users may not, with write access to the object alone).
 */
const POLICY_STATUS: Schema = obj({}, [], { 'x-kubernetes-preserve-unknown-fields': true });

const trafficSplit: CrdDefinition = {
  group: 'split.smi-spec.io',
  kind: 'TrafficSplit',
  plural: 'trafficsplits',
  singular: 'trafficsplit',
  shortNames: ['ts'],
  scope: 'Namespaced',
  versions: [
    {
      name: 'v1alpha3',
      storage: true,
      spec: obj(
        {
          service: str({ minLength: 1, description: 'the root Service that clients address' }),
          backends: arr(
            obj({ service: str({ minLength: 1 }), weight: int({ minimum: 0 }) }, [
              'service',
              'weight',
            ]),
            {
              minItems: 1,
            },
          ),
          matches: arr(
            obj(
              {
                apiGroup: str(),
                kind: str({ enum: ['HTTPRouteGroup'] }),
                name: str({ minLength: 1 }),
              },
              ['kind', 'name'],
            ),
          ),
        },
        ['service', 'backends'],
      ),
      status: POLICY_STATUS,
      columns: [{ name: 'Service', type: 'string', jsonPath: '.spec.service' }],
    },
  ],
};

const trafficTarget: CrdDefinition = {
  group: 'access.smi-spec.io',
  kind: 'TrafficTarget',
  plural: 'traffictargets',
  singular: 'traffictarget',
  shortNames: ['tt'],
  scope: 'Namespaced',
  versions: [
    {
      name: 'v1alpha2',
      storage: true,
      status: POLICY_STATUS,
      spec: obj(
        {
          destination: obj(
            {
              kind: str({ minLength: 1 }),
              name: str({ minLength: 1 }),
              namespace: str(),
              port: int({
                minimum: 1,
                maximum: 65535,
                description: 'TCP port to apply the TrafficTarget to',
              }),
            },
            ['kind', 'name'],
          ),
          sources: arr(
            obj(
              {
                kind: str({ minLength: 1 }),
                name: str({ minLength: 1 }),
                namespace: str(),
                port: int({ minimum: 1, maximum: 65535 }),
              },
              ['kind', 'name'],
            ),
          ),
          rules: arr(
            obj(
              {
                kind: str({ enum: ['HTTPRouteGroup', 'TCPRoute'] }),
                name: str({ minLength: 1 }),
                matches: arr(str()),
              },
              ['kind', 'name'],
            ),
          ),
        },
        ['destination'],
      ),
    },
  ],
};

const HTTP_METHODS = [
  '*',
  'GET',
  'HEAD',
  'PUT',
  'POST',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
];

const httpRouteGroup: CrdDefinition = {
  group: 'specs.smi-spec.io',
  kind: 'HTTPRouteGroup',
  plural: 'httproutegroups',
  singular: 'httproutegroup',
  shortNames: ['htr'],
  scope: 'Namespaced',
  versions: [
    {
      name: 'v1alpha3',
      storage: true,
      status: POLICY_STATUS,
      spec: obj(
        {
          matches: arr(
            obj(
              {
                name: str({ minLength: 1 }),
                methods: arr(str({ enum: HTTP_METHODS })),
                pathRegex: str(),
                headers: { type: 'object', additionalProperties: str() },
              },
              ['name'],
            ),
          ),
        },
        ['matches'],
      ),
    },
  ],
};

const tcpRoute: CrdDefinition = {
  group: 'specs.smi-spec.io',
  kind: 'TCPRoute',
  plural: 'tcproutes',
  singular: 'tcproute',
  shortNames: ['tr'],
  scope: 'Namespaced',
  versions: [{ name: 'v1alpha3', storage: true, spec: obj({}), status: POLICY_STATUS }],
};

const rateLimitSpec = (withRules: boolean): Schema =>
  obj(
    {
      destination: subject(),
      sources: arr(subject()),
      name: str({ minLength: 1 }),
      rate: str({
        pattern: '^[0-9]+r/[s,m]$',
        description: 'requests per second or minute, as 10r/s or 30r/m',
      }),
      burst: int({ minimum: 0 }),
      delay: {
        'x-kubernetes-int-or-string': true,
        description: 'a number of requests, or nodelay',
      },
      ...(withRules
        ? {
            rules: arr(
              obj(
                {
                  kind: str({ enum: ['HTTPRouteGroup'] }),
                  name: str({ minLength: 1 }),
                  matches: arr(str()),
                },
                ['kind', 'name'],
              ),
            ),
          }
        : {}),
    },
    ['destination', 'name', 'rate'],
  );

const rateLimit: CrdDefinition = {
  group: 'specs.smi.nginx.com',
  kind: 'RateLimit',
  plural: 'ratelimits',
  singular: 'ratelimit',
  shortNames: ['rl'],
  scope: 'Namespaced',
  versions: [
    { name: 'v1alpha1', storage: false, spec: rateLimitSpec(false), status: POLICY_STATUS },
    { name: 'v1alpha2', storage: true, spec: rateLimitSpec(true), status: POLICY_STATUS },
  ],
};

const circuitBreaker: CrdDefinition = {
  group: 'specs.smi.nginx.com',
  kind: 'CircuitBreaker',
  plural: 'circuitbreakers',
  singular: 'circuitbreaker',
  shortNames: ['cb'],
  scope: 'Namespaced',
  versions: [
    {
      name: 'v1alpha1',
      storage: true,
      status: POLICY_STATUS,
      spec: obj(
        {
          destination: subject(['Service']),
          errors: int({
            minimum: 0,
            description: 'errors within timeoutSeconds that open the circuit',
          }),
          timeoutSeconds: int({
            minimum: 0,
            description: 'error window, and how long the circuit stays open',
          }),
          fallback: obj({
            service: str({ description: 'namespace/name of the fallback Service' }),
            port: int({ minimum: 0, maximum: 65535 }),
          }),
        },
        ['destination', 'errors', 'timeoutSeconds'],
      ),
    },
  ],
};

const meshConfig: CrdDefinition = {
  group: 'nsm.nginx.com',
  kind: 'MeshConfig',
  plural: 'meshconfigs',
  singular: 'meshconfig',
  shortNames: [],
  scope: 'Namespaced',
  versions: [
    {
      name: 'v1alpha2',
      storage: true,
      spec: obj(
        {
          meshConfigClassName: str({ minLength: 1 }),
          accessControlMode: str({ enum: [...ACCESS_CONTROL_MODES] }),
          clientMaxBodySize: str({ pattern: CLIENT_MAX_BODY_SIZE_PATTERN.source }),
          mtls: obj({
            mode: str({ enum: [...MTLS_MODES] }),
            caKeyType: str({ enum: [...MTLS_CA_KEY_TYPES] }),
            caTTL: str({ pattern: '^(2[4-9]|[3-9][0-9]|[1-9][0-9]{2,5})h$' }),
            svidTTL: str({ pattern: '^[1-9][0-9]{0,5}(h|m)$' }),
          }),
          nginxErrorLogLevel: str({
            enum: [...NGINX_ERROR_LOG_LEVELS],
          }),
          nginxLBMethod: str({ enum: [...NGINX_LB_METHODS] }),
          nginxLogFormat: str({ enum: [...NGINX_LOG_FORMATS] }),
          prometheusAddress: str(),
          telemetry: obj({
            exporters: obj(
              {
                otlp: obj(
                  {
                    host: str({ minLength: 1 }),
                    port: int({ minimum: 0, maximum: 65535 }),
                    protocol: str({ enum: [...OTLP_PROTOCOLS] }),
                  },
                  ['host', 'port'],
                ),
              },
              ['otlp'],
            ),
            samplerRatio: { type: 'number', minimum: 0, maximum: 1 },
          }),
        },
        ['meshConfigClassName'],
      ),
      status: obj({ transparent: { type: 'boolean' } }, ['transparent']),
    },
  ],
};

const meshConfigClass: CrdDefinition = {
  group: 'nsm.nginx.com',
  kind: 'MeshConfigClass',
  plural: 'meshconfigclasses',
  singular: 'meshconfigclass',
  shortNames: [],
  scope: 'Cluster',
  versions: [
    {
      name: 'v1alpha2',
      storage: true,
      spec: obj({ controllerName: str({ minLength: 1 }) }, ['controllerName']),
    },
  ],
};

/** Every mesh CRD in the order deploy applies them. */
export const MESH_CRDS: readonly CrdDefinition[] = [
  trafficSplit,
  trafficTarget,
  httpRouteGroup,
  tcpRoute,
  rateLimit,
  circuitBreaker,
  meshConfigClass,
  meshConfig,
];

function toVersion(version: CrdVersion): Record<string, unknown> {
  const properties: Record<string, Schema> = {
    apiVersion: str(),
    kind: str(),
    metadata: { type: 'object' },
    spec: version.spec,
  };
  if (version.status !== undefined) properties.status = version.status;
  return {
    name: version.name,
    served: true,
    storage: version.storage,
    schema: { openAPIV3Schema: obj(properties, ['spec']) },
    ...(version.status === undefined ? {} : { subresources: { status: {} } }),
    ...(version.columns === undefined ? {} : { additionalPrinterColumns: version.columns }),
  };
}

/** The CustomResourceDefinition object of one definition. */
export function buildCrd(definition: CrdDefinition): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${definition.plural}.${definition.group}`,
      labels: { [PART_OF_LABEL]: PART_OF_VALUE },
    },
    spec: {
      group: definition.group,
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        ...(definition.shortNames.length === 0 ? {} : { shortNames: [...definition.shortNames] }),
      },
      scope: definition.scope,
      versions: definition.versions.map(toVersion),
    },
  };
}

/** All mesh CRDs as objects, in apply order. */
export function buildMeshCrds(): Record<string, unknown>[] {
  return MESH_CRDS.map(buildCrd);
}
