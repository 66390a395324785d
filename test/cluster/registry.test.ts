// The user's path, as the README gives it: build the images, push them to your registry, deploy
// with --registry-server and --image-tag. The cluster is one of this file's own whose node holds
// none of the mesh's images (only its pause and DNS images), as a user's cluster would; the
// registry is Debian's docker-registry on the host end of the node's link, and the node pulls
// every image from it: the control plane's, NATS, and an injected pod's sidecar, init and app.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, stopCluster } from './harness/cluster';
import type { RunningCluster } from './harness/cluster';
import { createKubeRest } from './harness/kube-rest';
import type { KubeRest } from './harness/kube-rest';
import { buildTopology } from './harness/topology';
import { createNamespace, isReady, listPods, waitFor } from './support/kube';
import { echoDeployment, MESHCTL_BINARY } from './support/mesh-apps';
import { IMAGE_TAG } from '../support/images';

/** An instance of this file's own, beside the shared test cluster. */
const INSTANCE = 3;
const root = join(__dirname, '..', '..');
const topology = buildTopology(INSTANCE);
const meshNamespace = 'nginx-mesh';
const apps = 'registry-apps';
const registry = `${topology.registryHost}/nsm`;
let cluster: RunningCluster;
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
  return execa(MESHCTL_BINARY, [...args, '-n', meshNamespace], {
    env: { KUBECONFIG: cluster.kubeconfig },
    reject: false,
    timeout: 240_000,
  });
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
  scratch = mkdtempSync(join(tmpdir(), 'mesh-registry-'));
  cluster = await startCluster({
    instance: INSTANCE,
    stateDir: join(scratch, 'cluster'),
    root,
    images: 'node',
    log: () => undefined,
  });
  rest = await createKubeRest(cluster.kubeconfig);
  await startRegistry();
}, 600_000);

afterAll(async () => {
  rest.close();
  await stopCluster(join(scratch, 'cluster'), INSTANCE);
  server?.kill();
  await server;
  rmSync(scratch, { recursive: true, force: true });
}, 120_000);

describe('deploying from your own registry', () => {
  it('builds and pushes the images, deploys them by registry and tag, and the node pulls them', async () => {
    const pushed = await execa(
      'bash',
      [
        join(root, 'scripts', 'build-images.sh'),
        ...['--registry', registry, '--tag', IMAGE_TAG, '--push', '--insecure-registry'],
        ...['controller', 'init', 'sidecar', 'nats', 'echo-server'],
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
      'nsm/nginx-mesh-test-echo-server',
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

    await createNamespace(rest, apps);
    await rest.request(
      'PATCH',
      `/api/v1/namespaces/${apps}`,
      { metadata: { labels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' } } },
      'application/merge-patch+json',
    );
    const web = echoDeployment(apps, 'web', { labels: { app: 'web' } }) as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    for (const container of web.spec.template.spec.containers)
      container.image = `${registry}/nginx-mesh-test-echo-server:${IMAGE_TAG}`;
    await rest.request('POST', `/apis/apps/v1/namespaces/${apps}/deployments`, web);
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
    expect(images).toContain(`${registry}/nginx-mesh-test-echo-server@sha256:`);
    expect(serverLog).toMatch(/GET \/v2\/nsm\/nginx-mesh-sidecar\/manifests/);
  }, 900_000);
});
