// The set-up every protocol e2e file shares: one mesh deployed for the file, an injected
// namespace for its apps and a plain one (no injection) beside it, the file's objects applied and
// Ready, and the protocol clients bundled; torn down in the reverse order. The plain namespace
// holds a direct pair (an echo server and a client, both unmeshed) unless the file says
// otherwise: the same calls without the mesh, for the latency lines of the run's report.
import type { KubeRest } from '../../cluster/harness/kube-rest';
import type { PodSummary } from '../../cluster/support/kube';
import {
  createNamespace,
  deleteNamespace,
  testRest,
  waitFor,
  waitForNoMesh,
} from '../../cluster/support/kube';
import {
  applyObjects,
  createInjectedNamespace,
  ECHO_PORT,
  echoDeployment,
  meshctl,
  netnsOf,
  readyPodOf,
  removeMesh,
  shellDeployment,
} from '../../cluster/support/mesh-apps';
import { LOCAL_IMAGE_FLAGS } from '../../support/images';
import type { ClientName, HttpOutcome, ProtocolClients } from './protocol-clients';
import { bundleClients, reportLatency } from './protocol-clients';

export interface ProtocolMeshOptions {
  readonly meshNamespace: string;
  /** The namespace whose pods are injected. */
  readonly apps: string;
  /** A namespace without injection. */
  readonly plain: string;
  /** deploy's flags besides the local images. */
  readonly deployFlags?: readonly string[];
  readonly clients: readonly ClientName[];
  readonly objects: readonly object[];
  /** Deployments (by app label) to wait Ready, per namespace; the direct pair is added. */
  readonly ready: Readonly<Record<string, readonly string[]>>;
  /** Anything else to wait for (a StatefulSet's pods): true once Ready. */
  readonly readyToo?: (rest: KubeRest) => Promise<boolean>;
  /** Leave out the direct pair (the file brings its own unmeshed pods). */
  readonly noDirectPair?: boolean;
}

export interface ProtocolMesh {
  readonly rest: KubeRest;
  readonly clients: ProtocolClients;
  readonly options: ProtocolMeshOptions;
}

/** The direct pair's names in the plain namespace. */
const DIRECT_SERVER = 'direct-server';
const DIRECT_CLIENT = 'direct-client';

/** Deploys the mesh and the file's apps; resolves once they are Ready. */
export async function setUpProtocolMesh(options: ProtocolMeshOptions): Promise<ProtocolMesh> {
  const rest = await testRest();
  await waitForNoMesh(rest);
  const [deployed, clients] = await Promise.all([
    meshctl(options.meshNamespace, [
      'deploy',
      ...LOCAL_IMAGE_FLAGS,
      ...(options.deployFlags ?? []),
    ]),
    bundleClients(options.clients),
  ]);
  if (deployed.exitCode !== 0) {
    clients.remove();
    throw new Error(`deploy failed:\n${deployed.stderr}`);
  }
  await createInjectedNamespace(rest, options.apps);
  await createNamespace(rest, options.plain);
  const direct = options.noDirectPair === true ? [] : [DIRECT_SERVER, DIRECT_CLIENT];
  await applyObjects([
    ...options.objects,
    ...(direct.length === 0
      ? []
      : [
          echoDeployment(options.plain, DIRECT_SERVER, { labels: { app: DIRECT_SERVER } }),
          shellDeployment(options.plain, DIRECT_CLIENT),
        ]),
  ]);
  const ready: Record<string, readonly string[]> = { ...options.ready };
  ready[options.plain] = [...(ready[options.plain] ?? []), ...direct];
  await waitFor(
    'the apps Ready',
    async () => {
      for (const [namespace, apps] of Object.entries(ready))
        for (const app of apps) await readyPodOf(rest, namespace, app);
      return options.readyToo === undefined || (await options.readyToo(rest)) || undefined;
    },
    180_000,
    500,
  );
  return { rest, clients, options };
}

/** Removes what setUpProtocolMesh made, the mesh last. */
export async function tearDownProtocolMesh(mesh: ProtocolMesh | undefined): Promise<void> {
  if (mesh === undefined) return;
  const { rest, clients, options } = mesh;
  clients.remove();
  await deleteNamespace(rest, options.apps);
  await deleteNamespace(rest, options.plain);
  await removeMesh(options.meshNamespace);
  rest.close();
}

/** The network namespace of a Ready pod (a host path). */
export async function netnsOfPod(pod: PodSummary): Promise<string> {
  return netnsOf(pod.status?.podIP ?? '');
}

/**
 * 200 sequential HTTP GETs to url from a meshed pod's namespace, and the same from the plain
 * namespace's direct client to directUrl (by default the direct server); writes the latency line
 * and checks that every request got 200.
 */
export async function compareHttpLatency(
  mesh: ProtocolMesh,
  what: string,
  meshedNetns: string,
  url: string,
  directUrl?: string,
): Promise<void> {
  const { rest, clients, options } = mesh;
  const meshed = await clients.run<HttpOutcome>(meshedNetns, 'http-client', [url, 'timed', '200']);
  const target =
    directUrl ??
    `http://${(await readyPodOf(rest, options.plain, DIRECT_SERVER)).status?.podIP ?? ''}:${ECHO_PORT}/`;
  const direct = await clients.run<HttpOutcome>(
    await netnsOfPod(await readyPodOf(rest, options.plain, DIRECT_CLIENT)),
    'http-client',
    [target, 'timed', '200'],
  );
  reportLatency(`${what} (200 sequential requests)`, meshed, direct);
  if (meshed.statuses?.['200'] !== 200 || direct.statuses?.['200'] !== 200)
    throw new Error(
      `not every request got 200: mesh ${JSON.stringify(meshed.statuses)}, direct ${JSON.stringify(direct.statuses)}`,
    );
}

/** The direct pair's pods, for latency comparisons of protocols other than HTTP. */
export async function directPair(
  mesh: ProtocolMesh,
): Promise<{ server: PodSummary; clientNetns: string }> {
  const { rest, options } = mesh;
  return {
    server: await readyPodOf(rest, options.plain, DIRECT_SERVER),
    clientNetns: await netnsOfPod(await readyPodOf(rest, options.plain, DIRECT_CLIENT)),
  };
}
