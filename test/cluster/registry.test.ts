// The user's path, as the README gives it: build the images, push them to your registry, deploy
// with --registry-server and --image-tag. Here the registry is Debian's docker-registry on the
// host end of the node's link, and the node pulls every mesh image from it (none of these names
// was imported), the sidecar and init images of an injected pod among them.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeRest } from './harness/kube-rest';
import { buildTopology } from './harness/topology';
import { TEST_CLUSTER_INSTANCE } from './support/global-setup';
import { isReady, listPods, testRest, waitFor, waitForNoMesh } from './support/kube';
import {
  createInjectedNamespace,
  echoDeployment,
  meshctl as meshctlIn,
  removeMesh,
} from './support/mesh-apps';
import { deleteNamespace } from './support/kube';
import { IMAGE_TAG } from '../support/images';

const root = join(__dirname, '..', '..');
const topology = buildTopology(TEST_CLUSTER_INSTANCE);
const meshNamespace = 'mesh-registry';
const apps = 'registry-apps';
const registry = `${topology.registryHost}/nsm`;
let rest: KubeRest;
let scratch: string;
let server: ResultPromise | undefined;
let serverLog = '';

/** What a pod's status says about the images its containers run. */
interface PodImages {
  readonly initContainerStatuses?: readonly { image: string; imageID: string }[];
  readonly containerStatuses?: readonly { image: string; imageID: string }[];
}

function meshctl(args: readonly string[]) {
  return meshctlIn(meshNamespace, args);
}

/** Debian's docker-registry (the CNCF distribution registry) on the node's host address. */
async function startRegistry(): Promise<void> {
  const config = join(scratch, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {level: info}',
      `storage: {filesystem: {rootdirectory: ${join(scratch, 'data')}}}`,
      `http: {addr: "${topology.registryHost}"}`,
      '',
    ].join('\n'),
  );
  server = execa('docker-registry', ['serve', config], { reject: false, all: true });
  server.all?.on('data', (chunk: Buffer) => (serverLog += chunk.toString()));
  await waitFor(
    'the registry to answer',
    async () => {
      const response = await fetch(`http://${topology.registryHost}/v2/`);
      return response.ok ? true : undefined;
    },
    30_000,
  );
}

beforeAll(async () => {
  rest = await testRest();
  scratch = mkdtempSync(join(tmpdir(), 'mesh-registry-'));
  await waitForNoMesh(rest);
  await startRegistry();
});

afterAll(async () => {
  await removeMesh(meshNamespace);
  await deleteNamespace(rest, apps);
  server?.kill();
  await server;
  rmSync(scratch, { recursive: true, force: true });
  rest.close();
});

describe('deploying from your own registry', () => {
  it('builds and pushes the images, deploys them by registry and tag, and the node pulls them', async () => {
    const pushed = await execa(
      'bash',
      [
        join(root, 'scripts', 'build-images.sh'),
        ...['--registry', registry, '--tag', IMAGE_TAG, '--push', '--insecure-registry'],
        ...['controller', 'init', 'sidecar', 'nats'],
      ],
      { reject: false, timeout: 600_000 },
    );
    expect(pushed.exitCode).toBe(0);
    const catalog = (await (await fetch(`http://${topology.registryHost}/v2/_catalog`)).json()) as {
      repositories: string[];
    };
    expect(catalog.repositories.sort()).toEqual([
      'nsm/nats',
      'nsm/nginx-mesh-controller',
      'nsm/nginx-mesh-init',
      'nsm/nginx-mesh-sidecar',
    ]);

    const deployed = await meshctl([
      'deploy',
      ...['--registry-server', registry, '--image-tag', IMAGE_TAG, '--disable-public-images'],
    ]);
    expect(deployed.stderr).not.toContain('rror');
    expect(deployed.exitCode).toBe(0);
    const status = await meshctl(['status']);
    expect(status.exitCode).toBe(0);

    const pods = await rest.request<{ items: { status?: PodImages }[] }>(
      'GET',
      `/api/v1/namespaces/${meshNamespace}/pods`,
    );
    const running = pods.items.flatMap((pod) => [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]);
    expect(running.length).toBeGreaterThanOrEqual(5);
    for (const container of running) {
      expect(container.image.startsWith(`${registry}/`)).toBe(true);
      // Pulled: the runtime knows the image by its digest in that registry.
      expect(container.imageID).toMatch(
        new RegExp(`^${registry.replace(/\./g, '\\.')}/[\\w-]+@sha256:`),
      );
    }

    await createInjectedNamespace(rest, apps);
    await rest.request(
      'POST',
      `/apis/apps/v1/namespaces/${apps}/deployments`,
      echoDeployment(apps, 'web', { labels: { app: 'web' } }),
    );
    const pod = await waitFor(
      'the injected pod to be Ready',
      async () => {
        const [item] = await listPods(rest, apps, 'app=web');
        return item !== undefined && isReady(item) ? item : undefined;
      },
      120_000,
    );
    const images = JSON.stringify(pod.status);
    expect(images).toContain(`${registry}/nginx-mesh-sidecar@sha256:`);
    expect(images).toContain(`${registry}/nginx-mesh-init@sha256:`);
    expect(serverLog).toMatch(/GET \/v2\/nsm\/nginx-mesh-sidecar\/manifests/);
  }, 900_000);
});
