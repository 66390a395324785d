// ServiceAccounts and least-privilege RBAC for the control plane: no wildcard verbs or resources,
// Secrets and ConfigMaps by name wherever the API allows it (create cannot be narrowed by name),
// cluster-wide rights only for what is cluster-wide by nature. Names follow NGINX Service Mesh.
// Pure.
import {
  CONTROLLER_NAME,
  CONTROLLER_REPORT_SECRET_NAME,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_RESOURCE_NAME,
  METRICS_API_SERVICE_NAME,
  METRICS_NAME,
  METRICS_TLS_SECRET_NAME,
  NATS_NAME,
  NATS_SERVICE_ACCOUNT_NAME,
  REGISTRAR_CA_SECRET_NAME,
  REGISTRAR_NAME,
  TRUST_BUNDLE_CONFIG_MAP_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_TLS_SECRET_NAME,
} from '../constants';
import { GATEWAY_API_GROUP } from '../gateway-api/crds';
import type { Labels, Manifest } from './objects';
import { meta } from './objects';

interface Rule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

const READ = ['get', 'list', 'watch'] as const;
const RBAC = 'rbac.authorization.k8s.io/v1';

const rule = (
  apiGroup: string,
  resources: readonly string[],
  verbs: readonly string[],
  resourceNames?: readonly string[],
): Rule => ({
  apiGroups: [apiGroup],
  resources,
  verbs,
  ...(resourceNames === undefined ? {} : { resourceNames }),
});

/** Keeping a self-managed Secret: create it, then read and replace only that one. */
const ownSecret = (name: string): readonly Rule[] => [
  rule('', ['secrets'], ['create']),
  rule('', ['secrets'], ['get', 'update'], [name]),
];

/**
 * Reading the account's own ClusterRole: its uid makes it the owner of what the role writes at
 * run time, so that the garbage collector deletes those objects with it.
 */
const ownClusterRole = (name: string): Rule =>
  rule('rbac.authorization.k8s.io', ['clusterroles'], ['get'], [name]);

/** Reading a status before patching it, and writing it (never the object itself). */
const STATUS_WRITE = ['get', 'update', 'patch'] as const;

/**
 * The SMI and NSM policy kinds the controller turns into sidecar configuration, and their status
 * subresources, where it writes the Accepted condition.
 */
const POLICY_RULES: readonly Rule[] = [
  rule('split.smi-spec.io', ['trafficsplits'], READ),
  rule('access.smi-spec.io', ['traffictargets'], READ),
  rule('specs.smi-spec.io', ['httproutegroups', 'tcproutes'], READ),
  rule('specs.smi.nginx.com', ['ratelimits', 'circuitbreakers'], READ),
  rule('split.smi-spec.io', ['trafficsplits/status'], STATUS_WRITE),
  rule('access.smi-spec.io', ['traffictargets/status'], STATUS_WRITE),
  rule('specs.smi-spec.io', ['httproutegroups/status', 'tcproutes/status'], STATUS_WRITE),
  rule('specs.smi.nginx.com', ['ratelimits/status', 'circuitbreakers/status'], STATUS_WRITE),
];

/**
 * The Gateway API kinds the controller reads (HTTPRoutes attached to Services, the
 * ReferenceGrants that let them reach other namespaces, and the Gateway kinds a route may name
 * as parent), and the route status subresources where it writes its parents' conditions.
 */
const GATEWAY_API_RULES: readonly Rule[] = [
  rule(
    GATEWAY_API_GROUP,
    ['httproutes', 'grpcroutes', 'referencegrants', 'gateways', 'gatewayclasses'],
    READ,
  ),
  rule(GATEWAY_API_GROUP, ['httproutes/status', 'grpcroutes/status'], ['update', 'patch']),
  rule(GATEWAY_API_GROUP, ['gateways/status', 'gatewayclasses/status'], ['update', 'patch']),
];

/**
 * What the controller runs for each Gateway of the mesh's GatewayClass
 * (manifests/gateway/workload.ts): it reads the listeners' certificate Secrets (type
 * kubernetes.io/tls, watched with a field selector) and applies the gateway's ServiceAccount,
 * certificate Secret, Service and Deployment in the Gateway's namespace.
 */
const GATEWAY_WORKLOAD_RULES: readonly Rule[] = [
  rule('', ['secrets'], READ),
  rule('', ['secrets', 'serviceaccounts', 'services'], ['get', 'create', 'patch']),
  rule('apps', ['deployments'], ['get', 'create', 'patch']),
];

export interface RbacNames {
  readonly clusterRole: string;
  readonly role: string;
}

export const CONTROLLER_RBAC_NAME = `${CONTROLLER_NAME}.internal.builtin.nsm.nginx`;
export const REGISTRAR_RBAC_NAME = `${REGISTRAR_NAME}.security.builtin.nsm.nginx`;
export const METRICS_RBAC_NAME = `${METRICS_NAME}.internal.builtin.nsm.nginx`;
export const METRICS_DELEGATION_NAME = `${METRICS_NAME}-svc.internal.builtin.nsm.nginx`;
export const NATS_RBAC_NAME = `${NATS_NAME}.internal.builtin.nsm.nginx`;

interface Account {
  readonly serviceAccount: string;
  readonly name: string;
  readonly clusterRules: readonly Rule[];
  readonly namespaceRules: readonly Rule[];
}

function accounts(): readonly Account[] {
  return [
    {
      serviceAccount: CONTROLLER_NAME,
      name: CONTROLLER_RBAC_NAME,
      clusterRules: [
        rule('', ['namespaces', 'services', 'pods'], READ),
        rule('discovery.k8s.io', ['endpointslices'], READ),
        rule('apps', ['replicasets', 'deployments', 'statefulsets', 'daemonsets'], READ),
        rule('', ['events'], ['create', 'patch']),
        rule('events.k8s.io', ['events'], ['create', 'patch']),
        ...POLICY_RULES,
        ...GATEWAY_API_RULES,
        ...GATEWAY_WORKLOAD_RULES,
        rule('nsm.nginx.com', ['meshconfigclasses'], READ),
        rule(
          'admissionregistration.k8s.io',
          ['mutatingwebhookconfigurations'],
          ['get', 'patch'],
          [WEBHOOK_CONFIGURATION_NAME],
        ),
        ownClusterRole(CONTROLLER_RBAC_NAME),
      ],
      // The runtime MeshConfig, the meshconfig ConfigMap and the leader Lease exist only in
      // the mesh namespace, each by one name: list and watch select it with metadata.name.
      namespaceRules: [
        ...ownSecret(WEBHOOK_TLS_SECRET_NAME),
        // The sidecar report's token: created once (create above), then only read.
        rule('', ['secrets'], ['get'], [CONTROLLER_REPORT_SECRET_NAME]),
        rule('', ['configmaps'], READ, [MESH_CONFIG_MAP_NAME]),
        rule('coordination.k8s.io', ['leases'], ['create']),
        rule('coordination.k8s.io', ['leases'], ['get', 'update'], [CONTROLLER_NAME]),
        rule('nsm.nginx.com', ['meshconfigs'], READ, [MESH_CONFIG_RESOURCE_NAME]),
        rule('nsm.nginx.com', ['meshconfigs/status'], STATUS_WRITE, [MESH_CONFIG_RESOURCE_NAME]),
      ],
    },
    {
      serviceAccount: REGISTRAR_NAME,
      name: REGISTRAR_RBAC_NAME,
      // Tokens are checked with TokenReview and their pods looked up; the trust bundle is
      // published as a ConfigMap in every namespace, as kube-root-ca.crt is. `create` cannot be
      // narrowed by name here: registrar-admission.ts confines it to that one ConfigMap.
      clusterRules: [
        rule('authentication.k8s.io', ['tokenreviews'], ['create']),
        rule('', ['pods'], ['get']),
        rule('', ['namespaces'], ['list', 'watch']),
        rule('', ['configmaps'], ['create']),
        rule('', ['configmaps'], ['list', 'update'], [TRUST_BUNDLE_CONFIG_MAP_NAME]),
        ownClusterRole(REGISTRAR_RBAC_NAME),
      ],
      namespaceRules: ownSecret(REGISTRAR_CA_SECRET_NAME),
    },
    {
      serviceAccount: METRICS_NAME,
      name: METRICS_RBAC_NAME,
      // The metrics come from Prometheus: the API is needed only for its own certificate and
      // its APIService's CA bundle (callers are checked through auth-delegator, below).
      clusterRules: [
        rule(
          'apiregistration.k8s.io',
          ['apiservices'],
          ['get', 'patch'],
          [METRICS_API_SERVICE_NAME],
        ),
        ownClusterRole(METRICS_RBAC_NAME),
      ],
      namespaceRules: ownSecret(METRICS_TLS_SECRET_NAME),
    },
    {
      serviceAccount: NATS_SERVICE_ACCOUNT_NAME,
      name: NATS_RBAC_NAME,
      // NATS's users are the cluster's ServiceAccounts (its cert-reloader renders them).
      clusterRules: [rule('', ['serviceaccounts'], ['list', 'watch'])],
      namespaceRules: [],
    },
  ];
}

export function serviceAccountNames(): readonly string[] {
  return accounts().map((account) => account.serviceAccount);
}

function subject(serviceAccount: string, namespace: string): object {
  return { kind: 'ServiceAccount', name: serviceAccount, namespace };
}

/** ServiceAccounts, then each account's ClusterRole, Role and their bindings. */
export function buildRbac(namespace: string, component: (name: string) => Labels): Manifest[] {
  const manifests: Manifest[] = serviceAccountNames().map((name) => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(name, namespace, component(name)),
    automountServiceAccountToken: name !== NATS_SERVICE_ACCOUNT_NAME,
  }));
  for (const account of accounts()) {
    const labels = component(account.serviceAccount);
    const subjects = [subject(account.serviceAccount, namespace)];
    manifests.push(
      {
        apiVersion: RBAC,
        kind: 'ClusterRole',
        metadata: meta(account.name, undefined, labels),
        rules: account.clusterRules,
      },
      {
        apiVersion: RBAC,
        kind: 'ClusterRoleBinding',
        metadata: meta(account.name, undefined, labels),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: account.name },
        subjects,
      },
    );
    if (account.namespaceRules.length === 0) continue;
    manifests.push(
      {
        apiVersion: RBAC,
        kind: 'Role',
        metadata: meta(account.name, namespace, labels),
        rules: account.namespaceRules,
      },
      {
        apiVersion: RBAC,
        kind: 'RoleBinding',
        metadata: meta(account.name, namespace, labels),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account.name },
        subjects,
      },
    );
  }
  // An aggregated API server checks its callers through the API server (auth-delegator) and
  // reads the front proxy's CA from kube-system (extension-apiserver-authentication-reader).
  const metricsLabels = component(METRICS_NAME);
  const metricsSubjects = [subject(METRICS_NAME, namespace)];
  manifests.push(
    {
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: meta(METRICS_DELEGATION_NAME, undefined, metricsLabels),
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:auth-delegator',
      },
      subjects: metricsSubjects,
    },
    {
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: meta(METRICS_DELEGATION_NAME, 'kube-system', metricsLabels),
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'extension-apiserver-authentication-reader',
      },
      subjects: metricsSubjects,
    },
  );
  return manifests;
}
