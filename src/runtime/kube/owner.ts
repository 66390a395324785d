// The owner of what a role writes at run time: its own ClusterRole. deploy and the Helm chart
// both install it, remove and helm uninstall both delete it, and the garbage collector then
// deletes every object that names it as owner, in any namespace (a cluster-scoped owner is
// valid for namespaced dependents). Neither controller nor blockOwnerDeletion is set: both
// would need rights on the ClusterRole beyond get.
import type * as K8s from '@kubernetes/client-node';
import { PART_OF_LABEL, PART_OF_VALUE } from '../../manifests/constants';
import { describeError, MeshctlError } from '../../errors';
import type { FlagSpec } from '../../manifests/flag-spec';

const RBAC_API_VERSION = 'rbac.authorization.k8s.io/v1';
const CLUSTER_ROLE_KIND = 'ClusterRole';

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

/**
 * The owner reference every write carries. It rejects while the ClusterRole cannot be read, so
 * that no object is written without it: the caller's own retry loop tries again, and says so.
 */
export type OwnerSource = () => Promise<OwnerReference>;

/** --cluster-role of a role that writes at run time: its own ClusterRole, by default the installed one. */
export function clusterRoleFlag(installedName: string): FlagSpec {
  return {
    long: 'cluster-role',
    type: 'string',
    usage:
      'its own ClusterRole, the owner of the Secrets and ConfigMaps it writes: deleting it deletes them',
    defaultValue: installedName,
  };
}

/** The reference to ClusterRole name with uid. */
export function clusterRoleReference(name: string, uid: string): OwnerReference {
  return { apiVersion: RBAC_API_VERSION, kind: CLUSTER_ROLE_KIND, name, uid };
}

/** Whether metadata's ownerReferences name the ClusterRole (any uid). */
export function ownedByClusterRole(
  ownerReferences: readonly Partial<OwnerReference>[] | undefined,
  name: string,
): boolean {
  return (ownerReferences ?? []).some(
    (reference) =>
      reference.apiVersion === RBAC_API_VERSION &&
      reference.kind === CLUSTER_ROLE_KIND &&
      reference.name === name,
  );
}

/**
 * Metadata of an object a role writes: labelled part of the mesh and owned by the role's
 * ClusterRole alone, so a write adopts an object an older version wrote without an owner; with
 * resourceVersion, a replace is conditional.
 */
export async function ownedMetadata(
  name: string,
  namespace: string,
  owner: OwnerSource,
  resourceVersion?: string,
): Promise<K8s.V1ObjectMeta> {
  return {
    name,
    namespace,
    labels: { [PART_OF_LABEL]: PART_OF_VALUE },
    ownerReferences: [{ ...(await owner()) }],
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
  };
}

/** A failed request on one line: the client's status errors span many. */
function briefly(error: unknown): string {
  const status = (error as { code?: unknown }).code;
  if (typeof status === 'number') return `HTTP ${status}`;
  return describeError(error).split('\n')[0] ?? '';
}

/**
 * ClusterRole name's reference, read once: the first successful read is kept for the life of the
 * process (the uid of an object never changes); a failed one is not, so the next call reads again.
 */
export function clusterRoleOwner(
  name: string,
  readUid: (name: string) => Promise<string | undefined>,
): OwnerSource {
  let known: OwnerReference | undefined;
  return async () => {
    if (known !== undefined) return known;
    let uid: string | undefined;
    try {
      uid = await readUid(name);
    } catch (error) {
      throw new MeshctlError(
        `reading ClusterRole ${name}, the owner of what this role writes: ${briefly(error)}`,
        {
          cause: error,
          ...((error as { code?: unknown }).code === 403
            ? { hint: `the role's ClusterRole must grant get on clusterroles named ${name}` }
            : {}),
        },
      );
    }
    if (uid === undefined || uid === '') {
      throw new MeshctlError(`ClusterRole ${name}, the owner of what this role writes, has no uid`);
    }
    known = clusterRoleReference(name, uid);
    return known;
  };
}

/** clusterRoleOwner over the API server. */
export function kubeClusterRoleOwner(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  name: string,
): OwnerSource {
  const rbac = config.makeApiClient(k8s.RbacAuthorizationV1Api);
  return clusterRoleOwner(name, async (roleName) => {
    const role = await rbac.readClusterRole({ name: roleName });
    return role.metadata?.uid;
  });
}
