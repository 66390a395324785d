// Where each kind the mesh installs lives in the Kubernetes API: its group, version, plural and
// scope, so any object can be applied, read or deleted by its own apiVersion and kind. Pure.

export interface ResourceType {
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const core = (kind: string, plural: string, namespaced = true): ResourceType => ({
  group: '',
  version: 'v1',
  kind,
  plural,
  namespaced,
});

const typed = (
  apiVersion: string,
  kind: string,
  plural: string,
  namespaced: boolean,
): ResourceType => {
  const [group = '', version = ''] = apiVersion.split('/');
  return { group, version, kind, plural, namespaced };
};

export const RESOURCE_TYPES: readonly ResourceType[] = [
  core('Namespace', 'namespaces', false),
  core('ServiceAccount', 'serviceaccounts'),
  core('ConfigMap', 'configmaps'),
  core('Secret', 'secrets'),
  core('Service', 'services'),
  core('Pod', 'pods'),
  core('Event', 'events'),
  typed('apps/v1', 'Deployment', 'deployments', true),
  typed('rbac.authorization.k8s.io/v1', 'ClusterRole', 'clusterroles', false),
  typed('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  typed('rbac.authorization.k8s.io/v1', 'Role', 'roles', true),
  typed('rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings', true),
  typed('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'customresourcedefinitions', false),
  typed(
    'admissionregistration.k8s.io/v1',
    'MutatingWebhookConfiguration',
    'mutatingwebhookconfigurations',
    false,
  ),
  typed(
    'admissionregistration.k8s.io/v1',
    'ValidatingAdmissionPolicy',
    'validatingadmissionpolicies',
    false,
  ),
  typed(
    'admissionregistration.k8s.io/v1',
    'ValidatingAdmissionPolicyBinding',
    'validatingadmissionpolicybindings',
    false,
  ),
  typed('apiregistration.k8s.io/v1', 'APIService', 'apiservices', false),
  typed('nsm.nginx.com/v1alpha2', 'MeshConfigClass', 'meshconfigclasses', false),
  typed('nsm.nginx.com/v1alpha2', 'MeshConfig', 'meshconfigs', true),
  typed('discovery.k8s.io/v1', 'EndpointSlice', 'endpointslices', true),
  typed('coordination.k8s.io/v1', 'Lease', 'leases', true),
  typed('networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies', true),
  typed('split.smi-spec.io/v1alpha3', 'TrafficSplit', 'trafficsplits', true),
  typed('access.smi-spec.io/v1alpha2', 'TrafficTarget', 'traffictargets', true),
  typed('specs.smi-spec.io/v1alpha3', 'HTTPRouteGroup', 'httproutegroups', true),
  typed('specs.smi-spec.io/v1alpha3', 'TCPRoute', 'tcproutes', true),
  // v1alpha2 is RateLimit's storage version, and first so that lookups by kind find it.
  typed('specs.smi.nginx.com/v1alpha2', 'RateLimit', 'ratelimits', true),
  typed('specs.smi.nginx.com/v1alpha1', 'RateLimit', 'ratelimits', true),
  typed('specs.smi.nginx.com/v1alpha1', 'CircuitBreaker', 'circuitbreakers', true),
  typed('gateway.networking.k8s.io/v1', 'HTTPRoute', 'httproutes', true),
  typed('gateway.networking.k8s.io/v1', 'GRPCRoute', 'grpcroutes', true),
  typed('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant', 'referencegrants', true),
  typed('gateway.networking.k8s.io/v1', 'Gateway', 'gateways', true),
  typed('gateway.networking.k8s.io/v1', 'GatewayClass', 'gatewayclasses', false),
];

/** An object as far as the API paths need it. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** Ignored for cluster-scoped kinds. */
  readonly namespace?: string;
}

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

export function resourceType(apiVersion: string, kind: string): ResourceType {
  const type = RESOURCE_TYPES.find(
    (each) => each.kind === kind && apiVersionOf(each) === apiVersion,
  );
  if (type === undefined) throw new Error(`no API path is known for ${apiVersion} ${kind}`);
  return type;
}

export function resourceTypeOfKind(kind: string): ResourceType {
  const type = RESOURCE_TYPES.find((each) => each.kind === kind);
  if (type === undefined) throw new Error(`no API path is known for kind ${kind}`);
  return type;
}

/** The collection path of a type, in a namespace when the type is namespaced. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const root = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const scope =
    type.namespaced && namespace !== undefined
      ? `/namespaces/${encodeURIComponent(namespace)}`
      : '';
  return `${root}${scope}/${type.plural}`;
}

export function objectPath(ref: ObjectRef): string {
  const type = resourceType(ref.apiVersion, ref.kind);
  if (type.namespaced && ref.namespace === undefined) {
    throw new Error(`${ref.kind} ${ref.name} needs a namespace`);
  }
  return `${collectionPath(type, type.namespaced ? ref.namespace : undefined)}/${encodeURIComponent(ref.name)}`;
}

/** "kind/name" or "kind namespace/name", as messages name objects. */
export function describeRef(ref: ObjectRef): string {
  const type = resourceType(ref.apiVersion, ref.kind);
  return type.namespaced
    ? `${ref.kind} ${ref.namespace ?? ''}/${ref.name}`
    : `${ref.kind} ${ref.name}`;
}
