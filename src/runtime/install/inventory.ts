// What of a mesh is on the cluster: every object labelled app.kubernetes.io/part-of=
// nginx-service-mesh that deploy creates outside the mesh namespace, the namespace itself, and
// mesh CRDs someone else installed, and the Gateway API CRDs deploy installed. Deploy refuses to run over it; remove deletes what it finds,
// so an interrupted deploy or remove is finished by running remove again.
import {
  CONTROLLER_NAME,
  HELM_MANAGED_BY_VALUE,
  HELM_RELEASE_NAME_ANNOTATION,
  PART_OF_LABEL,
  PART_OF_VALUE,
} from '../../manifests/constants';
import { MANAGED_BY_LABEL } from '../../manifests/install/objects';
import { MESH_CRDS } from '../../manifests/crds';
import { GATEWAY_API_CRD_NAMES } from '../../manifests/gateway-api/crds';
import { GATEWAY_MANAGED_LABEL } from '../../manifests/gateway/workload';
import type { ResourceType } from '../../manifests/install/resources';
import { collectionPath, resourceTypeOfKind } from '../../manifests/install/resources';
import type { KubeClient, KubeObject } from '../kube/client';
import { KubeApiError } from '../kube/client';

export const PART_OF_SELECTOR = `${PART_OF_LABEL}=${PART_OF_VALUE}`;

export interface Found {
  readonly type: ResourceType;
  readonly name: string;
  readonly namespace?: string;
}

export interface Installation {
  /** The mesh namespace exists (labelled as the mesh's or not). */
  readonly namespaceExists: boolean;
  /** The namespace carries the part-of label: deploy created it, remove may delete it. */
  readonly namespaceOwned: boolean;
  readonly namespaceTerminating: boolean;
  /** The controller's Deployment exists in the namespace. */
  readonly controller: boolean;
  /** The Helm release the controller's Deployment belongs to, when the chart installed the mesh. */
  readonly helmRelease?: string;
  readonly crds: readonly string[];
  /** Mesh CRD names present without the part-of label. */
  readonly foreignCrds: readonly string[];
  /**
   * Gateway API CRDs deploy installed (they carry the part-of label); ones that were there before
   * deploy do not, and stay.
   */
  readonly gatewayApiCrds: readonly string[];
  /** Labelled objects outside the mesh namespace, in the order remove deletes them. */
  readonly clusterObjects: readonly Found[];
  /** The registrar's trust-bundle ConfigMaps, one per namespace. */
  readonly bundles: readonly Found[];
  /**
   * What the controller made for Gateways (labelled nsm.nginx.com/gateway): their Deployments,
   * Services, Secrets and ServiceAccounts, in the order remove deletes them.
   */
  readonly gateways: readonly Found[];
}

/** Kinds of the objects the controller makes for a Gateway, in the order remove deletes them. */
const GATEWAY_KINDS: readonly string[] = ['Deployment', 'Service', 'Secret', 'ServiceAccount'];

/**
 * Kinds remove deletes outside the namespace, in order: front doors first, then RBAC, then the
 * policy that confined the registrar's rights (once those rights are gone).
 */
const CLUSTER_KINDS: readonly { kind: string; namespace?: string }[] = [
  { kind: 'MutatingWebhookConfiguration' },
  { kind: 'APIService' },
  { kind: 'ClusterRoleBinding' },
  { kind: 'ClusterRole' },
  { kind: 'RoleBinding', namespace: 'kube-system' },
  { kind: 'ValidatingAdmissionPolicyBinding' },
  { kind: 'ValidatingAdmissionPolicy' },
  { kind: 'GatewayClass' },
];

const CRD_NAMES: ReadonlySet<string> = new Set(
  MESH_CRDS.map((crd) => `${crd.plural}.${crd.group}`),
);
const GATEWAY_API_CRDS: ReadonlySet<string> = new Set(GATEWAY_API_CRD_NAMES);

/** Every object of a kind labelled part of the mesh, in one namespace or in all of them. */
export async function findLabelled(
  client: KubeClient,
  kind: string,
  namespace?: string,
  selector = PART_OF_SELECTOR,
): Promise<Found[]> {
  const type = resourceTypeOfKind(kind);
  const items = (await listSettled(client, collectionPath(type, namespace), selector)) ?? [];
  return items.map((item) => {
    const where = item.metadata?.namespace;
    return {
      type,
      name: item.metadata?.name ?? '',
      ...(where === undefined ? {} : { namespace: where }),
    };
  });
}

/** How long a list waits for the API server's storage of a kind whose CRD was just created. */
const STORAGE_SETTLE_MS = 15_000;
const STORAGE_RETRY_MS = 500;

/**
 * client.list, asked again while the API server says its storage of the kind is still being set up
 * ("storage is (re)initializing", right after the kind's CRD was created, as deploy's Gateway API
 * step does), or answers 503 or 429.
 */
async function listSettled(
  client: KubeClient,
  path: string,
  selector: string,
): Promise<KubeObject[] | undefined> {
  const deadline = Date.now() + STORAGE_SETTLE_MS;
  for (;;) {
    try {
      return await client.list<KubeObject>(path, selector);
    } catch (error) {
      const settling =
        error instanceof KubeApiError &&
        (error.status === 503 || error.status === 429 || /initializing/.test(error.message));
      if (!settling || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, STORAGE_RETRY_MS));
    }
  }
}

/** The registrar's trust-bundle ConfigMaps outside the mesh namespace. */
export async function findBundles(client: KubeClient, namespace: string): Promise<Found[]> {
  return (await findLabelled(client, 'ConfigMap')).filter((found) => found.namespace !== namespace);
}

/**
 * The Helm release an object of the mesh belongs to, or undefined when Helm does not manage it.
 * Helm names the release in an annotation; an object labelled managed-by Helm without it belongs
 * to a release of unknown name ('').
 */
export function helmReleaseOf(object: KubeObject | undefined): string | undefined {
  const release = object?.metadata?.annotations?.[HELM_RELEASE_NAME_ANNOTATION];
  if (release !== undefined && release !== '') return release;
  return object?.metadata?.labels?.[MANAGED_BY_LABEL] === HELM_MANAGED_BY_VALUE ? '' : undefined;
}

/** The release as a Helm command names it: a placeholder when the name is unknown. */
export function helmReleaseArgument(release: string): string {
  return release === '' ? '<release>' : release;
}

export async function findInstallation(
  client: KubeClient,
  namespace: string,
): Promise<Installation> {
  const ns = await client.get<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(namespace)}`);
  const crdType = resourceTypeOfKind('CustomResourceDefinition');
  const crds = (await client.list<KubeObject>(collectionPath(crdType))) ?? [];
  const meshCrds = crds.filter((crd) => CRD_NAMES.has(crd.metadata?.name ?? ''));
  const labelled = (crd: KubeObject): boolean =>
    crd.metadata?.labels?.[PART_OF_LABEL] === PART_OF_VALUE;
  const clusterObjects: Found[] = [];
  for (const { kind, namespace: where } of CLUSTER_KINDS) {
    clusterObjects.push(...(await findLabelled(client, kind, where)));
  }
  const bundles = await findBundles(client, namespace);
  const gateways: Found[] = [];
  for (const kind of GATEWAY_KINDS) {
    gateways.push(...(await findLabelled(client, kind, undefined, GATEWAY_MANAGED_LABEL)));
  }
  const controller =
    ns === undefined
      ? undefined
      : await client.get<KubeObject>(
          `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${CONTROLLER_NAME}`,
        );
  const helmRelease = helmReleaseOf(controller);
  return {
    namespaceExists: ns !== undefined,
    namespaceOwned: ns?.metadata?.labels?.[PART_OF_LABEL] === PART_OF_VALUE,
    namespaceTerminating: ns?.metadata?.deletionTimestamp !== undefined,
    controller: controller !== undefined,
    ...(helmRelease === undefined ? {} : { helmRelease }),
    crds: meshCrds.filter(labelled).map((crd) => crd.metadata?.name ?? ''),
    foreignCrds: meshCrds.filter((crd) => !labelled(crd)).map((crd) => crd.metadata?.name ?? ''),
    gatewayApiCrds: crds
      .filter((crd) => GATEWAY_API_CRDS.has(crd.metadata?.name ?? '') && labelled(crd))
      .map((crd) => crd.metadata?.name ?? ''),
    clusterObjects,
    bundles,
    gateways,
  };
}

/** Whether anything of a mesh is left. */
export function isEmpty(installation: Installation): boolean {
  return (
    !installation.namespaceOwned &&
    !installation.controller &&
    installation.crds.length === 0 &&
    installation.gatewayApiCrds.length === 0 &&
    installation.clusterObjects.length === 0 &&
    installation.bundles.length === 0 &&
    installation.gateways.length === 0
  );
}
