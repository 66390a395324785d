// What a support package holds, read from the cluster best effort: every piece that cannot be
// read is noted in supportpkg-creation-logs.txt and the rest is still collected. Credentials stay
// out: Secret values and credential fields of the stored configuration are REDACTED.
import {
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  INIT_CONTAINER_NAME,
  MESH_CONFIG_MAP_KEY,
  MESH_CONFIG_MAP_NAME,
  SIDECAR_CONTAINER_NAME,
} from '../../manifests/constants';
import { MESH_CRDS } from '../../manifests/crds';
import { collectionPath, resourceTypeOfKind } from '../../manifests/install/resources';
import {
  redactConfig,
  redactSecret,
  renderEventTable,
  renderPodTable,
  renderYamlObjects,
} from '../../render/support';
import type { SupportObject } from '../../render/support';
import type { TarEntry } from '../../render/tar';
import type { YamlStringify } from '../../render/yaml-documents';
import type { KubeClient } from '../../runtime/kube/client';
import { requestSidecarReport } from '../../runtime/kube/controller-report';
import { PART_OF_SELECTOR } from '../../runtime/install/inventory';
import { describeError } from '../../errors';

/** The most of one container's log a package holds (the API's limitBytes): the newest part. */
const LOG_LIMIT_BYTES = 5 * 1024 * 1024;

export interface CollectOptions {
  readonly namespace: string;
  readonly sidecarLogs: boolean;
  /** version.txt: the client's version and the control plane's, or why they are unknown. */
  readonly versionText: () => Promise<string>;
  readonly stringify: YamlStringify;
  readonly now: Date;
}

interface PodObject extends SupportObject {
  readonly spec?: {
    readonly nodeName?: string;
    readonly containers?: readonly { readonly name: string }[];
    readonly initContainers?: readonly { readonly name: string }[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly containerStatuses?: readonly {
      readonly name: string;
      readonly ready?: boolean;
      readonly restartCount?: number;
    }[];
    readonly initContainerStatuses?: readonly {
      readonly name: string;
      readonly restartCount?: number;
    }[];
  };
}

/** Kinds in the mesh namespace, each in a file of its own. */
const NAMESPACE_KINDS: readonly [kind: string, file: string][] = [
  ['Deployment', 'deployments.yaml'],
  ['Service', 'services.yaml'],
  ['ConfigMap', 'configmaps.yaml'],
  ['ServiceAccount', 'serviceaccounts.yaml'],
  ['Secret', 'secrets.yaml'],
];

/** Cluster-scoped kinds of the installation, found by the part-of label. */
const CLUSTER_KINDS: readonly [kind: string, file: string][] = [
  ['MutatingWebhookConfiguration', 'mutatingwebhookconfigurations.yaml'],
  ['APIService', 'apiservices.yaml'],
  ['ClusterRole', 'clusterroles.yaml'],
  ['ClusterRoleBinding', 'clusterrolebindings.yaml'],
  ['CustomResourceDefinition', 'crds.yaml'],
];

const README = `# Support package

Collected by nginx-meshctl supportpkg. Secret values and the credentials of the stored
configuration are REDACTED.

- version.txt: the versions of nginx-meshctl and of the control plane.
- <mesh namespace>/pods.txt, events.txt: the control plane's pods and events.
- <mesh namespace>/<pod>/: pod.yaml and each container's log (and its previous run's, if any).
- <mesh namespace>/*.yaml: its Deployments, Services, ConfigMaps, ServiceAccounts, Secrets.
- <mesh namespace>/sidecars.json: the controller's view of every sidecar (generation applied).
- meshconfig.json: the mesh configuration deploy stored.
- *.yaml at the top: the installation's cluster objects, and the mesh's policies in every
  namespace (TrafficSplits, TrafficTargets, HTTPRouteGroups, TCPRoutes, RateLimits,
  CircuitBreakers).
- <namespace>/<pod>/: for every injected pod, pod.yaml and its sidecar's and init's logs.
- supportpkg-creation-logs.txt: what could not be collected, and why.
`;

const sortByName = <T extends SupportObject>(items: readonly T[]): T[] =>
  [...items].sort((a, b) => {
    const left = `${a.metadata?.namespace ?? ''}/${a.metadata?.name ?? ''}`;
    const right = `${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`;
    return left < right ? -1 : left > right ? 1 : 0;
  });

/** Reads what it can; each failure is one line of the creation log. */
class Collection {
  readonly files: TarEntry[] = [];
  readonly problems: string[] = [];

  constructor(
    private readonly client: KubeClient,
    private readonly options: CollectOptions,
  ) {}

  add(path: string, content: string): void {
    this.files.push({ path, content });
  }

  async attempt(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.problems.push(`${what}: ${describeError(error)}`);
    }
  }

  async list<T extends SupportObject>(path: string, labelSelector?: string): Promise<T[]> {
    return sortByName((await this.client.list<T>(path, labelSelector)) ?? []);
  }

  yaml(objects: readonly SupportObject[]): string {
    return renderYamlObjects(objects, this.options.stringify);
  }

  /** A container's log, or its previous run's; the API's error when it has none. */
  async log(namespace: string, pod: string, container: string, previous: boolean): Promise<string> {
    const query = new URLSearchParams({ container, limitBytes: String(LOG_LIMIT_BYTES) });
    if (previous) query.set('previous', 'true');
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log?${query.toString()}`;
    const response = await this.client.connection.request({ method: 'GET', path });
    if (response.status !== 200)
      throw new Error(`HTTP ${response.status}: ${response.body.trim()}`);
    return response.body;
  }

  /** A container's log, and its previous run's when it restarted, each as a file of the pod's. */
  async containerLogs(dir: string, pod: PodObject, container: string): Promise<void> {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    await this.attempt(`logs of ${dir} ${container}`, async () => {
      this.add(`${dir}/${container}-logs.txt`, await this.log(namespace, name, container, false));
    });
    const statuses = [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ];
    const restarts = statuses.find((status) => status.name === container)?.restartCount ?? 0;
    if (restarts === 0) return;
    await this.attempt(`previous logs of ${dir} ${container}`, async () => {
      this.add(
        `${dir}/${container}-previous-logs.txt`,
        await this.log(namespace, name, container, true),
      );
    });
  }

  /** pod.yaml and the logs of the named containers (all of them when names is undefined). */
  async pod(pod: PodObject, names?: readonly string[]): Promise<void> {
    const dir = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    this.add(`${dir}/pod.yaml`, this.yaml([{ kind: 'Pod', ...pod }]));
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
      .map((container) => container.name)
      .filter((container) => names === undefined || names.includes(container));
    for (const container of containers) await this.containerLogs(dir, pod, container);
  }
}

async function meshNamespace(collection: Collection, client: KubeClient, options: CollectOptions) {
  const { namespace, now } = options;
  await collection.attempt(`pods of ${namespace}`, async () => {
    const pods = await collection.list<PodObject>(
      collectionPath(resourceTypeOfKind('Pod'), namespace),
    );
    collection.add(`${namespace}/pods.txt`, renderPodTable(pods, now));
    for (const pod of pods) await collection.pod(pod);
  });
  await collection.attempt(`events of ${namespace}`, async () => {
    const events = await collection.list(collectionPath(resourceTypeOfKind('Event'), namespace));
    collection.add(`${namespace}/events.txt`, renderEventTable(events, now));
  });
  for (const [kind, file] of NAMESPACE_KINDS) {
    await collection.attempt(`${kind}s of ${namespace}`, async () => {
      const objects = await collection.list(collectionPath(resourceTypeOfKind(kind), namespace));
      const kept = kind === 'Secret' ? objects.map(redactSecret) : objects;
      collection.add(
        `${namespace}/${file}`,
        collection.yaml(kept.map((each) => ({ kind, ...each }))),
      );
    });
  }
  await collection.attempt('the controller sidecar report', async () => {
    const response = await requestSidecarReport(client, namespace);
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    collection.add(
      `${namespace}/sidecars.json`,
      `${JSON.stringify(JSON.parse(response.body), null, 2)}\n`,
    );
  });
  await collection.attempt('the stored mesh configuration', async () => {
    const map = await client.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${MESH_CONFIG_MAP_NAME}`,
    );
    const text = map?.data?.[MESH_CONFIG_MAP_KEY];
    if (text === undefined)
      throw new Error(`ConfigMap ${MESH_CONFIG_MAP_NAME} has no ${MESH_CONFIG_MAP_KEY}`);
    collection.add(
      'meshconfig.json',
      `${JSON.stringify(redactConfig(JSON.parse(text)), null, 2)}\n`,
    );
  });
}

async function clusterObjects(collection: Collection): Promise<void> {
  for (const [kind, file] of CLUSTER_KINDS) {
    await collection.attempt(`${kind}s of the installation`, async () => {
      const objects = await collection.list(
        collectionPath(resourceTypeOfKind(kind)),
        PART_OF_SELECTOR,
      );
      collection.add(file, collection.yaml(objects.map((each) => ({ kind, ...each }))));
    });
  }
  for (const crd of MESH_CRDS) {
    const version = crd.versions.find((each) => each.storage)?.name ?? crd.versions[0]?.name ?? '';
    await collection.attempt(`${crd.plural}`, async () => {
      const objects = await collection.list(`/apis/${crd.group}/${version}/${crd.plural}`);
      collection.add(
        `${crd.plural}.yaml`,
        collection.yaml(objects.map((each) => ({ kind: crd.kind, ...each }))),
      );
    });
  }
}

/** Injected pods outside the mesh namespace: pod.yaml, and the sidecar's and init's logs. */
async function injectedPods(collection: Collection, options: CollectOptions): Promise<void> {
  await collection.attempt('injected pods', async () => {
    const pods = await collection.list<PodObject>(collectionPath(resourceTypeOfKind('Pod')));
    const injected = pods.filter(
      (pod) =>
        pod.metadata?.namespace !== options.namespace &&
        (pod.metadata as { annotations?: Record<string, string> } | undefined)?.annotations?.[
          INJECTION_STATUS_ANNOTATION
        ] === INJECTION_STATUS_INJECTED,
    );
    for (const pod of injected) {
      if (options.sidecarLogs)
        await collection.pod(pod, [SIDECAR_CONTAINER_NAME, INIT_CONTAINER_NAME]);
      else await collection.pod(pod, []);
    }
  });
}

/** Every file of the package, the creation log last. */
export async function collectSupportPackage(
  client: KubeClient,
  options: CollectOptions,
): Promise<TarEntry[]> {
  const collection = new Collection(client, options);
  collection.add('README.md', README);
  await collection.attempt('versions', async () =>
    collection.add('version.txt', await options.versionText()),
  );
  await meshNamespace(collection, client, options);
  await clusterObjects(collection);
  await injectedPods(collection, options);
  const log =
    collection.problems.length === 0
      ? 'Everything was collected.\n'
      : `${collection.problems.join('\n')}\n`;
  collection.add('supportpkg-creation-logs.txt', log);
  return collection.files;
}
