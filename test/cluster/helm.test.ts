// The Helm chart on the test cluster: helm installs a working mesh (status, injection, meshed
// traffic, config, services, top), helm upgrade reaches the sidecars, nginx-meshctl refuses to
// upgrade or deploy over a release Helm owns, helm uninstall deletes every object of the chart
// and the garbage collector what the running mesh wrote itself (only the CRDs, which Helm keeps
// by design, and the namespace stay, and are deleted as the README says), and nginx-meshctl
// remove takes a Helm-installed mesh off the cluster entirely.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeRest } from './harness/kube-rest';
import { deleteNamespace, listPods, testKubeconfig, testRest, waitFor } from './support/kube';
import { leftovers, waitForCleanCluster } from './support/leftovers';
import {
  applyObjects,
  clusterIPOf,
  createInjectedNamespace,
  echoDeployment,
  httpService,
  kubectl,
  MESHCTL_BINARY,
  meshctl,
  netnsOf,
  readyPodOf,
  requestBatchFrom,
  requestFrom,
  shellDeployment,
} from './support/mesh-apps';
import { tagNodeImage } from './support/node-access';
import { NATS_IMAGE, SIDECAR_METRICS_PORT } from '../../src/manifests/constants';
import { IMAGE_REGISTRY, IMAGE_TAG, NATS_IMAGE_REF } from '../support/images';
import { freePort, startPrometheus } from '../support/prometheus';
import type { TestPrometheus } from '../support/prometheus';

const root = join(__dirname, '..', '..');
const chart = join(root, 'charts', 'nginx-service-mesh');
const release = 'nginx-service-mesh';
const namespace = 'helm-mesh';
const apps = 'helm-apps';
/** The chart's values for the images under this file's own registry and tag. */
const imageValues = (prometheusUrl: string): string[] => [
  '--set',
  `prometheusAddress=${prometheusUrl}`,
  '--set',
  'registry.server=registry.test/helm',
  '--set',
  'registry.imageTag=helm',
  '--set',
  'registry.disablePublicImages=true',
];
/** Prometheus scrapes the meshed pods' sidecars every second; top reads a 30 s window. */
const SCRAPE_INTERVAL_S = 1;
const MESH_CRDS = [
  'customresourcedefinition.apiextensions.k8s.io/circuitbreakers.specs.smi.nginx.com',
  'customresourcedefinition.apiextensions.k8s.io/httproutegroups.specs.smi-spec.io',
  'customresourcedefinition.apiextensions.k8s.io/meshconfigclasses.nsm.nginx.com',
  'customresourcedefinition.apiextensions.k8s.io/meshconfigs.nsm.nginx.com',
  'customresourcedefinition.apiextensions.k8s.io/ratelimits.specs.smi.nginx.com',
  'customresourcedefinition.apiextensions.k8s.io/tcproutes.specs.smi-spec.io',
  'customresourcedefinition.apiextensions.k8s.io/trafficsplits.split.smi-spec.io',
  'customresourcedefinition.apiextensions.k8s.io/traffictargets.access.smi-spec.io',
];

let rest: KubeRest;
let helmBin: string;
let helmHome: string;
let prometheusUrl: string;
let prometheus: TestPrometheus | undefined;

function helm(args: readonly string[]) {
  return execa(helmBin, [...args, '--kubeconfig', testKubeconfig()], {
    reject: false,
    timeout: 200_000,
    env: {
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    },
  });
}

/** Installs the chart and waits for every control-plane Deployment to be available. */
async function helmInstall(): Promise<void> {
  const started = Date.now();
  const installed = await helm([
    'install',
    release,
    chart,
    '-n',
    namespace,
    '--create-namespace',
    '--wait',
    '--timeout',
    '180s',
    ...imageValues(prometheusUrl),
  ]);
  process.stderr.write(`helm install took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  if (installed.exitCode !== 0) throw new Error(`helm install failed:\n${installed.stderr}`);
}

/** The built images under the registry and tag the chart's values name. */
async function tagImagesForThisFile(): Promise<void> {
  for (const name of ['nginx-mesh-controller', 'nginx-mesh-init', 'nginx-mesh-sidecar']) {
    await tagNodeImage(`${IMAGE_REGISTRY}/${name}:${IMAGE_TAG}`, `registry.test/helm/${name}:helm`);
  }
  await tagNodeImage(NATS_IMAGE_REF, `registry.test/helm/${NATS_IMAGE}`);
}

/** Requests the client sends in one batch, for top to count. */
const BATCH = 50;

/** Whether Prometheus holds a sample of the client sidecar's request counter. */
async function scrapedOutbound(): Promise<true | undefined> {
  const query = encodeURIComponent(
    `nginx_mesh_requests_total{direction="outbound",namespace="${apps}",deployment="client"}`,
  );
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${query}`);
  const body = (await response.json()) as { data: { result: unknown[] } };
  return body.data.result.length > 0 ? true : undefined;
}

/** Requests (successful or not) `top deploy/client -o json` counts on the edge to echo. */
async function clientEdgeToEcho(): Promise<number | undefined> {
  const result = await execa(MESHCTL_BINARY, ['top', 'deploy/client', '-n', apps, '-o', 'json'], {
    env: { KUBECONFIG: testKubeconfig() },
    reject: false,
    timeout: 30_000,
  });
  if (result.exitCode !== 0) return undefined;
  const list = JSON.parse(result.stdout) as {
    items: {
      edge: { direction: string; resource: { name: string } };
      metrics: { name: string; value: string }[];
    }[];
  };
  const item = list.items.find(
    (each) => each.edge.direction === 'to' && each.edge.resource.name === 'echo',
  );
  if (item === undefined) return undefined;
  const value = (name: string): number =>
    Number(item.metrics.find((metric) => metric.name === name)?.value ?? 0);
  return value('success_count') + value('failure_count');
}

/** Deletes a namespace and waits until it is gone, so that it can be created again. */
async function deleteNamespaceAndWait(name: string): Promise<void> {
  await deleteNamespace(rest, name);
  await waitFor(
    `namespace ${name} to be gone`,
    async () => ((await kubectl(['get', 'namespace', name])).exitCode === 0 ? undefined : true),
    90_000,
    1_000,
  );
}

/** The URL of the echo Service's ClusterIP and the network namespace of the meshed client. */
async function clientAndUrl(): Promise<{ netns: string; url: string }> {
  const client = await readyPodOf(rest, apps, 'client');
  const netns = await netnsOf(client.status?.podIP ?? '');
  return { netns, url: `http://${await clusterIPOf(rest, apps, 'echo')}/through-helm` };
}

beforeAll(async () => {
  rest = await testRest();
  helmHome = mkdtempSync(join(tmpdir(), 'helm-home-'));
  const output = execFileSync('bash', [join(root, 'scripts', 'build-helm.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  helmBin = join(output.trim().split('\n').pop() ?? '', 'helm');
  const host = new URL(rest.server).hostname;
  prometheusUrl = `http://${host}:${await freePort(host)}`;
  await tagImagesForThisFile();
  await waitForCleanCluster();
}, 600_000);

afterAll(async () => {
  await prometheus?.stop();
  // Whatever happened above, the next file finds a cluster without a mesh.
  await deleteNamespace(rest, apps);
  await helm(['uninstall', release, '-n', namespace, '--wait', '--timeout', '60s']);
  const removed = await meshctl(namespace, ['remove', '-y', '--force', '-t', '120s']);
  if (removed.exitCode !== 0 && !removed.stderr.includes('not found')) {
    process.stderr.write(`remove after the tests failed:\n${removed.stderr}\n`);
  }
  await kubectl(['delete', 'crd', '-l', 'app.kubernetes.io/part-of=nginx-service-mesh']);
  await deleteNamespace(rest, namespace);
  rmSync(helmHome, { recursive: true, force: true });
  rest.close();
}, 300_000);

describe('a mesh installed with helm', () => {
  it('installs, and status reports a healthy mesh', async () => {
    await helmInstall();
    // helm --wait knows Deployments, not the mesh: the controller reaches NATS once NATS serves.
    const started = Date.now();
    const status = await waitFor(
      'status to report a healthy mesh after helm install',
      async () => {
        const result = await meshctl(namespace, ['status']);
        return result.exitCode === 0 ? result : undefined;
      },
      90_000,
      2_000,
    );
    process.stderr.write(
      `status healthy ${((Date.now() - started) / 1000).toFixed(1)}s after helm install returned\n`,
    );
    expect(status.stdout).toContain('Connection to NGINX Service Mesh was successful.');
    expect(status.stdout).toMatch(/nginx-mesh-controller +1\/1/);
  });

  it('injects the sidecar into a labelled namespace and carries meshed traffic', async () => {
    await createInjectedNamespace(rest, apps);
    await applyObjects([
      echoDeployment(apps, 'echo', { labels: { app: 'echo' } }),
      httpService(apps, 'echo', { app: 'echo' }),
      shellDeployment(apps, 'client'),
    ]);
    for (const app of ['echo', 'client']) {
      const pod = await waitFor(
        `the meshed ${app} pod in ${apps} to be Ready`,
        async () => {
          const pods = await listPods(rest, apps, `app=${app}`);
          const [ready] = pods.filter((each) =>
            (each.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          return ready;
        },
        120_000,
        1_000,
      );
      const injected = await kubectl([
        'get',
        'pod',
        pod.metadata.name,
        '-n',
        apps,
        '-o',
        'jsonpath={.metadata.annotations.injector\\.nsm\\.nginx\\.com/status} {.spec.initContainers[*].name}',
      ]);
      expect(injected.stdout).toMatch(/^injected .*nginx-mesh-sidecar/);
    }
    const { netns, url } = await clientAndUrl();
    const answer = await waitFor(
      'a 200 from echo through both sidecars',
      async () => ((await requestFrom(netns, url)) === '200' ? '200' : undefined),
      60_000,
      1_000,
    );
    expect(answer).toBe('200');
    const { hostname, port } = new URL(prometheusUrl);
    const pods = [await readyPodOf(rest, apps, 'echo'), await readyPodOf(rest, apps, 'client')];
    prometheus = await startPrometheus(
      pods.map((pod) => ({
        address: `${pod.status?.podIP ?? ''}:${SIDECAR_METRICS_PORT}`,
        metricsPath: '/metrics',
        labels: {
          namespace: apps,
          pod: pod.metadata.name,
          deployment: pod.metadata.labels?.app ?? '',
        },
      })),
      { host: hostname, port: Number(port), intervalS: SCRAPE_INTERVAL_S },
    );
  });

  it('shows the chart values with config, and the meshed services and deployments', async () => {
    const config = await meshctl(namespace, ['config']);
    expect(config.exitCode).toBe(0);
    expect(JSON.parse(config.stdout)).toMatchObject({
      namespace,
      accessControlMode: 'allow',
      prometheusAddress: prometheusUrl,
      mtls: { mode: 'permissive' },
      registry: { server: 'registry.test/helm', imageTag: 'helm' },
    });
    const services = await meshctl(namespace, ['services']);
    expect(services.exitCode).toBe(0);
    expect(services.stdout).toContain(`${apps}/echo`);
    // The client's requests counted from a first sample taken before them.
    await waitFor('a first scrape of the client sidecar', () => scrapedOutbound(), 30_000, 500);
    const { netns, url } = await clientAndUrl();
    const batch = await requestBatchFrom(netns, url, BATCH, 5);
    expect(batch.statuses).toEqual({ '200': BATCH });
    const edge = await waitFor(
      `top deploy/client to count the ${BATCH} requests to echo`,
      async () => {
        const found = await clientEdgeToEcho();
        return found !== undefined && found >= BATCH ? found : undefined;
      },
      45_000,
      1_000,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}; last count: ${String(await clientEdgeToEcho())}`);
    });
    expect(edge).toBeGreaterThanOrEqual(BATCH);
    const summary = await execa(MESHCTL_BINARY, ['top', '-n', apps], {
      env: { KUBECONFIG: testKubeconfig() },
      reject: false,
    });
    expect(summary.stdout).toMatch(
      /^Deployment +Incoming Success +Outgoing Success +NumRequests$/m,
    );
    expect(summary.stdout).toMatch(/^client +/m);
    expect(summary.exitCode).toBe(0);
  });
});

describe('helm upgrade', () => {
  it('reaches the sidecars: deny refuses the traffic allow let through', async () => {
    const started = Date.now();
    const upgraded = await helm([
      'upgrade',
      release,
      chart,
      '-n',
      namespace,
      '--reuse-values',
      '--set',
      'accessControlMode=deny',
      '--wait',
      '--timeout',
      '120s',
    ]);
    process.stderr.write(`helm upgrade took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(upgraded.stderr).toBe('');
    expect(upgraded.exitCode).toBe(0);
    const { netns, url } = await clientAndUrl();
    const refused = await waitFor(
      'a 403 from the echo sidecar once deny is in force',
      async () => ((await requestFrom(netns, url)) === '403' ? '403' : undefined),
      60_000,
      1_000,
    );
    expect(refused).toBe('403');
    const config = JSON.parse((await meshctl(namespace, ['config'])).stdout) as object;
    expect(config).toMatchObject({ accessControlMode: 'deny' });
  });
});

describe('nginx-meshctl on a mesh Helm owns', () => {
  it('refuses to upgrade it, naming helm upgrade', async () => {
    const result = await meshctl(namespace, ['upgrade', '-y']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `Error: NGINX Service Mesh in namespace '${namespace}' is managed by Helm (release '${release}'): upgrade it with "helm upgrade ${release} <chart> -n ${namespace}" instead`,
    );
  });

  it('refuses to deploy over it, naming helm uninstall', async () => {
    const result = await meshctl(namespace, ['deploy', '--disable-public-images']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `Error: mesh already exists: found NGINX Service Mesh installed with Helm (release '${release}') in namespace '${namespace}'. To remove it, run "helm uninstall ${release} -n ${namespace}"`,
    );
  });
});

describe('helm uninstall', () => {
  it("deletes the chart's objects, and the garbage collector what the mesh wrote; the CRDs and the namespace stay", async () => {
    await deleteNamespaceAndWait(apps);
    const started = Date.now();
    const uninstalled = await helm(['uninstall', release, '-n', namespace, '--wait']);
    process.stderr.write(`helm uninstall took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(uninstalled.exitCode).toBe(0);
    // The control plane's pods go after helm returns.
    await waitFor(
      'no pod of the mesh left after helm uninstall',
      async () => ((await leftovers()).some((line) => line.startsWith('pod/')) ? undefined : true),
      60_000,
      1_000,
    );
    // The Secrets and the bundle ConfigMaps the registrar, the controller and the metrics API
    // wrote at run time name their ClusterRoles as owner: the garbage collector deletes them once
    // helm has deleted those. A timeout names what is still there.
    const left = await waitFor(
      'the garbage collector to leave nothing of the mesh but its CRDs',
      async () => {
        const now = await leftovers();
        const others = now.filter((line) => !MESH_CRDS.includes(line));
        if (others.length > 0) {
          const bundles = await kubectl([
            'get',
            'configmap',
            '-A',
            '-l',
            'app.kubernetes.io/part-of=nginx-service-mesh',
            '-o',
            'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}',
          ]);
          throw new Error(`still there: ${others.join(', ')} (ConfigMaps: ${bundles.stdout})`);
        }
        return now;
      },
      60_000,
      1_000,
    );
    expect([...left].sort()).toEqual(MESH_CRDS);
    expect((await kubectl(['get', 'namespace', namespace])).exitCode).toBe(0);
    const crds = await kubectl([
      'delete',
      'crd',
      '-l',
      'app.kubernetes.io/part-of=nginx-service-mesh',
    ]);
    expect(crds.exitCode).toBe(0);
    await deleteNamespaceAndWait(namespace);
    expect(await leftovers()).toEqual([]);
  });
});

describe('nginx-meshctl remove on a Helm-installed mesh', () => {
  it('removes everything, CRDs and the Helm release included', async () => {
    await helmInstall();
    const removed = await meshctl(namespace, ['remove', '-y']);
    expect(removed.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(removed.exitCode).toBe(0);
    expect(await leftovers()).toEqual([]);
    const releases = await helm(['list', '-n', namespace, '-q']);
    expect(releases.stdout).toBe('');
    await deleteNamespaceAndWait(namespace);
  });
});
