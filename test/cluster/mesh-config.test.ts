// The mesh configuration end to end on the test cluster: nginx-meshctl deploys the control
// plane, the webhook injects two workloads, and the controller's snapshot reaches their agents
// over NATS (TLS with SVIDs from the registrar). Policies applied with kubectl show up in the
// sidecars' nginx configuration; a policy that cannot work gets a Warning Event and
// Accepted=False while the rest of the configuration still applies; requests between the
// sidecars carry the client's SPIFFE identity, so deny mode admits exactly what a TrafficTarget
// allows; remove refuses while a sidecar (its agent stopped) does not confirm pass-through,
// naming that pod alone, and once the agent runs again every sidecar confirms.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import type { KubeRest } from './harness/kube-rest';
import { ctrInNode } from './harness/node';
import {
  createNamespace,
  deleteNamespace,
  isReady,
  listPods,
  testRest,
  waitFor,
  waitForNoMesh,
} from './support/kube';
import {
  createInjectedNamespace,
  echoDeployment,
  httpService,
  kubectl,
  meshctl as meshctlIn,
  netnsOf,
  patchMeshConfig,
  removeMesh,
  requestFrom,
  shellDeployment,
  sidecarConfig,
  sidecarReport,
} from './support/mesh-apps';
import type { SidecarReport } from './support/mesh-apps';
import { CLIENT_IMAGE, LOCAL_IMAGE_FLAGS } from '../support/images';

const meshNamespace = 'mesh-policies';
const apps = 'policy-apps';
let rest: KubeRest;

function meshctl(args: readonly string[]) {
  return meshctlIn(meshNamespace, args);
}

/** The controller's view of the sidecars, through the API server's service proxy. */
function currentReport(): Promise<SidecarReport> {
  return sidecarReport(rest, meshNamespace);
}

async function podsOf(app: string): Promise<{ name: string; uid: string }[]> {
  const pods = await listPods(rest, apps, `app=${app}`);
  return pods.filter(isReady).map((pod) => ({ name: pod.metadata.name, uid: pod.metadata.uid }));
}

/**
 * Sends signal to the first process of the pod's sidecar container, its agent (nginx, its child,
 * keeps serving): SIGSTOP makes a sidecar that hears nothing and acknowledges nothing.
 */
async function signalSidecarAgent(pod: string, signal: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
  const object = await rest.request<{
    status?: {
      initContainerStatuses?: { name: string; containerID?: string }[];
      containerStatuses?: { name: string; containerID?: string }[];
    };
  }>('GET', `/api/v1/namespaces/${apps}/pods/${pod}`);
  const statuses = [
    ...(object.status?.initContainerStatuses ?? []),
    ...(object.status?.containerStatuses ?? []),
  ];
  const id = (
    statuses.find((each) => each.name === 'nginx-mesh-sidecar')?.containerID ?? ''
  ).replace(/^containerd:\/\//, '');
  if (id === '') throw new Error(`pod ${apps}/${pod} has no running nginx-mesh-sidecar container`);
  const holder = Number(process.env.NMK_TEST_NODE_HOLDER ?? '');
  if (!Number.isInteger(holder) || holder <= 0) throw new Error('NMK_TEST_NODE_HOLDER is not set');
  const sent = await execa(...ctrInNode(holder, ['task', 'kill', '--signal', signal, id]), {
    reject: false,
  });
  if (sent.exitCode !== 0) throw new Error(`ctr task kill --signal ${signal}: ${sent.stderr}`);
}

beforeAll(async () => {
  rest = await testRest();
  // One mesh at a time on the cluster: an earlier file's must be gone.
  await waitForNoMesh(rest);
  const deployed = await meshctl(['deploy', ...LOCAL_IMAGE_FLAGS]);
  if (deployed.exitCode !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  await createInjectedNamespace(rest, apps);
  for (const object of [
    echoDeployment(apps, 'web', { labels: { app: 'web', version: 'v1' } }),
    echoDeployment(apps, 'web-v2', { labels: { app: 'web', version: 'v2' } }),
    shellDeployment(apps, 'client'),
    httpService(apps, 'web', { app: 'web' }),
    httpService(apps, 'web-v1', { app: 'web', version: 'v1' }),
    httpService(apps, 'web-v2', { app: 'web', version: 'v2' }),
  ]) {
    const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(object));
    if (applied.exitCode !== 0) throw new Error(applied.stderr);
  }
  await waitFor('two Ready injected web pods and the client', async () =>
    (await podsOf('web')).length === 2 && (await podsOf('client')).length === 1 ? true : undefined,
  );
}, 300_000);

afterAll(async () => {
  await deleteNamespace(rest, apps);
  await removeMesh(meshNamespace);
  rest.close();
}, 200_000);

describe('the mesh configuration', () => {
  it('reaches every injected sidecar, which acknowledges the generation in force', async () => {
    const started = Date.now();
    const pods = await podsOf('web');
    // Both web pods are Ready, so configured; the generation that adds the second one's
    // endpoints follows its readiness by the controller's debounce.
    const upstreams = ['upstream mesh_policy_apps__web_80', 'upstream mesh_policy_apps__web_v2_80'];
    const report = await waitFor(
      'both sidecars acknowledging the current generation, with both Services',
      async () => {
        const current = await currentReport();
        const acked = pods.every((pod) =>
          current.sidecars.some(
            (sidecar) =>
              sidecar.pod === `${apps}/${pod.name}` &&
              sidecar.generation === current.generation &&
              sidecar.error === undefined,
          ),
        );
        const rendered = pods.every((pod) => {
          const config = sidecarConfig(pod.uid) ?? '';
          return upstreams.every((upstream) => config.includes(upstream));
        });
        return acked && rendered && current.behind.length === 0 ? current : undefined;
      },
      60_000,
      500,
    );
    process.stderr.write(`sidecars current ${Date.now() - started}ms after pods were Ready\n`);
    expect(report.generation).toBeGreaterThan(0);
    expect(report.sidecars.filter((sidecar) => sidecar.pod.startsWith(`${apps}/web`))).toHaveLength(
      2,
    );
  });

  it('counts an injected pod whose sidecar has not reported yet as behind', async () => {
    // A pod that carries the injected annotation but whose sidecar never connects: Ready or not,
    // the controller must not call the mesh settled while it is unconfigured.
    const quiet = 'mesh-config-quiet';
    await createNamespace(rest, quiet);
    try {
      const created = await kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: 'silent',
            namespace: quiet,
            annotations: { 'injector.nsm.nginx.com/status': 'injected' },
          },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'sh', image: CLIENT_IMAGE, command: ['sleep', '3600'] }],
          },
        }),
      );
      expect(created.exitCode).toBe(0);
      const listed = await waitFor('the silent pod listed as behind', async () =>
        (await currentReport()).behind.includes(`${quiet}/silent`) ? true : undefined,
      );
      expect(listed).toBe(true);
      expect((await currentReport()).sidecars.map((sidecar) => sidecar.pod)).not.toContain(
        `${quiet}/silent`,
      );
    } finally {
      await deleteNamespace(rest, quiet);
    }
    const report = await waitFor('the deleted pod forgotten', async () => {
      const current = await currentReport();
      return current.behind.includes(`${quiet}/silent`) ? undefined : current;
    });
    expect(report.behind).not.toContain(`${quiet}/silent`);
  });

  it('applies a TrafficSplit and a RateLimit made with kubectl, and flags a broken one', async () => {
    const policies = [
      {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        metadata: { name: 'web-canary', namespace: apps },
        spec: {
          service: 'web',
          backends: [
            { service: 'web-v1', weight: 90 },
            { service: 'web-v2', weight: 10 },
          ],
        },
      },
      {
        apiVersion: 'split.smi-spec.io/v1alpha3',
        kind: 'TrafficSplit',
        metadata: { name: 'to-nowhere', namespace: apps },
        spec: { service: 'web', backends: [{ service: 'missing', weight: 100 }] },
      },
      {
        apiVersion: 'specs.smi.nginx.com/v1alpha2',
        kind: 'RateLimit',
        metadata: { name: 'web-limit', namespace: apps },
        spec: {
          destination: { kind: 'Deployment', name: 'web', namespace: apps },
          name: 'web-limit',
          rate: '10r/s',
          burst: 5,
        },
      },
    ];
    const started = Date.now();
    const applied = await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }),
    );
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    const [web] = (await podsOf('web')).filter(
      (pod) => pod.name.startsWith('web-') && !pod.name.startsWith('web-v2'),
    );
    expect(web).toBeDefined();
    const config = await waitFor(
      'the split and the rate limit in the web sidecar',
      () => {
        const text = sidecarConfig(web?.uid ?? '') ?? '';
        return Promise.resolve(
          text.includes('split_clients') && text.includes('limit_req_zone') ? text : undefined,
        );
      },
      60_000,
      250,
    );
    process.stderr.write(`policies in nginx ${Date.now() - started}ms after kubectl apply\n`);
    expect(config).toMatch(/90(\.0+)?%\s+mesh_policy_apps__web_v1_80;/);
    expect(config).toMatch(/\*\s+mesh_policy_apps__web_v2_80;/);
    expect(config).toMatch(/rate=10r\/s/);

    const events = await waitFor(
      'a Warning Event on the broken TrafficSplit',
      async () => {
        const list = await rest.request<{
          items: {
            type: string;
            reason: string;
            message: string;
            involvedObject: { name: string };
          }[];
        }>('GET', `/api/v1/namespaces/${apps}/events`);
        const found = list.items.filter((event) => event.involvedObject.name === 'to-nowhere');
        return found.length > 0 ? found : undefined;
      },
      30_000,
      500,
    );
    expect(events[0]?.type).toBe('Warning');
    expect(events[0]?.reason).toBe('UnknownService');
    expect(events[0]?.message).toContain('missing');
    const conditionOf = async (name: string) => {
      const object = await rest.request<{
        status?: { conditions?: { type: string; status: string; reason: string }[] };
      }>('GET', `/apis/split.smi-spec.io/v1alpha3/namespaces/${apps}/trafficsplits/${name}`);
      return object.status?.conditions?.find((condition) => condition.type === 'Accepted');
    };
    expect(
      await waitFor('Accepted=False', async () =>
        (await conditionOf('to-nowhere'))?.status === 'False' ? true : undefined,
      ),
    ).toBe(true);
    expect((await conditionOf('web-canary'))?.status).toBe('True');
    // The broken split broke nothing else: every sidecar applies the generation in force.
    const report = await waitFor(
      'every sidecar current',
      async () => {
        const current = await currentReport();
        return current.behind.length === 0 ? current : undefined;
      },
      30_000,
      250,
    );
    expect(report.sidecars.every((sidecar) => sidecar.error === undefined)).toBe(true);
  });

  it('admits under deny mode exactly what a TrafficTarget allows the client identity', async () => {
    const [pod] = await listPods(rest, apps, 'app=client');
    const netns = await netnsOf(pod?.status?.podIP ?? '');
    const web = await rest.request<{ spec: { clusterIP: string } }>(
      'GET',
      `/api/v1/namespaces/${apps}/services/web-v1`,
    );
    const url = `http://${web.spec.clusterIP}/hello`;
    expect(await requestFrom(netns, url)).toBe('200');

    await patchMeshConfig(meshNamespace, { accessControlMode: 'deny' });
    await waitFor('403 without a TrafficTarget', async () =>
      (await requestFrom(netns, url)) === '403' ? true : undefined,
    );

    // Both Deployments run as ServiceAccount default: the rule admits that identity's GETs only.
    const target = [
      {
        apiVersion: 'specs.smi-spec.io/v1alpha3',
        kind: 'HTTPRouteGroup',
        metadata: { name: 'reads', namespace: apps },
        spec: { matches: [{ name: 'get', pathRegex: '/.*', methods: ['GET'] }] },
      },
      {
        apiVersion: 'access.smi-spec.io/v1alpha2',
        kind: 'TrafficTarget',
        metadata: { name: 'client-reads', namespace: apps },
        spec: {
          destination: { kind: 'ServiceAccount', name: 'default', namespace: apps },
          sources: [{ kind: 'ServiceAccount', name: 'default', namespace: apps }],
          rules: [{ kind: 'HTTPRouteGroup', name: 'reads', matches: ['get'] }],
        },
      },
    ];
    const applied = await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: target }),
    );
    expect(applied.exitCode).toBe(0);
    await waitFor('200 for a GET the TrafficTarget allows', async () =>
      (await requestFrom(netns, url)) === '200' ? true : undefined,
    );
    expect(await requestFrom(netns, url, 'POST')).toBe('403');
  });

  it('packs a support package with logs, objects and policies, credentials redacted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supportpkg-'));
    try {
      const made = await meshctl(['supportpkg', '-o', dir]);
      expect(made.stderr).toBe('');
      expect(made.exitCode).toBe(0);
      const saved = /^Saving support package to "(.+nsm-supportpkg-\d{14}\.tar\.gz)"\.\.\.$/m.exec(
        made.stdout,
      );
      expect(saved?.[1]).toBeDefined();
      expect(made.stdout).toMatch(/\nDone\.$/);
      const archive = saved?.[1] ?? '';
      expect(statSync(archive).mode & 0o777).toBe(0o600);
      await execa('tar', ['-xzf', archive, '-C', dir]);
      const root = join(dir, basename(archive, '.tar.gz'));
      const read = (path: string): string => readFileSync(join(root, path), 'utf8');
      expect(read('supportpkg-creation-logs.txt')).toBe('Everything was collected.\n');
      expect(read('version.txt')).toMatch(/^nginx-meshctl - v/);
      expect(read(`${meshNamespace}/pods.txt`)).toMatch(/^NAME +READY +STATUS/);
      expect(read(`${meshNamespace}/pods.txt`)).toContain('nginx-mesh-controller-');
      const controllerPod = readdirSync(join(root, meshNamespace)).find((name) =>
        name.startsWith('nginx-mesh-controller-'),
      );
      expect(
        read(`${meshNamespace}/${controllerPod ?? ''}/nginx-mesh-controller-logs.txt`),
      ).toMatch(/"msg"/);
      expect(read(`${meshNamespace}/sidecars.json`)).toContain('"behind"');
      const secrets = read(`${meshNamespace}/secrets.yaml`);
      expect(secrets).toContain('# Secret ');
      expect(secrets).toContain('REDACTED');
      expect(secrets).not.toMatch(/BEGIN|authorities\.json: [A-Za-z0-9+/]{20}/);
      expect(JSON.parse(read('meshconfig.json'))).toHaveProperty('accessControlMode');
      expect(read('trafficsplits.yaml')).toContain(`# TrafficSplit ${apps}/web-canary`);
      expect(read('mutatingwebhookconfigurations.yaml')).toContain('MutatingWebhookConfiguration');
      // Every injected web pod's sidecar, with its log.
      const webPods = readdirSync(join(root, apps)).filter((name) => name.startsWith('web-'));
      expect(webPods.length).toBeGreaterThanOrEqual(2);
      for (const pod of webPods) {
        expect(read(`${apps}/${pod}/pod.yaml`)).toContain('nginx-mesh-sidecar');
        expect(read(`${apps}/${pod}/nginx-mesh-sidecar-logs.txt`).length).toBeGreaterThan(0);
      }

      // Without sidecar logs: the pods' manifests only.
      const leanDir = join(dir, 'lean');
      mkdirSync(leanDir);
      const lean = await meshctl(['supportpkg', '-o', leanDir, '--disable-sidecar-logs']);
      expect(lean.exitCode).toBe(0);
      const leanArchive = /"(.+\.tar\.gz)"/.exec(lean.stdout)?.[1] ?? '';
      const listing = (await execa('tar', ['-tzf', leanArchive])).stdout;
      expect(listing).toMatch(new RegExp(`/${apps}/web-[^/]+/pod\\.yaml$`, 'm'));
      expect(listing).not.toMatch(new RegExp(`/${apps}/.*-logs\\.txt$`, 'm'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to remove while a sidecar does not confirm pass-through, naming that pod alone', async () => {
    const pods = [...(await podsOf('web')), ...(await podsOf('client'))];
    const stopped = pods.find(
      (pod) => pod.name.startsWith('web-') && !pod.name.startsWith('web-v2'),
    );
    expect(stopped).toBeDefined();
    const name = stopped?.name ?? '';
    await signalSidecarAgent(name, 'SIGSTOP');
    let refused;
    const started = Date.now();
    try {
      refused = await meshctl(['remove', '-y', '-t', '120s']);
    } finally {
      await signalSidecarAgent(name, 'SIGCONT');
    }
    process.stderr.write(`remove refused after ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(refused.stderr).toMatch(
      new RegExp(
        `Error: 1 of \\d+ sidecars did not confirm pass-through within 15s \\(they have not acknowledged the pass-through configuration\\): ${apps}/${name}; NGINX Service Mesh was not removed\n`,
      ),
    );
    for (const other of pods.filter((pod) => pod.name !== name)) {
      expect(refused.stderr).not.toContain(other.name);
    }
    expect(refused.stdout).not.toContain('removed successfully');
    expect(refused.exitCode).toBe(1);
    const controller = await kubectl([
      'get',
      'deployment',
      'nginx-mesh-controller',
      '-n',
      meshNamespace,
      '-o',
      'name',
    ]);
    expect(controller.stdout).toBe('deployment.apps/nginx-mesh-controller');
  });

  it('removes once every sidecar, the resumed one too, confirms pass-through', async () => {
    const started = Date.now();
    const removed = await meshctl(['remove', '-y', '-t', '120s']);
    process.stderr.write(`remove took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect(removed.stderr).not.toContain('did not confirm pass-through');
    expect(removed.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(removed.stdout).toContain(
      'Their sidecars confirmed that they pass traffic through untouched.',
    );
    expect(removed.exitCode).toBe(0);
  });
});
