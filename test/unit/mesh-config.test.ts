// The mesh configuration model: deploy's flags, their defaults, every validation message, the
// order problems are reported in, and the warnings for what this mesh does differently.
import type { FlagSpec } from '../../src/commands/spec';
import { settingsFromMeshConfig } from '../../src/commands/inject/mesh-settings';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import {
  buildDeployFlags,
  buildMeshConfig,
  buildMeshConfigClassResource,
  buildMeshConfigMap,
  buildMeshConfigResource,
  defaultDeployInput,
  deployInputFromFlags,
  openSourceLbMethod,
  renderMeshConfigJson,
  NGINX_LB_METHODS,
} from '../../src/manifests/mesh-config';
import type {
  DeployInput,
  FullMeshConfig,
  MeshConfigContext,
  MeshConfigOutcome,
} from '../../src/manifests/mesh-config';

const VERSION = '0.1.0';
const context: MeshConfigContext = { namespace: 'nginx-mesh', files: new Map() };

function build(
  overrides: Partial<DeployInput> = {},
  extra: Partial<MeshConfigContext> = {},
): MeshConfigOutcome {
  return buildMeshConfig(
    { ...defaultDeployInput(VERSION), ...overrides },
    { ...context, ...extra },
  );
}

function configOf(overrides: Partial<DeployInput> = {}): FullMeshConfig {
  const outcome = build(overrides);
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  return outcome.config;
}

function problemsOf(
  overrides: Partial<DeployInput>,
  extra: Partial<MeshConfigContext> = {},
): readonly string[] {
  const outcome = build(overrides, extra);
  return 'problems' in outcome ? outcome.problems : [];
}

function warningsOf(overrides: Partial<DeployInput>): readonly string[] {
  const outcome = build(overrides);
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  return outcome.warnings;
}

describe('deploy flags', () => {
  const flags = buildDeployFlags(VERSION);

  it('are 32 flag specs of the shared declaration', () => {
    const specs: readonly FlagSpec[] = flags;
    expect(specs).toHaveLength(32);
  });

  it('declare NGINX Service Mesh 2.0 public flags, sorted, and its eight hidden ones', () => {
    expect(flags.filter((flag) => flag.hidden !== true).map((flag) => flag.long)).toEqual([
      'access-control-mode',
      'client-max-body-size',
      'disable-public-images',
      'enable-udp',
      'environment',
      'image-tag',
      'mtls-ca-key-type',
      'mtls-ca-ttl',
      'mtls-mode',
      'mtls-svid-ttl',
      'mtls-trust-domain',
      'mtls-upstream-ca-conf',
      'nginx-error-log-level',
      'nginx-lb-method',
      'nginx-log-format',
      'persistent-storage',
      'prometheus-address',
      'registry-key',
      'registry-password',
      'registry-server',
      'registry-username',
      'spire-server-key-manager',
      'telemetry-exporters',
      'telemetry-sampler-ratio',
    ]);
    expect(flags.filter((flag) => flag.hidden === true).map((flag) => flag.long)).toEqual([
      'pull-always',
      'dry-run',
      'nginx-mesh-controller-image',
      'nginx-mesh-metrics-image',
      'nginx-mesh-sidecar-image',
      'nginx-mesh-init-image',
      'cert-reloader-image',
      'cleanup-on-error',
    ]);
  });

  it.each([
    ['access-control-mode', 'allow', ['allow', 'deny']],
    ['mtls-ca-key-type', 'ec-p256', ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096']],
    ['mtls-mode', 'permissive', ['off', 'permissive', 'strict']],
    [
      'nginx-error-log-level',
      'warn',
      ['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg'],
    ],
    ['nginx-lb-method', 'least_conn', [...NGINX_LB_METHODS]],
    ['nginx-log-format', 'default', ['default', 'json']],
    ['persistent-storage', 'auto', ['auto', 'off', 'on']],
    ['spire-server-key-manager', 'disk', ['disk', 'memory']],
  ])('--%s defaults to %s and accepts %j', (long, defaultValue, choices) => {
    const flag = flags.find((candidate) => candidate.long === long);
    expect(flag?.defaultValue).toBe(defaultValue);
    expect(flag?.choices).toEqual(choices);
    expect(flag?.usage).toContain(`\n\t\tValid values: ${choices.join(', ')}`);
  });

  it('--environment defaults to kubernetes, the only valid value, and leaves openshift to buildMeshConfig', () => {
    const flag = flags.find((candidate) => candidate.long === 'environment');
    expect(flag?.defaultValue).toBe('kubernetes');
    // Not refused by the parser, so that buildMeshConfig can say why openshift is refused.
    expect(flag?.choices).toBeUndefined();
    expect(flag?.usage).toContain('\n\t\tValid values: kubernetes\n\t\topenshift is refused');
  });

  it('accepts all ten NGINX Service Mesh load-balancing methods', () => {
    expect(NGINX_LB_METHODS).toHaveLength(10);
  });

  it.each([
    ['client-max-body-size', '1m'],
    ['image-tag', VERSION],
    ['mtls-ca-ttl', '720h'],
    ['mtls-svid-ttl', '1h'],
    ['mtls-trust-domain', 'example.org'],
    ['registry-server', 'localhost'],
    ['telemetry-sampler-ratio', '0.01'],
    ['cleanup-on-error', true],
  ])('--%s defaults to %j', (long, defaultValue) => {
    expect(flags.find((flag) => flag.long === long)?.defaultValue).toBe(defaultValue);
  });

  it('gives -p as the shorthand of --pull-always', () => {
    expect(flags.find((flag) => flag.long === 'pull-always')?.short).toBe('p');
  });

  it('reads every configuration flag into DeployInput, leaving --dry-run and --cleanup-on-error to the command', () => {
    const read: string[] = [];
    const input = deployInputFromFlags({
      string: (name) => (read.push(name), `<${name}>`),
      bool: (name) => (read.push(name), true),
      strings: (name) => (read.push(name), [name]),
    });
    expect(read).not.toContain('dry-run');
    expect(read).not.toContain('cleanup-on-error');
    expect(Object.keys(input)).toHaveLength(30);
    expect(input.mtlsUpstreamCaConf).toBe('<mtls-upstream-ca-conf>');
    expect(input.pullAlways).toBe(true);
    expect(input.telemetryExporters).toEqual(['telemetry-exporters']);
  });
});

describe('buildMeshConfig defaults', () => {
  const config = configOf();
  const at = (path: string): unknown =>
    path
      .split('.')
      .reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], config);

  it.each([
    ['--mtls-mode', 'mtls.mode', 'permissive'],
    ['--mtls-ca-key-type', 'mtls.caKeyType', 'ec-p256'],
    ['--mtls-ca-ttl', 'mtls.caTTL', '720h'],
    ['--mtls-svid-ttl', 'mtls.svidTTL', '1h'],
    ['--mtls-trust-domain', 'mtls.trustDomain', 'example.org'],
    ['--persistent-storage', 'mtls.persistentStorage', 'auto'],
    ['--spire-server-key-manager', 'mtls.spireServerKeyManager', 'disk'],
    ['--access-control-mode', 'accessControlMode', 'allow'],
    ['--client-max-body-size', 'clientMaxBodySize', '1m'],
    ['--environment', 'environment', 'kubernetes'],
    ['--namespace', 'namespace', 'nginx-mesh'],
    ['--nginx-error-log-level', 'nginxErrorLogLevel', 'warn'],
    ['--nginx-lb-method', 'nginxLBMethod', 'least_conn'],
    ['--nginx-log-format', 'nginxLogFormat', 'default'],
    ['--prometheus-address', 'prometheusAddress', ''],
    ['--registry-server', 'registry.server', 'localhost'],
    ['--image-tag', 'registry.imageTag', VERSION],
    ['--pull-always', 'registry.imagePullPolicy', 'IfNotPresent'],
    [
      '--nginx-mesh-sidecar-image',
      'registry.sidecarImage',
      `localhost/nginx-mesh-sidecar:${VERSION}`,
    ],
    [
      '--nginx-mesh-init-image',
      'registry.sidecarInitImage',
      `localhost/nginx-mesh-init:${VERSION}`,
    ],
    ['--registry-username', 'registry.registryKeyName', ''],
    ['--disable-public-images', 'registry.disablePublicImages', false],
    [
      '--nginx-mesh-controller-image',
      'registry.controllerImage',
      `localhost/nginx-mesh-controller:${VERSION}`,
    ],
    [
      '--nginx-mesh-metrics-image',
      'registry.metricsImage',
      `localhost/nginx-mesh-controller:${VERSION}`,
    ],
    ['--telemetry-exporters', 'telemetry', {}],
    ['--enable-udp', 'enableUDP', false],
    ['(none)', 'transparent', false],
  ])('%s gives %s = %j', (_flag, path, value) => {
    expect(at(path)).toEqual(value);
  });

  it('has no secrets and no warnings', () => {
    expect(build()).toEqual({ config, secrets: {}, warnings: [] });
  });
});

describe('buildMeshConfig values', () => {
  it('takes every setting from its flag', () => {
    const config = configOf({
      mtlsMode: 'strict',
      mtlsCaKeyType: 'rsa-4096',
      mtlsCaTtl: '24h',
      mtlsSvidTtl: '30m',
      mtlsTrustDomain: 'mesh.example.com',
      accessControlMode: 'deny',
      clientMaxBodySize: '0',
      nginxErrorLogLevel: 'debug',
      nginxLbMethod: 'random two least_conn',
      nginxLogFormat: 'json',
      prometheusAddress: 'prometheus.monitoring:9090',
      registryServer: 'registry.example:5000/mesh',
      imageTag: '1.2.3',
      pullAlways: true,
      disablePublicImages: true,
      nginxMeshControllerImage: 'dev/controller:x',
      nginxMeshSidecarImage: 'dev/sidecar:x',
      persistentStorage: 'off',
      spireServerKeyManager: 'memory',
    });
    expect(config.mtls).toEqual({
      mode: 'strict',
      caKeyType: 'rsa-4096',
      caTTL: '24h',
      svidTTL: '30m',
      trustDomain: 'mesh.example.com',
      persistentStorage: 'off',
      spireServerKeyManager: 'memory',
    });
    expect(config.registry).toEqual({
      server: 'registry.example:5000/mesh',
      imageTag: '1.2.3',
      imagePullPolicy: 'Always',
      sidecarImage: 'dev/sidecar:x',
      sidecarInitImage: 'registry.example:5000/mesh/nginx-mesh-init:1.2.3',
      registryKeyName: '',
      disablePublicImages: true,
      controllerImage: 'dev/controller:x',
      metricsImage: 'dev/controller:x',
    });
    expect(config.nginxLBMethod).toBe('random two least_conn');
    expect(config.prometheusAddress).toBe('prometheus.monitoring:9090');
  });

  it('takes an http(s) URL for --prometheus-address too, for a Prometheus outside the cluster', () => {
    expect(configOf({ prometheusAddress: 'http://198.18.0.1:9090' }).prometheusAddress).toBe(
      'http://198.18.0.1:9090',
    );
    expect(
      configOf({ prometheusAddress: 'https://prometheus.example:443/prom' }).prometheusAddress,
    ).toBe('https://prometheus.example:443/prom');
  });

  it('sets telemetry only when an exporter is given, with the sampler ratio', () => {
    expect(
      configOf({
        telemetryExporters: ['type=otlp,host=otel.observability.svc,port=4317'],
        telemetrySamplerRatio: '0.5',
      }).telemetry,
    ).toEqual({
      exporters: { otlp: { host: 'otel.observability.svc', port: 4317 } },
      samplerRatio: 0.5,
    });
  });

  it('keeps registry credentials out of the configuration, naming their Secret', () => {
    const outcome = build({ registryUsername: 'robot', registryPassword: 's3cret' });
    expect(
      'problems' in outcome ? [] : [outcome.config.registry.registryKeyName, outcome.secrets],
    ).toEqual([
      'nginx-mesh-registry-key',
      { registry: { kind: 'password', username: 'robot', password: 's3cret' } },
    ]);
    expect(
      renderMeshConfigJson(configOf({ registryUsername: 'robot', registryPassword: 's3cret' })),
    ).not.toContain('s3cret');
  });

  it('reads the registry key from the files the caller read', () => {
    const outcome = build(
      { registryKey: 'key.json' },
      { files: new Map([['key.json', '{"type":"service_account"}']]) },
    );
    expect('problems' in outcome ? outcome.problems : outcome.secrets).toEqual({
      registry: { kind: 'key', key: '{"type":"service_account"}' },
    });
  });
});

describe('buildMeshConfig problems', () => {
  it.each<[string, Partial<DeployInput>, string]>([
    [
      'access-control-mode',
      { accessControlMode: 'open' },
      'invalid value "open" for --access-control-mode: must be one of allow, deny',
    ],
    [
      'environment',
      { environment: 'eks' },
      'invalid value "eks" for --environment: must be one of kubernetes',
    ],
    [
      'mtls-ca-key-type',
      { mtlsCaKeyType: 'ed25519' },
      'invalid value "ed25519" for --mtls-ca-key-type: must be one of ec-p256, ec-p384, rsa-2048, rsa-4096',
    ],
    [
      'mtls-mode',
      { mtlsMode: 'x' },
      'invalid value "x" for --mtls-mode: must be one of off, permissive, strict',
    ],
    [
      'nginx-error-log-level',
      { nginxErrorLogLevel: 'trace' },
      'invalid value "trace" for --nginx-error-log-level: must be one of debug, info, notice, warn, error, crit, alert, emerg',
    ],
    [
      'nginx-lb-method',
      { nginxLbMethod: 'ip_hash' },
      'invalid value "ip_hash" for --nginx-lb-method: must be one of least_conn, least_time, least_time last_byte, least_time last_byte inflight, random, random two, random two least_conn, random two least_time, random two least_time=last_byte, round_robin',
    ],
    [
      'nginx-log-format',
      { nginxLogFormat: 'xml' },
      'invalid value "xml" for --nginx-log-format: must be one of default, json',
    ],
    [
      'persistent-storage',
      { persistentStorage: 'yes' },
      'invalid value "yes" for --persistent-storage: must be one of auto, off, on',
    ],
    [
      'spire-server-key-manager',
      { spireServerKeyManager: 'vault' },
      'invalid value "vault" for --spire-server-key-manager: must be one of disk, memory',
    ],
    [
      'client-max-body-size',
      { clientMaxBodySize: '1mb' },
      'invalid value "1mb" for --client-max-body-size: must be a size in bytes with an optional k, m or g suffix, e.g. 1m (0 = unlimited)',
    ],
    [
      'image-tag',
      { imageTag: 'v 1' },
      'invalid value "v 1" for --image-tag: must be an image tag (letters, digits, "_", "." and "-", at most 128 characters)',
    ],
    [
      'mtls-ca-ttl below 24h',
      { mtlsCaTtl: '23h' },
      'invalid value "23h" for --mtls-ca-ttl: must be whole hours from 24h to 999999h',
    ],
    [
      'mtls-ca-ttl in minutes',
      { mtlsCaTtl: '1440m' },
      'invalid value "1440m" for --mtls-ca-ttl: must be whole hours from 24h to 999999h',
    ],
    [
      'mtls-ca-ttl above 999999h',
      { mtlsCaTtl: '1000000h' },
      'invalid value "1000000h" for --mtls-ca-ttl: must be whole hours from 24h to 999999h',
    ],
    [
      'mtls-svid-ttl zero',
      { mtlsSvidTtl: '0h' },
      'invalid value "0h" for --mtls-svid-ttl: must be 1 to 999999 hours (h) or minutes (m), e.g. 1h or 30m',
    ],
    [
      'mtls-svid-ttl seconds',
      { mtlsSvidTtl: '90s' },
      'invalid value "90s" for --mtls-svid-ttl: must be 1 to 999999 hours (h) or minutes (m), e.g. 1h or 30m',
    ],
    [
      'mtls-trust-domain',
      { mtlsTrustDomain: 'Example.org' },
      'invalid value "Example.org" for --mtls-trust-domain: must be a SPIFFE trust domain (lower-case letters, digits, ".", "-" and "_")',
    ],
    [
      'prometheus-address without port',
      { prometheusAddress: 'prometheus.monitoring' },
      'invalid value "prometheus.monitoring" for --prometheus-address: must be <service-name>.<namespace>:<service-port>',
    ],
    [
      'prometheus-address with a URL that has a query',
      { prometheusAddress: 'http://prometheus:9090/?x=1' },
      'invalid value "http://prometheus:9090/?x=1" for --prometheus-address: must be <service-name>.<namespace>:<service-port>',
    ],
    [
      'prometheus-address with another scheme',
      { prometheusAddress: 'ftp://prometheus:9090' },
      'invalid value "ftp://prometheus:9090" for --prometheus-address: must be <service-name>.<namespace>:<service-port>',
    ],
    [
      'prometheus-address port 0',
      { prometheusAddress: 'prometheus.monitoring:0' },
      'invalid value "prometheus.monitoring:0" for --prometheus-address: must be <service-name>.<namespace>:<service-port>',
    ],
    [
      'registry-server with a scheme',
      { registryServer: 'https://registry:5000' },
      'invalid value "https://registry:5000" for --registry-server: must be hostname[:port][/path] without a scheme or a trailing "/"',
    ],
    [
      'registry-server with a trailing slash',
      { registryServer: 'registry:5000/' },
      'invalid value "registry:5000/" for --registry-server: must be hostname[:port][/path] without a scheme or a trailing "/"',
    ],
    [
      'nginx-mesh-sidecar-image',
      { nginxMeshSidecarImage: 'a b' },
      'invalid value "a b" for --nginx-mesh-sidecar-image: must be an image reference without spaces',
    ],
    [
      'telemetry-sampler-ratio above 1',
      { telemetrySamplerRatio: '1.5' },
      'invalid value "1.5" for --telemetry-sampler-ratio: must be a number from 0 to 1',
    ],
    [
      'telemetry-sampler-ratio not a number',
      { telemetrySamplerRatio: 'half' },
      'invalid value "half" for --telemetry-sampler-ratio: must be a number from 0 to 1',
    ],
    [
      'registry-username alone',
      { registryUsername: 'robot' },
      'invalid configuration: both --registry-username and --registry-password must be set',
    ],
    [
      'registry-password alone',
      { registryPassword: 'pw' },
      'invalid configuration: both --registry-username and --registry-password must be set',
    ],
    [
      'two telemetry exporters',
      { telemetryExporters: ['type=otlp,host=a,port=1', 'type=otlp,host=b,port=2'] },
      'invalid configuration: only one telemetry exporter may be configured',
    ],
    [
      'exporter with a bare quote',
      { telemetryExporters: ['type=otlp,host="a"b,port=1'] },
      'failed to parse telemetry-exporters input: "type=otlp,host=\\"a\\"b,port=1"; expected key value pairs separated by commas',
    ],
    [
      'empty exporter',
      { telemetryExporters: [''] },
      'failed to parse telemetry-exporters input: ""; expected key value pairs separated by commas',
    ],
    [
      'exporter pair without =',
      { telemetryExporters: ['type=otlp,host'] },
      'failed to parse telemetry-exporters input "type=otlp,host": host must be formatted as key=value',
    ],
    [
      'exporter duplicate key',
      { telemetryExporters: ['type=otlp,type=otlp'] },
      'failed to parse telemetry-exporters input "type=otlp,type=otlp": duplicate key: type',
    ],
    [
      'exporter without type',
      { telemetryExporters: ['host=a,port=1'] },
      'invalid telemetry-exporters input "host=a,port=1": invalid exporter config: missing type',
    ],
    [
      'exporter of another type',
      { telemetryExporters: ['type=zipkin,host=a,port=1'] },
      'invalid telemetry-exporters input "type=zipkin,host=a,port=1": invalid exporter config: unsupported type: must be "otlp"',
    ],
    [
      'exporter without host',
      { telemetryExporters: ['type=otlp,port=1'] },
      'invalid telemetry-exporters input "type=otlp,port=1": invalid exporter config: missing host',
    ],
    [
      'exporter without port',
      { telemetryExporters: ['type=otlp,host=a'] },
      'invalid telemetry-exporters input "type=otlp,host=a": invalid exporter config: missing port',
    ],
    [
      'exporter with a bad port',
      { telemetryExporters: ['type=otlp,host=a,port=70000'] },
      'invalid telemetry-exporters input "type=otlp,host=a,port=70000": invalid exporter config: invalid port "70000": expected 1-65535',
    ],
    [
      'exporter with an unknown protocol',
      { telemetryExporters: ['type=otlp,host=a,port=1,protocol=zipkin'] },
      'invalid telemetry-exporters input "type=otlp,host=a,port=1,protocol=zipkin": invalid exporter config: unsupported protocol "zipkin": must be "grpc" or "http"',
    ],
    [
      'exporter with an unknown key',
      { telemetryExporters: ['type=otlp,host=a,port=1,tls=on'] },
      'invalid telemetry-exporters input "type=otlp,host=a,port=1,tls=on": invalid exporter config: unknown key "tls"',
    ],
    [
      'registry-key file not read',
      { registryKey: 'missing.json' },
      '--registry-key "missing.json": the file could not be read',
    ],
    [
      'upstream CA file not read',
      { mtlsUpstreamCaConf: 'ca.yaml' },
      '--mtls-upstream-ca-conf "ca.yaml": the file could not be read',
    ],
  ])('%s', (_name, overrides, message) => {
    expect(problemsOf(overrides)).toEqual([message]);
  });

  it('refuses --environment openshift in one line that says what to do instead', () => {
    expect(problemsOf({ environment: 'openshift' })).toEqual([
      'invalid configuration: --environment openshift is not supported: this mesh renders no SecurityContextConstraints and is not tested on OpenShift; deploy with --environment kubernetes (the default)',
    ]);
  });

  it('rejects a registry key together with a user name or password', () => {
    expect(
      problemsOf(
        { registryKey: 'key.json', registryUsername: 'robot', registryPassword: 'pw' },
        { files: new Map([['key.json', '{}']]) },
      ),
    ).toEqual([
      'invalid configuration: cannot set both --registry-key and --registry-username/--registry-password',
    ]);
  });

  it('rejects an empty registry key file', () => {
    expect(
      problemsOf({ registryKey: 'key.json' }, { files: new Map([['key.json', '\n']]) }),
    ).toEqual(['--registry-key "key.json": the file is empty']);
  });

  it('rejects a namespace that is not a DNS label', () => {
    expect(problemsOf({}, { namespace: 'Mesh_NS' })).toEqual([
      'invalid value "Mesh_NS" for --namespace: must be a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)',
    ]);
  });

  it('accepts quoted exporter fields as encoding/csv does', () => {
    expect(
      configOf({ telemetryExporters: ['"type=otlp","host=otel","port=4317"'] }).telemetry.exporters,
    ).toEqual({
      otlp: { host: 'otel', port: 4317 },
    });
  });

  it.each(['24h', '999999h', '720h'])('accepts --mtls-ca-ttl %s', (mtlsCaTtl) => {
    expect(problemsOf({ mtlsCaTtl })).toEqual([]);
  });

  it.each(['1m', '166666h', '30m'])('accepts --mtls-svid-ttl %s', (mtlsSvidTtl) => {
    expect(problemsOf({ mtlsSvidTtl, mtlsCaTtl: '999999h' })).toEqual([]);
  });

  it('wants the CA to live at least six SVID lifetimes, as the registrar does', () => {
    expect(problemsOf({ mtlsCaTtl: '24h', mtlsSvidTtl: '5h' })).toEqual([
      'invalid configuration: --mtls-ca-ttl (24h) must be at least 6 times --mtls-svid-ttl (5h), so that a new CA reaches every workload before it signs',
    ]);
    expect(problemsOf({ mtlsCaTtl: '24h', mtlsSvidTtl: '4h' })).toEqual([]);
  });

  it.each(['0', '64k', '10M', '1g', '1048576'])(
    'accepts --client-max-body-size %s',
    (clientMaxBodySize) => {
      expect(problemsOf({ clientMaxBodySize })).toEqual([]);
    },
  );

  it.each(['0', '1', '0.25', '.5', '1e-2'])('accepts --telemetry-sampler-ratio %s', (ratio) => {
    expect(problemsOf({ telemetrySamplerRatio: ratio })).toEqual([]);
  });

  it('reports every problem at once, in flag order', () => {
    expect(
      problemsOf({
        telemetryExporters: ['type=jaeger,host=a,port=1'],
        registryUsername: 'robot',
        nginxLbMethod: 'fastest',
        mtlsMode: 'on',
        accessControlMode: 'closed',
        mtlsCaTtl: '1h',
        prometheusAddress: 'prometheus',
        telemetrySamplerRatio: '2',
      }),
    ).toEqual([
      'invalid value "closed" for --access-control-mode: must be one of allow, deny',
      'invalid value "1h" for --mtls-ca-ttl: must be whole hours from 24h to 999999h',
      'invalid value "on" for --mtls-mode: must be one of off, permissive, strict',
      'invalid value "fastest" for --nginx-lb-method: must be one of least_conn, least_time, least_time last_byte, least_time last_byte inflight, random, random two, random two least_conn, random two least_time, random two least_time=last_byte, round_robin',
      'invalid value "prometheus" for --prometheus-address: must be <service-name>.<namespace>:<service-port>',
      'invalid configuration: both --registry-username and --registry-password must be set',
      'invalid telemetry-exporters input "type=jaeger,host=a,port=1": invalid exporter config: unsupported type: must be "otlp"',
      'invalid value "2" for --telemetry-sampler-ratio: must be a number from 0 to 1',
    ]);
  });
});

describe('buildMeshConfig warnings', () => {
  it.each([
    ['least_time', 'least_conn'],
    ['least_time last_byte', 'least_conn'],
    ['least_time last_byte inflight', 'least_conn'],
    ['random two least_time', 'random two least_conn'],
    ['random two least_time=last_byte', 'random two least_conn'],
  ])('falls back from %s (NGINX Plus only) to %s, with a warning', (method, used) => {
    expect(configOf({ nginxLbMethod: method }).nginxLBMethod).toBe(used);
    expect(warningsOf({ nginxLbMethod: method })).toEqual([
      `--nginx-lb-method "${method}": least_time is only available in NGINX Plus; using "${used}"`,
    ]);
  });

  it.each(['least_conn', 'random', 'random two', 'random two least_conn', 'round_robin'])(
    'runs %s as asked, without a warning',
    (method) => {
      expect(configOf({ nginxLbMethod: method }).nginxLBMethod).toBe(method);
      expect(warningsOf({ nginxLbMethod: method })).toEqual([]);
    },
  );

  it('maps every method to one open-source NGINX has', () => {
    for (const method of NGINX_LB_METHODS)
      expect(openSourceLbMethod(method)).not.toContain('least_time');
  });

  it('says UDP is not proxied yet', () => {
    expect(warningsOf({ enableUdp: true })).toEqual([
      '--enable-udp: UDP traffic is not proxied yet; it keeps bypassing the sidecars',
    ]);
    expect(configOf({ enableUdp: true }).enableUDP).toBe(true);
  });

  it('says a sampler ratio without an exporter has no effect', () => {
    expect(warningsOf({ telemetrySamplerRatio: '0.5' })).toEqual([
      '--telemetry-sampler-ratio has no effect without --telemetry-exporters',
    ]);
  });

  it.each([
    [
      'off',
      "--persistent-storage off: the registrar's CA persists all the same, in Secret nginx-mesh/nginx-mesh-registrar-ca, and survives restarts; the value is only stored",
    ],
    [
      'on',
      "--persistent-storage on: no PersistentVolume is used (no StorageClass is needed); the registrar's CA persists in Secret nginx-mesh/nginx-mesh-registrar-ca",
    ],
  ])(
    'says where the CA persists for --persistent-storage %s, and stores the value',
    (value, warning) => {
      expect(warningsOf({ persistentStorage: value })).toEqual([warning]);
      expect(configOf({ persistentStorage: value }).mtls.persistentStorage).toBe(value);
    },
  );

  it('says the CA keys are not kept in memory only for --spire-server-key-manager memory', () => {
    expect(warningsOf({ spireServerKeyManager: 'memory' })).toEqual([
      "--spire-server-key-manager memory: the CA's private keys are not kept in memory only; the registrar stores them in Secret nginx-mesh/nginx-mesh-registrar-ca, where they survive restarts",
    ]);
    expect(configOf({ spireServerKeyManager: 'memory' }).mtls.spireServerKeyManager).toBe('memory');
  });

  it('accepts --nginx-log-format json without a warning: the sidecars log in it', () => {
    expect(warningsOf({ nginxLogFormat: 'json' })).toEqual([]);
    expect(configOf({ nginxLogFormat: 'json' }).nginxLogFormat).toBe('json');
  });

  it('takes an exporter and a sampler ratio without a warning: the sidecars trace', () => {
    expect(
      warningsOf({
        telemetryExporters: ['type=otlp,host=otel.observability.svc,port=4317'],
        telemetrySamplerRatio: '0.5',
      }),
    ).toEqual([]);
  });

  it('says --cert-reloader-image is ignored', () => {
    expect(warningsOf({ certReloaderImage: 'dev/reloader:x' })).toEqual([
      '--cert-reloader-image is ignored: this mesh has no separate cert reloader image',
    ]);
  });
});

describe('rendering', () => {
  const injectDefaults: InjectionSettings = {
    meshNamespace: 'default-ns',
    sidecarImage: 'default/sidecar',
    initImage: 'default/init',
    imagePullPolicy: 'IfNotPresent',
    mtlsMode: 'permissive',
    enableUdp: false,
    nativeSidecar: true,
  };

  it('writes meshconfig.json that inject reads back', () => {
    const outcome = buildMeshConfig(
      {
        ...defaultDeployInput('2.1.0'),
        mtlsMode: 'strict',
        registryServer: 'registry.example:5000/nsm',
        registryUsername: 'robot',
        registryPassword: 'pw',
        pullAlways: true,
        enableUdp: true,
      },
      { namespace: 'mesh-b', files: new Map() },
    );
    if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
    expect(settingsFromMeshConfig(renderMeshConfigJson(outcome.config), injectDefaults)).toEqual({
      ...injectDefaults,
      meshNamespace: 'mesh-b',
      sidecarImage: 'registry.example:5000/nsm/nginx-mesh-sidecar:2.1.0',
      initImage: 'registry.example:5000/nsm/nginx-mesh-init:2.1.0',
      imagePullPolicy: 'Always',
      registryKeyName: 'nginx-mesh-registry-key',
      mtlsMode: 'strict',
      enableUdp: true,
    });
  });

  it('prints NGINX Service Mesh fields first, in its order, with two-space indentation', () => {
    const json = renderMeshConfigJson(configOf());
    const parsed = JSON.parse(json) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual([
      'mtls',
      'accessControlMode',
      'clientMaxBodySize',
      'environment',
      'namespace',
      'nginxErrorLogLevel',
      'nginxLBMethod',
      'nginxLogFormat',
      'prometheusAddress',
      'registry',
      'telemetry',
      'enableUDP',
      'transparent',
    ]);
    expect(Object.keys(parsed.registry as object).slice(0, 7)).toEqual([
      'server',
      'imageTag',
      'imagePullPolicy',
      'sidecarImage',
      'sidecarInitImage',
      'registryKeyName',
      'disablePublicImages',
    ]);
    expect(json).toMatch(/^\{\n {2}"mtls": \{\n {4}"mode": "permissive",\n/);
    expect(json.endsWith('}\n')).toBe(true);
  });

  it('stores meshconfig.json and transparent in ConfigMap meshconfig', () => {
    const config = configOf();
    expect(buildMeshConfigMap(config, 'nginx-mesh')).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'meshconfig',
        namespace: 'nginx-mesh',
        labels: { 'app.kubernetes.io/part-of': 'nginx-service-mesh' },
      },
      data: { 'meshconfig.json': renderMeshConfigJson(config), transparent: 'false' },
    });
  });

  it('builds MeshConfig nginx-mesh-config bound to <namespace>-meshconfig-class', () => {
    expect(buildMeshConfigResource(configOf(), 'mesh-a')).toEqual({
      apiVersion: 'nsm.nginx.com/v1alpha2',
      kind: 'MeshConfig',
      metadata: {
        name: 'nginx-mesh-config',
        namespace: 'mesh-a',
        labels: { 'app.kubernetes.io/part-of': 'nginx-service-mesh' },
      },
      spec: {
        meshConfigClassName: 'mesh-a-meshconfig-class',
        accessControlMode: 'allow',
        clientMaxBodySize: '1m',
        mtls: { mode: 'permissive', caKeyType: 'ec-p256', caTTL: '720h', svidTTL: '1h' },
        nginxErrorLogLevel: 'warn',
        nginxLBMethod: 'least_conn',
        nginxLogFormat: 'default',
        prometheusAddress: '',
      },
    });
    expect(buildMeshConfigClassResource('mesh-a')).toEqual({
      apiVersion: 'nsm.nginx.com/v1alpha2',
      kind: 'MeshConfigClass',
      metadata: {
        name: 'mesh-a-meshconfig-class',
        labels: { 'app.kubernetes.io/part-of': 'nginx-service-mesh' },
      },
      spec: { controllerName: 'nsm.nginx.com/nginx-mesh-controller' },
    });
  });
});
