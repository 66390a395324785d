// Publishes the trust bundle as ConfigMap nginx-mesh-bundle in every namespace, the way
// Kubernetes publishes kube-root-ca.crt: a sidecar mounts it from its own namespace and so can
// verify the registrar before it has an SVID, with no trust on first use. The bundle is public
// data; only the registrar (and namespace admins, who control their pods anyway) can write it.
import { TRUST_BUNDLE_KEY } from '../../manifests/constants';

export interface BundleApi {
  listNamespaces(): Promise<string[]>;
  /**
   * The bundle ConfigMaps in every namespace (one list call with a field selector); owned: it
   * names the registrar's ClusterRole as owner.
   */
  listBundles(): Promise<
    { namespace: string; data: Record<string, string>; resourceVersion: string; owned: boolean }[]
  >;
  /** Creating one that exists already is not an error. */
  create(namespace: string, data: Record<string, string>): Promise<void>;
  /** Replacing one changed meanwhile is not an error: the next sync sees it again. */
  replace(namespace: string, data: Record<string, string>, resourceVersion: string): Promise<void>;
}

export interface PublishResult {
  readonly written: number;
  /** Namespaces whose ConfigMap could not be written, with the reason. */
  readonly failed: ReadonlyMap<string, string>;
}

/**
 * Brings every namespace's bundle ConfigMap in line; one namespace's failure stops no other. A
 * copy without its owner (written by an older version) is written again once, to be adopted: the
 * garbage collector deletes only the copies that name the registrar's ClusterRole.
 */
export async function publishBundle(api: BundleApi, bundlePem: string): Promise<PublishResult> {
  const [namespaces, existing] = await Promise.all([api.listNamespaces(), api.listBundles()]);
  const byNamespace = new Map(existing.map((item) => [item.namespace, item]));
  const data = { [TRUST_BUNDLE_KEY]: bundlePem };
  let written = 0;
  const failed = new Map<string, string>();
  for (const namespace of namespaces) {
    const current = byNamespace.get(namespace);
    if (current?.data[TRUST_BUNDLE_KEY] === bundlePem && current.owned) continue;
    try {
      if (current === undefined) await api.create(namespace, data);
      else await api.replace(namespace, data, current.resourceVersion);
      written += 1;
    } catch (error) {
      failed.set(namespace, error instanceof Error ? error.message : String(error));
    }
  }
  return { written, failed };
}
