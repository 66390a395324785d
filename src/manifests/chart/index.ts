// The Helm chart charts/nginx-service-mesh, generated from the install plan that deploy applies:
// the plan is rendered with placeholders where chart values go (one rendering with every optional
// feature off, one per feature on), the renderings are merged into templates, and the CRDs are
// written as they are. deploy and the chart therefore cannot drift apart; a test renders both
// for a matrix of values and compares the objects. Pure.
import { stringify } from 'yaml';
import {
  FIELD_MANAGER,
  GATEWAY_API_VERSION,
  GATEWAY_CLASS_NAME,
  GATEWAY_CONTROLLER_NAME,
  PART_OF_VALUE,
} from '../constants';
import { buildMeshCrds } from '../crds';
import { MANAGED_BY_LABEL } from '../install/objects';
import type { InstallStep, InstallStepId } from '../install/plan';
import { buildInstallPlan } from '../install/plan';
import { defaultDeployInput } from '../mesh-config/deploy-input';
import type { DeployInput } from '../mesh-config/deploy-input';
import { buildMeshConfig, fullConfig } from '../mesh-config/model';
import type { FullMeshConfig, MeshSecrets } from '../mesh-config/types';
import { CA_TTL_MIN_SVID_MULTIPLE } from '../registrar/svid-policy';
import { documentsText } from './emit';
import type { Json } from './merge';
import { mergeVariants } from './merge';
import { base64Of, expressionOf, valueOf } from './placeholders';
import { defaultValues, valuesSchema } from './values';

export const CHART_NAME = PART_OF_VALUE;
/** Where the chart lives in the repository. */
export const CHART_DIRECTORY = `charts/${CHART_NAME}`;
/** The oldest Kubernetes the mesh runs on (ValidatingAdmissionPolicy v1 is GA in 1.30). */
export const CHART_KUBE_VERSION = '>= 1.30.0-0';

const LB_METHOD_HELPER = `${CHART_NAME}.lbMethod`;
const VALIDATE_HELPER = `${CHART_NAME}.validate`;

interface Feature {
  /** Helm condition under which the feature is on. */
  readonly condition: string;
  readonly input?: Partial<DeployInput>;
  readonly config?: (config: FullMeshConfig) => FullMeshConfig;
  readonly secrets?: MeshSecrets;
}

const v = valueOf;
const upstreamDisk = (field: string): string =>
  `(dig "upstreamAuthority" "disk" "${field}" "" .Values.mtls)`;

/** deploy's input with every chart value as a placeholder, every optional feature off. */
function baseInput(version: string): DeployInput {
  return {
    ...defaultDeployInput(version),
    accessControlMode: v('accessControlMode'),
    clientMaxBodySize: v('clientMaxBodySize'),
    environment: v('environment'),
    imageTag: v('registry.imageTag'),
    mtlsCaKeyType: v('mtls.caKeyType'),
    mtlsCaTtl: v('mtls.caTTL'),
    mtlsMode: v('mtls.mode'),
    mtlsSvidTtl: v('mtls.svidTTL'),
    mtlsTrustDomain: v('mtls.trustDomain'),
    nginxErrorLogLevel: v('nginxErrorLogLevel'),
    nginxLbMethod: expressionOf(`include "${LB_METHOD_HELPER}" .`),
    nginxLogFormat: v('nginxLogFormat'),
    persistentStorage: v('mtls.persistentStorage'),
    prometheusAddress: '',
    registryServer: v('registry.server'),
    spireServerKeyManager: v('mtls.spireServerKeyManager'),
  };
}

function baseConfig(config: FullMeshConfig): FullMeshConfig {
  return {
    ...config,
    registry: { ...config.registry, imagePullPolicy: v('registry.imagePullPolicy') as 'Always' },
  };
}

const UPSTREAM = upstreamDisk('cert');
const upstreamSecrets = (bundle: string): MeshSecrets => ({
  upstreamAuthority: {
    type: 'disk',
    cert: v('mtls.upstreamAuthority.disk.cert'),
    key: v('mtls.upstreamAuthority.disk.key'),
    bundle,
  },
});

/** Each optional part of the installation, and the value that turns it on. */
const FEATURES: readonly Feature[] = [
  { condition: '.Values.enableUDP', input: { enableUdp: true } },
  { condition: '.Values.registry.disablePublicImages', input: { disablePublicImages: true } },
  { condition: '.Values.prometheusAddress', input: { prometheusAddress: v('prometheusAddress') } },
  {
    condition: '.Values.telemetry.exporters',
    config: (config) => ({
      ...config,
      telemetry: {
        exporters: {
          otlp: {
            host: v('telemetry.exporters.otlp.host'),
            port: v('telemetry.exporters.otlp.port') as unknown as number,
          },
        },
        samplerRatio: v('telemetry.samplerRatio') as unknown as number,
      },
    }),
  },
  {
    condition: '.Values.registry.username',
    secrets: {
      registry: {
        kind: 'password',
        username: v('registry.username'),
        password: v('registry.password'),
      },
    },
  },
  {
    condition: '.Values.registry.key',
    secrets: { registry: { kind: 'key', key: v('registry.key') } },
  },
  { condition: UPSTREAM, secrets: upstreamSecrets('') },
  {
    condition: `and ${UPSTREAM} ${upstreamDisk('bundle')}`,
    secrets: upstreamSecrets(v('mtls.upstreamAuthority.disk.bundle')),
  },
];

/**
 * The objects Helm installs itself or never templates: the namespace (--create-namespace) and
 * CRDs. The chart carries no Gateway API CRDs (a release of the Gateway API project, installed
 * from there where wanted; the notes say so), so the plans it renders have none either.
 */
const UNTEMPLATED_STEPS: ReadonlySet<InstallStepId> = new Set([
  'namespace',
  'crds',
  'gateway-api',
  // A GatewayClass needs the Gateway API CRDs, which the chart does not carry; the notes say how
  // to create it.
  'gateway-class',
]);

/** The managed-by label names Helm on objects it manages. */
function helmManaged(value: Json, key = ''): Json {
  if (key === MANAGED_BY_LABEL && value === FIELD_MANAGER) return expressionOf('.Release.Service');
  if (Array.isArray(value)) return value.map((each: Json) => helmManaged(each));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([name, each]) => [name, helmManaged(each, name)]),
    );
  }
  return value;
}

function renderPlan(version: string, feature: Feature | undefined): readonly InstallStep[] {
  const input = { ...baseInput(version), ...feature?.input };
  const secrets = feature?.secrets ?? {};
  const base = baseConfig(
    fullConfig(input, expressionOf('.Release.Namespace'), secrets.registry !== undefined),
  );
  const config = feature?.config?.(base) ?? base;
  return buildInstallPlan(
    {
      config,
      version: expressionOf('.Chart.AppVersion'),
      secrets,
      upstreamCa: secrets.upstreamAuthority !== undefined,
    },
    base64Of,
  );
}

const HELPERS = `{{/* The method open-source NGINX runs: least_time ones need NGINX Plus. */}}
{{- define "${LB_METHOD_HELPER}" -}}
{{- $method := .Values.nginxLBMethod -}}
{{- if hasPrefix "least_time" $method -}}
least_conn
{{- else if hasPrefix "random two least_time" $method -}}
random two least_conn
{{- else -}}
{{ $method }}
{{- end -}}
{{- end -}}

{{/* Rules the values schema cannot state; the same ones deploy applies to its flags. */}}
{{- define "${VALIDATE_HELPER}" -}}
{{- $registry := .Values.registry -}}
{{- if and $registry.key (or $registry.username $registry.password) -}}
{{- fail "invalid configuration: cannot set both registry.key and registry.username/registry.password" -}}
{{- end -}}
{{- if and (or $registry.username $registry.password) (not (and $registry.username $registry.password)) -}}
{{- fail "invalid configuration: both registry.username and registry.password must be set" -}}
{{- end -}}
{{- if and .Values.telemetry (not .Values.telemetry.exporters) -}}
{{- fail "invalid configuration: telemetry needs exporters.otlp.host and exporters.otlp.port" -}}
{{- end -}}
{{- $ca := trimSuffix "h" .Values.mtls.caTTL | atoi -}}
{{- $svid := .Values.mtls.svidTTL -}}
{{- $svidMinutes := hasSuffix "m" $svid | ternary (trimSuffix "m" $svid | atoi) (mul (trimSuffix "h" $svid | atoi) 60) -}}
{{- if lt (mul $ca 60) (mul $svidMinutes ${CA_TTL_MIN_SVID_MULTIPLE}) -}}
{{- fail (printf "invalid configuration: mtls.caTTL (%s) must be at least ${CA_TTL_MIN_SVID_MULTIPLE} times mtls.svidTTL (%s), so that a new CA reaches every workload before it signs" .Values.mtls.caTTL $svid) -}}
{{- end -}}
{{- end -}}
`;

/** The value each deploy flag a warning names is, in the chart. */
export const VALUE_OF_FLAG: Readonly<Record<string, string>> = {
  'nginx-lb-method': 'nginxLBMethod',
  'enable-udp': 'enableUDP',
  'persistent-storage': 'mtls.persistentStorage',
  'spire-server-key-manager': 'mtls.spireServerKeyManager',
  'nginx-log-format': 'nginxLogFormat',
  'telemetry-exporters': 'telemetry.exporters',
  'telemetry-sampler-ratio': 'telemetry.samplerRatio',
};

/** Settings deploy warns about, as the value that gives each one in the chart. */
const WARNED: readonly { readonly condition: string; readonly input: Partial<DeployInput> }[] = [
  { condition: '.Values.enableUDP', input: { enableUdp: true } },
  { condition: 'eq .Values.mtls.persistentStorage "off"', input: { persistentStorage: 'off' } },
  { condition: 'eq .Values.mtls.persistentStorage "on"', input: { persistentStorage: 'on' } },
  {
    condition: 'eq .Values.mtls.spireServerKeyManager "memory"',
    input: { spireServerKeyManager: 'memory' },
  },
];

const NOTES_NAMESPACE = 'notes-namespace';

/** deploy's warnings for a setting, worded with the chart's value names. */
function warningsOf(version: string, input: Partial<DeployInput>): string[] {
  const context = { namespace: NOTES_NAMESPACE, files: new Map<string, string>() };
  const outcome = buildMeshConfig({ ...defaultDeployInput(version), ...input }, context);
  if (!('config' in outcome))
    throw new Error(`a warned setting is refused: ${outcome.problems.join('; ')}`);
  return outcome.warnings.map((warning) =>
    warning
      .replace(/--([a-z-]+)/g, (flag, name: string) => VALUE_OF_FLAG[name] ?? flag)
      .replaceAll(NOTES_NAMESPACE, '{{ .Release.Namespace }}'),
  );
}

/** Release notes: what was installed, and every warning deploy prints for the same settings. */
function notes(version: string): string {
  const fallback = `{{- if ne (include "${LB_METHOD_HELPER}" .) .Values.nginxLBMethod }}
Warning: nginxLBMethod "{{ .Values.nginxLBMethod }}": least_time is only available in NGINX Plus; using "{{ include "${LB_METHOD_HELPER}" . }}"
{{- end }}`;
  const warned = WARNED.flatMap(({ condition, input }) => [
    `{{- if ${condition} }}`,
    ...warningsOf(version, input).map((warning) => `Warning: ${warning}`),
    '{{- end }}',
  ]);
  return [
    'NGINX Service Mesh {{ .Chart.AppVersion }} is installed in namespace {{ .Release.Namespace }}.',
    'Check it with: nginx-meshctl status -n {{ .Release.Namespace }}',
    `The chart does not install the Gateway API CRDs: for HTTPRoutes on Services, install the Gateway API ${GATEWAY_API_VERSION} standard-channel CRDs (nginx-meshctl deploy installs them where absent).`,
    `Nor does it create the GatewayClass: for ingress gateways, create GatewayClass ${GATEWAY_CLASS_NAME} with controllerName ${GATEWAY_CONTROLLER_NAME} once the CRDs are there (nginx-meshctl deploy creates it).`,
    fallback,
    ...warned,
    '',
  ].join('\n');
}

function chartYaml(version: string): string {
  return stringify({
    apiVersion: 'v2',
    name: CHART_NAME,
    description:
      'NGINX Service Mesh: the control plane (controller, registrar, metrics API, NATS), generated from the same manifests nginx-meshctl deploy applies.',
    type: 'application',
    version,
    appVersion: version,
    kubeVersion: CHART_KUBE_VERSION,
  });
}

const GENERATED = '# Generated from src/manifests (npm run chart); do not edit.\n';

/** Every file of the chart, by path under the chart directory, in a stable order. */
export function buildChart(version: string): ReadonlyMap<string, string> {
  const plans = [undefined, ...FEATURES].map((feature) => renderPlan(version, feature));
  const conditions = [undefined, ...FEATURES.map((feature) => feature.condition)];
  const files = new Map<string, string>();
  files.set('Chart.yaml', chartYaml(version));
  files.set('values.yaml', `${GENERATED}${stringify(defaultValues(version))}`);
  files.set('values.schema.json', `${JSON.stringify(valuesSchema(), null, 2)}\n`);
  for (const crd of buildMeshCrds()) {
    const name = (crd as { metadata: { name: string } }).metadata.name;
    files.set(`crds/${name}.yaml`, `${GENERATED}${stringify(crd)}`);
  }
  files.set('templates/_helpers.tpl', HELPERS);
  files.set('templates/NOTES.txt', notes(version));
  const [basePlan = []] = plans;
  basePlan.forEach((step, index) => {
    if (UNTEMPLATED_STEPS.has(step.id)) return;
    const variants = plans.map((plan, variant) => ({
      ...(conditions[variant] === undefined ? {} : { condition: conditions[variant] }),
      value: helmManaged(
        (plan.find((each) => each.id === step.id)?.objects ?? []) as unknown as Json,
      ),
    }));
    const merged = mergeVariants(variants);
    if (merged.kind !== 'list') throw new Error(`step ${step.id} did not merge into a list`);
    const validate = step.id === 'config' ? `{{- include "${VALIDATE_HELPER}" . }}\n` : '';
    const name = `templates/${String(index).padStart(2, '0')}-${step.id}.yaml`;
    files.set(name, `${GENERATED}${validate}${documentsText(merged.items)}`);
  });
  return files;
}
