// Removes a mesh in the order that keeps applications serving: sidecars are told to pass
// traffic through first, then the webhook configuration and the APIService go before the
// control plane behind them, then RBAC, the CRDs (and with them every policy) and the
// namespace. Every deletion tolerates "already gone", so a remove that was interrupted, or a
// deploy that stopped half-way, is finished by running remove again.
import {
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_MAP_TRANSPARENT_KEY,
  MESH_CONFIG_RESOURCE_NAME,
} from '../../manifests/constants';
import { formatDuration } from '../../manifests/duration';
import { collectionPath, resourceTypeOfKind } from '../../manifests/install/resources';
import type { KubeClient, KubeObject } from '../kube/client';
import type { Found, Installation } from './inventory';
import { findBundles, findLabelled } from './inventory';
import type { WaitContext } from './waits';
import { pollUntil, waitGone } from './waits';

/** How long sidecars get to confirm they went transparent (NGINX Service Mesh: 15 s). */
const TRANSPARENT_WAIT_MS = 15_000;

export interface ProxiedWorkload {
  readonly namespace: string;
  /** kind/name of the pod's owner (a Deployment rather than its ReplicaSet), or pod/name. */
  readonly resource: string;
}

function foundPath(found: Found): string {
  return `${collectionPath(found.type, found.namespace)}/${encodeURIComponent(found.name)}`;
}

async function ownerOf(client: KubeClient, pod: KubeObject): Promise<string> {
  const owner = pod.metadata?.ownerReferences?.find((each) => each.controller === true);
  if (owner === undefined) return `pod/${pod.metadata?.name ?? ''}`;
  if (owner.kind === 'ReplicaSet') {
    const replicaSet = await client.get<KubeObject>(
      `/apis/apps/v1/namespaces/${pod.metadata?.namespace ?? ''}/replicasets/${owner.name}`,
    );
    const top = replicaSet?.metadata?.ownerReferences?.find((each) => each.controller === true);
    if (top !== undefined) return `${top.kind.toLowerCase()}/${top.name}`;
  }
  return `${owner.kind.toLowerCase()}/${owner.name}`;
}

/** Workloads whose pods carry the sidecar, each once, sorted. */
export async function findProxiedWorkloads(client: KubeClient): Promise<ProxiedWorkload[]> {
  const pods = (await client.list<KubeObject>('/api/v1/pods')) ?? [];
  const seen = new Map<string, ProxiedWorkload>();
  for (const pod of pods) {
    if (pod.metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] !== INJECTION_STATUS_INJECTED)
      continue;
    const namespace = pod.metadata.namespace ?? '';
    const resource = await ownerOf(client, pod);
    seen.set(`${namespace}/${resource}`, { namespace, resource });
  }
  return [...seen.values()].sort((a, b) =>
    `${a.namespace}/${a.resource}`.localeCompare(`${b.namespace}/${b.resource}`),
  );
}

async function makeTransparent(
  installation: Installation,
  namespace: string,
  proxied: readonly ProxiedWorkload[],
  context: WaitContext,
): Promise<void> {
  if (!installation.namespaceExists || installation.namespaceTerminating) return;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${MESH_CONFIG_MAP_NAME}`;
  if ((await context.client.get(path)) === undefined) return;
  await context.client.mergePatch(path, { data: { [MESH_CONFIG_MAP_TRANSPARENT_KEY]: 'true' } });
  if (proxied.length === 0 || !installation.controller) return;
  const meshConfig = `/apis/nsm.nginx.com/v1alpha2/namespaces/${encodeURIComponent(namespace)}/meshconfigs/${MESH_CONFIG_RESOURCE_NAME}`;
  const deadline = Math.min(context.deadline, context.clock.now().getTime() + TRANSPARENT_WAIT_MS);
  const result = await pollUntil(context, deadline, async () => {
    const current = await context.client.get<{ status?: { transparent?: boolean } }>(meshConfig);
    return current === undefined || current.status?.transparent === true
      ? { done: true }
      : { done: false, why: `waiting for ${proxied.length} proxied workload(s) to go transparent` };
  });
  if (!result.done) {
    context.progress.note(
      `Warning: sidecars did not confirm pass-through within ${formatDuration(TRANSPARENT_WAIT_MS)}; continuing.`,
    );
  }
}

async function deleteAll(context: WaitContext, objects: readonly Found[]): Promise<void> {
  for (const found of objects) {
    context.progress.detail(`deleting ${found.type.kind} ${found.name}`);
    await context.client.delete(foundPath(found));
  }
}

export interface RemoveStep {
  readonly title: string;
  run(): Promise<void>;
}

/** The removal as titled steps, for progress; run them in order. */
export function removalSteps(
  installation: Installation,
  namespace: string,
  proxied: readonly ProxiedWorkload[],
  context: WaitContext,
): RemoveStep[] {
  const front = installation.clusterObjects.filter(
    (found) =>
      found.type.kind === 'MutatingWebhookConfiguration' || found.type.kind === 'APIService',
  );
  const rbac = installation.clusterObjects.filter((found) => !front.includes(found));
  const live = installation.namespaceExists && !installation.namespaceTerminating;
  return [
    {
      title: 'Making sidecar proxies transparent',
      run: () => makeTransparent(installation, namespace, proxied, context),
    },
    {
      title: 'Removing the injection webhook and the metrics API',
      run: () => deleteAll(context, front),
    },
    {
      title: 'Stopping the control plane',
      run: async () => {
        if (!live) return;
        await deleteAll(context, await findLabelled(context.client, 'Deployment', namespace));
        await deleteAll(context, await findLabelled(context.client, 'Service', namespace));
      },
    },
    { title: 'Removing RBAC', run: () => deleteAll(context, rbac) },
    {
      // After RBAC: a registrar still stopping can no longer publish them again.
      title: 'Removing trust bundles',
      run: async () => deleteAll(context, await findBundles(context.client, namespace)),
    },
    {
      title: 'Removing CRDs',
      run: async () => {
        const type = resourceTypeOfKind('CustomResourceDefinition');
        const crds = installation.crds.map((name) => ({ type, name }));
        await deleteAll(context, crds);
        for (const crd of crds) {
          await waitGone(context, `CustomResourceDefinition ${crd.name}`, foundPath(crd));
        }
      },
    },
    {
      title: `Deleting namespace ${namespace}`,
      run: async () => {
        if (!installation.namespaceOwned) return;
        const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
        await context.client.delete(path);
        await waitGone(
          context,
          `namespace ${namespace}`,
          path,
          `Check what holds it with "kubectl get all -n ${namespace}" and run remove again.`,
        );
      },
    },
  ];
}
