// The install plan: every object of the mesh, in the order deploy applies them, with what to wait
// for after each step. CRDs are Established before custom resources; the backends are Ready
// before the webhook configuration and the APIService that send traffic to them. The same plan
// prints for --dry-run and drives upgrade. Pure.
import {
  CONTROLLER_NAME,
  GATEWAY_API_VERSION,
  GATEWAY_CLASS_NAME,
  GATEWAY_CONTROLLER_NAME,
  TRAFFIC_METRICS_GROUP,
  METRICS_API_SERVICE_NAME,
  TRAFFIC_METRICS_VERSION,
  METRICS_NAME,
  METRICS_SERVICE_NAME,
  METRICS_TLS_SECRET_NAME,
  NATS_NAME,
  REGISTRAR_NAME,
  REGISTRY_KEY_SECRET_NAME,
  REGISTRY_KEY_USERNAME,
  UPSTREAM_CA_BUNDLE_KEY,
  UPSTREAM_CA_CERT_KEY,
  UPSTREAM_CA_KEY_KEY,
  UPSTREAM_CA_SECRET_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_SERVICE_NAME,
  WEBHOOK_TLS_SECRET_NAME,
  AUTO_INJECT_LABEL,
  AUTO_INJECT_DISABLED,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
} from '../constants';
import { buildMeshCrds } from '../crds';
import {
  buildMeshConfigClassResource,
  buildMeshConfigMap,
  buildMeshConfigResource,
} from '../mesh-config/render';
import type { FullMeshConfig, MeshSecrets, RegistryCredentials } from '../mesh-config/types';
import type { Labels, Manifest } from './objects';
import { componentLabels, meta } from './objects';
import { buildRbac } from './rbac';
import { buildControllerAdmission } from './controller-admission';
import { buildRegistrarAdmission } from './registrar-admission';
import type { WorkloadContext } from './workloads';
import { buildController, buildMetrics, buildNats, buildRegistrar } from './workloads';

export interface InstallInput {
  readonly config: FullMeshConfig;
  /** Version of this executable, recorded on every object (upgrade compares it). */
  readonly version: string;
  /**
   * Secret contents to install. Upgrade passes none: the Secrets deploy created (the upstream CA)
   * stay as they are, and `upstreamCa` says whether the registrar still mounts one.
   */
  readonly secrets?: MeshSecrets;
  readonly upstreamCa: boolean;
  /**
   * The Gateway API CRDs (buildGatewayApiCrds), installed where the cluster has none of its own.
   * Left out, the plan has no step for them (the Helm chart leaves them to the user).
   */
  readonly gatewayApiCrds?: readonly Manifest[];
}

export type InstallWait =
  | { readonly kind: 'crd-established'; readonly name: string }
  | { readonly kind: 'deployment-ready'; readonly namespace: string; readonly name: string }
  | { readonly kind: 'apiservice-available'; readonly name: string };

/** A caBundle the applier copies from a serving-certificate Secret into an object it applies. */
export interface CaBundleSource {
  readonly kind: 'MutatingWebhookConfiguration' | 'APIService';
  readonly name: string;
  readonly namespace: string;
  readonly secret: string;
}

export type InstallStepId =
  | 'namespace'
  | 'crds'
  | 'gateway-api'
  | 'gateway-class'
  | 'rbac'
  | 'config'
  | 'nats'
  | 'registrar'
  | 'controller'
  | 'metrics'
  | 'registration';

export interface InstallStep {
  readonly id: InstallStepId;
  /** What the step does, as progress shows it ("Installing CRDs"). */
  readonly title: string;
  readonly objects: readonly Manifest[];
  readonly waits: readonly InstallWait[];
  readonly caBundles: readonly CaBundleSource[];
  /**
   * Objects that may belong to someone else: one that exists without the part-of label is left
   * as it is (and not waited for); an absent one, or one deploy made, is applied.
   */
  readonly keepForeign?: true;
  /** Why the step's objects are as they are, for a reader of --dry-run (a YAML comment). */
  readonly note?: string;
}

const step = (
  id: InstallStepId,
  title: string,
  objects: readonly Manifest[],
  waits: readonly InstallWait[] = [],
  caBundles: readonly CaBundleSource[] = [],
): InstallStep => ({ id, title, objects, waits, caBundles });

/** The Gateway API CRDs, where the cluster has none of its own. */
function gatewayApiStep(crds: readonly Manifest[]): InstallStep {
  return {
    ...step(
      'gateway-api',
      `Installing the Gateway API ${GATEWAY_API_VERSION} CRDs where absent`,
      crds,
      crds.map((crd) => ({ kind: 'crd-established', name: crd.metadata.name })),
    ),
    keepForeign: true,
    note: `Gateway API ${GATEWAY_API_VERSION} CRDs (standard channel). deploy applies each only when the cluster lacks it, and remove deletes only those; leave out any your cluster already has.`,
  };
}

/** The mesh's GatewayClass, unless the cluster has one of that name already. */
function gatewayClassStep(labels: Labels): InstallStep {
  return {
    ...step('gateway-class', `Creating GatewayClass ${GATEWAY_CLASS_NAME}`, [
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GatewayClass',
        metadata: meta(GATEWAY_CLASS_NAME, undefined, labels),
        spec: {
          controllerName: GATEWAY_CONTROLLER_NAME,
          description: 'Ingress gateways of NGINX Service Mesh, with the mesh identity',
        },
      },
    ]),
    keepForeign: true,
    note: `Gateways of class ${GATEWAY_CLASS_NAME} are served by the mesh's gateway pods; a GatewayClass of that name that deploy did not make is left as it is.`,
  };
}

function dockerConfig(
  server: string,
  credentials: RegistryCredentials,
  encode: (text: string) => string,
): string {
  const [username, password] =
    credentials.kind === 'password'
      ? [credentials.username, credentials.password]
      : [REGISTRY_KEY_USERNAME, credentials.key];
  const auth = encode(`${username}:${password}`);
  return JSON.stringify({ auths: { [server]: { username, password, auth } } });
}

function secretManifests(
  input: InstallInput,
  namespace: string,
  labels: Labels,
  encode: (text: string) => string,
): Manifest[] {
  const secret = (name: string, type: string, stringData: Record<string, string>): Manifest => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(name, namespace, labels),
    type,
    stringData,
  });
  const manifests: Manifest[] = [];
  const registry = input.secrets?.registry;
  if (registry !== undefined) {
    manifests.push(
      secret(REGISTRY_KEY_SECRET_NAME, 'kubernetes.io/dockerconfigjson', {
        '.dockerconfigjson': dockerConfig(input.config.registry.server, registry, encode),
      }),
    );
  }
  const upstream = input.secrets?.upstreamAuthority;
  if (upstream !== undefined) {
    manifests.push(
      secret(UPSTREAM_CA_SECRET_NAME, 'Opaque', {
        [UPSTREAM_CA_CERT_KEY]: upstream.cert,
        [UPSTREAM_CA_KEY_KEY]: upstream.key,
        ...(upstream.bundle === '' ? {} : { [UPSTREAM_CA_BUNDLE_KEY]: upstream.bundle }),
      }),
    );
  }
  return manifests;
}

/** NGINX Service Mesh's injection webhooks: by namespace label, and by pod label. */
function webhookConfiguration(namespace: string, labels: Labels): Manifest {
  const excluded = {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: ['kube-system', namespace],
  };
  const notInjected = {
    key: INJECTION_STATUS_ANNOTATION,
    operator: 'NotIn',
    values: [INJECTION_STATUS_INJECTED],
  };
  const webhook = (name: string, namespaceSelector: object, objectSelector: object): object => ({
    name,
    clientConfig: {
      service: { name: WEBHOOK_SERVICE_NAME, namespace, path: WEBHOOK_PATH, port: 443 },
    },
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ],
    namespaceSelector,
    objectSelector,
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    reinvocationPolicy: 'Never',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 10,
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: meta(WEBHOOK_CONFIGURATION_NAME, undefined, labels),
    webhooks: [
      webhook(
        'nginx-mesh-controller.sidecar.injector',
        {
          matchExpressions: [
            excluded,
            { key: AUTO_INJECT_LABEL, operator: 'In', values: ['enabled'] },
          ],
        },
        {
          matchExpressions: [
            { key: AUTO_INJECT_LABEL, operator: 'NotIn', values: [AUTO_INJECT_DISABLED] },
            notInjected,
          ],
        },
      ),
      webhook(
        'nginx-mesh-controller-obj.sidecar.injector',
        { matchExpressions: [excluded] },
        {
          matchExpressions: [
            { key: AUTO_INJECT_LABEL, operator: 'In', values: ['enabled'] },
            notInjected,
          ],
        },
      ),
    ],
  };
}

function apiService(namespace: string, labels: Labels): Manifest {
  return {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: meta(METRICS_API_SERVICE_NAME, undefined, labels),
    spec: {
      group: TRAFFIC_METRICS_GROUP,
      version: TRAFFIC_METRICS_VERSION,
      service: { name: METRICS_SERVICE_NAME, namespace, port: 443 },
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  };
}

const ready = (namespace: string, name: string): InstallWait => ({
  kind: 'deployment-ready',
  namespace,
  name,
});

/**
 * The whole installation, step by step. `encode` is base64 (the caller's; pure code has no
 * Buffer): it only encodes registry credentials for their docker config.
 */
export function buildInstallPlan(
  input: InstallInput,
  encode: (text: string) => string,
): readonly InstallStep[] {
  const { config, version } = input;
  const namespace = config.namespace;
  const labels = (component: string): Labels => componentLabels(component, version);
  const shared = labels('nginx-service-mesh');
  const context: WorkloadContext = { namespace, config, labels, upstreamCa: input.upstreamCa };
  const crds = buildMeshCrds() as unknown as Manifest[];
  return [
    step('namespace', `Creating namespace ${namespace}`, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: meta(namespace, undefined, shared) },
    ]),
    step(
      'crds',
      'Installing CRDs',
      crds,
      crds.map((crd) => ({ kind: 'crd-established', name: crd.metadata.name })),
    ),
    ...(input.gatewayApiCrds === undefined
      ? []
      : [gatewayApiStep(input.gatewayApiCrds), gatewayClassStep(shared)]),
    // The policy that confines the registrar's ConfigMap writes comes before the rights it guards.
    step('rbac', 'Creating service accounts and RBAC', [
      ...buildRegistrarAdmission(namespace, labels(REGISTRAR_NAME)),
      ...buildControllerAdmission(namespace, labels(CONTROLLER_NAME)),
      ...buildRbac(namespace, labels),
    ]),
    step('config', 'Storing the mesh configuration', [
      buildMeshConfigMap(config, namespace) as Manifest,
      ...secretManifests(input, namespace, shared, encode),
      buildMeshConfigClassResource(namespace) as Manifest,
      buildMeshConfigResource(config, namespace) as Manifest,
    ]),
    // NATS serves TLS with an SVID: the registrar comes first.
    step('registrar', 'Starting the registrar', buildRegistrar(context), [
      ready(namespace, REGISTRAR_NAME),
    ]),
    step('nats', 'Starting NATS', buildNats(context), [ready(namespace, NATS_NAME)]),
    step('controller', 'Starting the controller', buildController(context), [
      ready(namespace, CONTROLLER_NAME),
    ]),
    step('metrics', 'Starting the metrics API', buildMetrics(context), [
      ready(namespace, METRICS_NAME),
    ]),
    step(
      'registration',
      'Registering the injection webhook and the metrics API',
      [
        webhookConfiguration(namespace, labels(CONTROLLER_NAME)),
        apiService(namespace, labels(METRICS_NAME)),
      ],
      [{ kind: 'apiservice-available', name: METRICS_API_SERVICE_NAME }],
      [
        {
          kind: 'MutatingWebhookConfiguration',
          name: WEBHOOK_CONFIGURATION_NAME,
          namespace,
          secret: WEBHOOK_TLS_SECRET_NAME,
        },
        {
          kind: 'APIService',
          name: METRICS_API_SERVICE_NAME,
          namespace,
          secret: METRICS_TLS_SECRET_NAME,
        },
      ],
    ),
  ];
}

/** Every object of a plan, in apply order. */
export function planObjects(plan: readonly InstallStep[]): readonly Manifest[] {
  return plan.flatMap((each) => each.objects);
}
