// The registrar's Kubernetes calls: TokenReview and pod lookup over the mesh's own client (they
// are on every SVID's path), the CA Secret and the trust bundle ConfigMaps over
// @kubernetes/client-node (loaded by the caller, on demand).
import type * as K8s from '@kubernetes/client-node';
import { toPodFacts } from '../../manifests/registrar/pod-facts';
import type { TokenReviewFacts } from '../../manifests/registrar/svid-policy';
import type { KubeConnection } from '../kube/access';
import { KubeClient } from '../kube/client';
import type { OwnerSource } from '../kube/owner';
import { ownedByClusterRole, ownedMetadata } from '../kube/owner';
import type { BundleApi } from './bundle-publisher';
import type { CaStore } from './ca-state';
import type { WorkloadDirectory } from './issuer';

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

async function unlessStatus<T>(status: number, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (statusOf(error) === status) return undefined;
    throw error;
  }
}

interface TokenReviewStatus {
  readonly status?: {
    readonly authenticated?: boolean;
    readonly user?: { readonly username?: string; readonly extra?: Record<string, string[]> };
    readonly audiences?: string[];
    readonly error?: string;
  };
}

/**
 * The TokenReview and the pod read of every SVID, over the mesh's own client: its requests share
 * kept-alive connections, where client-node opens a new TLS connection to the API server for
 * each call (two handshakes per SVID, on both sides).
 */
export function kubeWorkloadDirectory(connection: KubeConnection): WorkloadDirectory {
  const client = new KubeClient(connection);
  return {
    async reviewToken(token, audience) {
      const review = await client.create<TokenReviewStatus>(
        '/apis/authentication.k8s.io/v1/tokenreviews',
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [audience] },
        },
      );
      const status = review.status ?? {};
      return {
        authenticated: status.authenticated === true,
        username: status.user?.username ?? '',
        extra: status.user?.extra ?? {},
        audiences: status.audiences ?? [],
        error: status.error ?? '',
      } satisfies TokenReviewFacts;
    },
    async readPod(namespace, name) {
      const pod = await client.get<unknown>(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      );
      return pod === undefined ? undefined : toPodFacts(pod, { namespace, name });
    },
  };
}

export function kubeCaStore(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  namespace: string,
  name: string,
  owner: OwnerSource,
): CaStore {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const body = async (
    data: Record<string, string>,
    resourceVersion?: string,
  ): Promise<K8s.V1Secret> => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: await ownedMetadata(name, namespace, owner, resourceVersion),
    data,
  });
  return {
    async read() {
      const secret = await unlessStatus(404, () => core.readNamespacedSecret({ name, namespace }));
      if (secret === undefined) return undefined;
      return { data: secret.data ?? {}, resourceVersion: secret.metadata?.resourceVersion ?? '' };
    },
    async create(data) {
      const secret = await body(data);
      const created = await unlessStatus(409, () =>
        core.createNamespacedSecret({ namespace, body: secret }),
      );
      return created !== undefined;
    },
    async replace(data, resourceVersion) {
      const secret = await body(data, resourceVersion);
      const replaced = await unlessStatus(409, () =>
        core.replaceNamespacedSecret({ name, namespace, body: secret }),
      );
      return replaced !== undefined;
    },
  };
}

/** The bundle ConfigMaps, owned by ClusterRole ownerName (owner() reads its uid). */
export function kubeBundleApi(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  name: string,
  ownerName: string,
  owner: OwnerSource,
): BundleApi {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const body = async (
    namespace: string,
    data: Record<string, string>,
    resourceVersion?: string,
  ): Promise<K8s.V1ConfigMap> => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: await ownedMetadata(name, namespace, owner, resourceVersion),
    data,
  });
  return {
    async listNamespaces() {
      const list = await core.listNamespace();
      return list.items
        .filter((item) => item.status?.phase !== 'Terminating')
        .map((item) => item.metadata?.name ?? '')
        .filter((item) => item !== '');
    },
    async listBundles() {
      const list = await core.listConfigMapForAllNamespaces({
        fieldSelector: `metadata.name=${name}`,
      });
      return list.items.map((item) => ({
        namespace: item.metadata?.namespace ?? '',
        data: item.data ?? {},
        resourceVersion: item.metadata?.resourceVersion ?? '',
        owned: ownedByClusterRole(item.metadata?.ownerReferences, ownerName),
      }));
    },
    async create(namespace, data) {
      const configMap = await body(namespace, data);
      await unlessStatus(409, () => core.createNamespacedConfigMap({ namespace, body: configMap }));
    },
    async replace(namespace, data, resourceVersion) {
      const configMap = await body(namespace, data, resourceVersion);
      await unlessStatus(409, () =>
        core.replaceNamespacedConfigMap({ name, namespace, body: configMap }),
      );
    },
  };
}
