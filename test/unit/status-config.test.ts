// status and config against a hand-written API: what they ask for and what they print.
import { runCli } from '../support/cli';
import { kubeAnswering, okJson } from '../support/fake-kube';
import { readOnlyKube } from '../support/fakes';

const deploymentPath = '/apis/apps/v1/namespaces/nginx-mesh/deployments/nginx-mesh-controller';
const configMapPath = '/api/v1/namespaces/nginx-mesh/configmaps/meshconfig';
const namespacePods = '/api/v1/namespaces/nginx-mesh/pods';

const listPath =
  '/apis/apps/v1/namespaces/nginx-mesh/deployments?labelSelector=app.kubernetes.io%2Fpart-of%3Dnginx-service-mesh';

function deployment(name: string, ready: number, version = '2.0.0'): object {
  return {
    metadata: { name, labels: { 'app.kubernetes.io/version': version } },
    spec: { replicas: 1, selector: { matchLabels: { 'app.kubernetes.io/name': name } } },
    status: ready === 0 ? {} : { readyReplicas: ready },
  };
}

function cluster(controllerReady: number, registrarReady = 1) {
  const controller = deployment('nginx-mesh-controller', controllerReady);
  return kubeAnswering({
    [deploymentPath]: { status: 200, body: JSON.stringify(controller) },
    [listPath]: {
      status: 200,
      body: JSON.stringify({
        items: [
          controller,
          deployment('nginx-mesh-registrar', registrarReady),
          deployment('nats-server', 1),
        ],
      }),
    },
  });
}

describe('status', () => {
  it('lists every component, ready against desired, and reports success', async () => {
    const { kube, paths } = cluster(1);
    const result = await runCli(['status'], { kube });
    // The sidecars are asked for first, side by side with the control plane.
    // Then the namespace's pods, once, and its ReplicaSets, for restarts.
    expect(paths).toEqual([
      '/api/v1/pods',
      deploymentPath,
      listPath,
      namespacePods,
      '/apis/apps/v1/namespaces/nginx-mesh/replicasets',
    ]);
    expect(result).toEqual({
      code: 0,
      stdout: [
        'Checking NGINX Service Mesh setup....',
        'COMPONENT              READY  VERSION',
        'nats-server            1/1    v2.0.0',
        'nginx-mesh-controller  1/1    v2.0.0',
        'nginx-mesh-registrar   1/1    v2.0.0',
        'Connection to NGINX Service Mesh was successful.',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('fails when the controller has no ready replica', async () => {
    const { kube } = cluster(0);
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('nginx-mesh-controller  0/1');
    expect(result.stderr).toBe(
      'Error: mesh controller unavailable: cannot list its pods: not found\nCheck the nginx-mesh-controller pods and their logs in namespace "nginx-mesh".\n',
    );
  });

  it('fails, naming it, when another component is not ready', async () => {
    const { kube } = cluster(1, 0);
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(
      'Error: mesh components unavailable: nginx-mesh-registrar (0/1 ready: cannot list its pods: not found)',
    );
  });

  it('says why each pod of a component that is not ready is not, as its probe answers', async () => {
    const pod = (name: string, container: object, ready = false) => ({
      metadata: { name, labels: { 'app.kubernetes.io/name': name.replace(/-[^-]+-[^-]+$/, '') } },
      spec: {
        containers: [
          { name: 'main', readinessProbe: { httpGet: { path: '/readyz', port: 8081 } } },
        ],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
        containerStatuses: [{ name: 'main', ready, ...container }],
      },
    });
    const controller = deployment('nginx-mesh-controller', 0);
    const { kube, paths } = kubeAnswering({
      [deploymentPath]: { status: 200, body: JSON.stringify(controller) },
      [listPath]: {
        status: 200,
        body: JSON.stringify({
          items: [controller, deployment('nginx-mesh-registrar', 0), deployment('nats-server', 1)],
        }),
      },
      // The namespace's pods, listed once; each component's are those its selector picks.
      [namespacePods]: okJson({
        items: [
          pod('nginx-mesh-controller-7d-a', { state: { running: {} } }),
          pod('nginx-mesh-controller-7d-b', { state: { running: {} } }, true),
          pod('nginx-mesh-registrar-5c-x', {
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting' } },
          }),
        ],
      }),
      '/api/v1/namespaces/nginx-mesh/pods/nginx-mesh-controller-7d-a:8081/proxy/readyz': {
        status: 503,
        body: 'not ready: leading, but cannot publish on NATS: CONNECTION_REFUSED\n',
      },
    });
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      [
        'Not ready:',
        '  nginx-mesh-controller: nginx-mesh-controller-7d-a: leading, but cannot publish on NATS: CONNECTION_REFUSED',
        '  nginx-mesh-registrar: nginx-mesh-registrar-5c-x: container main: CrashLoopBackOff: back-off 40s restarting',
        '',
      ].join('\n'),
    );
    expect(result.stderr.split('\n')[0]).toBe(
      'Error: mesh controller unavailable: leading, but cannot publish on NATS: CONNECTION_REFUSED',
    );
    // A ready component's pods are not asked anything.
    expect(paths.some((path) => path.includes('nats-server'))).toBe(false);
  });

  it('asks a controller that serves the webhook whether it publishes, and fails when not', async () => {
    const controller = {
      ...deployment('nginx-mesh-controller', 1),
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'nginx-mesh-controller' } },
        template: {
          spec: {
            containers: [{ readinessProbe: { httpGet: { path: '/readyz/serving', port: 8081 } } }],
          },
        },
      },
    };
    const answering = (readyz: { status: number; body: string }) =>
      kubeAnswering({
        [deploymentPath]: { status: 200, body: JSON.stringify(controller) },
        [listPath]: { status: 200, body: JSON.stringify({ items: [controller] }) },
        [namespacePods]: okJson({
          items: [
            {
              metadata: {
                name: 'nginx-mesh-controller-7d-a',
                labels: { 'app.kubernetes.io/name': 'nginx-mesh-controller' },
              },
              spec: {
                containers: [
                  {
                    name: 'nginx-mesh-controller',
                    readinessProbe: { httpGet: { path: '/readyz/serving', port: 8081 } },
                  },
                ],
              },
              status: {
                conditions: [{ type: 'Ready', status: 'True' }],
                containerStatuses: [{ name: 'nginx-mesh-controller', ready: true }],
              },
            },
          ],
        }),
        '/api/v1/namespaces/nginx-mesh/pods/nginx-mesh-controller-7d-a:8081/proxy/readyz': readyz,
      });
    const failing = await runCli(['status'], {
      kube: answering({ status: 503, body: 'not ready: reconnecting to NATS at 10.0.0.7:4222\n' })
        .kube,
    });
    expect(failing.code).toBe(1);
    expect(failing.stdout).toContain('nginx-mesh-controller  1/1');
    expect(failing.stdout).toContain(
      '  nginx-mesh-controller: nginx-mesh-controller-7d-a: reconnecting to NATS at 10.0.0.7:4222\n',
    );
    expect(failing.stderr.split('\n')[0]).toBe(
      'Error: mesh controller unavailable: reconnecting to NATS at 10.0.0.7:4222',
    );
    const working = await runCli(['status'], {
      kube: answering({ status: 200, body: 'ok\n' }).kube,
    });
    expect(working.code).toBe(0);
    expect(working.stdout).not.toContain('Not ready');
  });

  it('counts the sidecars of meshed pods, and names one that is not ready with why', async () => {
    const meshedPod = (name: string, ready: boolean, state: object = {}, ageMs = 600_000) => ({
      metadata: {
        name,
        namespace: 'shop',
        creationTimestamp: new Date(Date.now() - ageMs).toISOString(),
        annotations: { 'injector.nsm.nginx.com/status': 'injected' },
      },
      status: {
        phase: 'Running',
        initContainerStatuses: [{ name: 'nginx-mesh-sidecar', ready, ...state }],
      },
    });
    const { kube } = cluster(1);
    const routes: Record<string, { status: number; body: string }> = {
      '/api/v1/pods': okJson({
        items: [
          meshedPod('web-1', true),
          meshedPod('web-2', false, { state: { running: {} } }),
          meshedPod('web-3', false, {
            restartCount: 3,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
          }),
          // A pod being created: starting, not failing.
          meshedPod('web-4', false, { state: { waiting: { reason: 'PodInitializing' } } }, 5_000),
          // Its agent is down: the API server answers for it.
          meshedPod('web-5', false, { restartCount: 1, state: { running: {} } }),
          { metadata: { name: 'plain', namespace: 'shop' }, status: { phase: 'Running' } },
        ],
      }),
      '/api/v1/namespaces/shop/pods/web-5:8887/proxy/readyz': {
        status: 503,
        body: JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message:
            'error trying to reach service: dial tcp 10.1.0.9:8887: connect: connection refused',
          reason: 'ServiceUnavailable',
          code: 503,
        }),
      },
      '/api/v1/namespaces/shop/pods/web-2:8887/proxy/readyz': {
        status: 503,
        body: 'not ready: waiting for the mesh configuration: reconnecting to NATS at tls://10.0.0.7:4222\n',
      },
    };
    const withPods = readOnlyKube(async (target, path) =>
      path in routes
        ? (routes[path] as { status: number; body: string })
        : kube.getRaw(target, path),
    );
    const result = await runCli(['status'], { kube: withPods });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('sidecars               2/5');
    expect(result.stdout).not.toContain('web-4');
    expect(result.stdout).toContain(
      '  sidecars: shop/web-5: readiness probe unreachable: error trying to reach service: dial tcp 10.1.0.9:8887: connect: connection refused\n',
    );
    expect(result.stdout).toContain(
      '  sidecars: shop/web-2: waiting for the mesh configuration: reconnecting to NATS at tls://10.0.0.7:4222\n',
    );
    expect(result.stdout).toContain(
      '  sidecars: shop/web-3: container nginx-mesh-sidecar: CrashLoopBackOff\n',
    );
    expect(result.stderr.split('\n')[0]).toBe(
      'Error: mesh components unavailable: sidecars (2/5 ready: waiting for the mesh configuration: reconnecting to NATS at tls://10.0.0.7:4222)',
    );
  });

  it('names a sidecar that restarted lately, ready again, and still succeeds', async () => {
    const finished = (agoMs: number) => new Date(Date.now() - agoMs).toISOString();
    const pod = (name: string, agoMs: number) => ({
      metadata: {
        name,
        namespace: 'shop',
        creationTimestamp: finished(3_600_000),
        annotations: { 'injector.nsm.nginx.com/status': 'injected' },
      },
      status: {
        phase: 'Running',
        initContainerStatuses: [
          {
            name: 'nginx-mesh-sidecar',
            ready: true,
            restartCount: 1,
            lastState: {
              terminated: { exitCode: 137, reason: 'Error', finishedAt: finished(agoMs) },
            },
          },
        ],
      },
    });
    const { kube } = cluster(1);
    const pods = okJson({ items: [pod('web-1', 12_000), pod('web-2', 3_600_000)] });
    const withPods = readOnlyKube(async (target, path) =>
      path === '/api/v1/pods' ? pods : kube.getRaw(target, path),
    );
    const result = await runCli(['status'], { kube: withPods });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('sidecars               2/2');
    expect(result.stdout).toMatch(
      /\nRestarted lately:\n {2}sidecars: shop\/web-1: restarted 1[1-3]s ago \(exit 137, Error\); 1 restart in all\n/,
    );
    // An hour ago is history, not news.
    expect(result.stdout).not.toContain('web-2');
    const json = await runCli(['status', '-o', 'json'], { kube: withPods });
    const sidecars = (
      JSON.parse(json.stdout) as { components: { name: string; restarted?: { pod: string }[] }[] }
    ).components.find((each) => each.name === 'sidecars');
    expect(sidecars?.restarted?.map((each) => each.pod)).toEqual(['shop/web-1']);
  });

  it('names control-plane pods that restarted lately or replaced a lost one', async () => {
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    const pod = (
      name: string,
      app: string,
      owner: string,
      createdAgoMs: number,
      ended?: number,
    ) => ({
      metadata: {
        name,
        labels: { 'app.kubernetes.io/name': app },
        ownerReferences: [{ kind: 'ReplicaSet', name: owner }],
        creationTimestamp: ago(createdAgoMs),
      },
      status: {
        containerStatuses: [
          {
            name: app,
            ready: true,
            restartCount: ended === undefined ? 0 : 2,
            ...(ended === undefined
              ? {}
              : {
                  lastState: {
                    terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(ended) },
                  },
                }),
          },
        ],
      },
    });
    const replicaSet = (name: string, createdAgoMs: number) => ({
      metadata: { name, creationTimestamp: ago(createdAgoMs) },
    });
    const { kube } = cluster(1);
    const answers: Record<string, object> = {
      '/api/v1/namespaces/nginx-mesh/pods': {
        items: [
          // Deleted and replaced by its ReplicaSet, 600 s after the rollout.
          pod('nginx-mesh-registrar-a', 'nginx-mesh-registrar', 'registrar-1', 4_000),
          // A container that ended 20 s ago.
          pod('nginx-mesh-controller-b', 'nginx-mesh-controller', 'controller-1', 604_000, 20_000),
          // A rollout's pod, created with its ReplicaSet: no news.
          pod('nats-server-c', 'nats-server', 'nats-2', 29_000),
        ],
      },
      '/apis/apps/v1/namespaces/nginx-mesh/replicasets': {
        items: [
          replicaSet('registrar-1', 604_000),
          replicaSet('controller-1', 605_000),
          replicaSet('nats-2', 30_000),
        ],
      },
    };
    const withPods = readOnlyKube(async (target, path) =>
      answers[path] === undefined ? kube.getRaw(target, path) : okJson(answers[path]),
    );
    const result = await runCli(['status'], { kube: withPods });
    expect(result.code).toBe(0);
    const restarted = result.stdout.split('Restarted lately:\n')[1] ?? '';
    expect(restarted).toMatch(
      /^ {2}nginx-mesh-controller: nginx-mesh-controller-b: restarted 2[0-2]s ago \(exit 1, Error\); 2 restarts in all\n {2}nginx-mesh-registrar: nginx-mesh-registrar-a: restarted [3-5]s ago as a new pod \(its ReplicaSet registrar-1 is 60[3-5]s old\)\n/,
    );
    expect(result.stdout).not.toContain('nats-server-c');
    expect(result.stdout).toContain('Connection to NGINX Service Mesh was successful.');
  });

  it('prints a document with -o json, and still fails when unhealthy', async () => {
    const { kube } = cluster(1, 0);
    const result = await runCli(['status', '-o', 'json'], { kube });
    expect(result.code).toBe(1);
    const document = JSON.parse(result.stdout) as {
      healthy: boolean;
      components: { name: string; healthy: boolean }[];
    };
    expect(document.healthy).toBe(false);
    expect(document.components.map((each) => [each.name, each.healthy])).toEqual([
      ['nats-server', true],
      ['nginx-mesh-controller', true],
      ['nginx-mesh-registrar', false],
    ]);
  });

  it('passes on the API error with a hint when there is no mesh', async () => {
    const { kube } = kubeAnswering({
      [deploymentPath]: {
        status: 404,
        body: '{"message":"deployments.apps \\"nginx-mesh-controller\\" not found"}',
      },
    });
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: deployments.apps "nginx-mesh-controller" not found\nIs NGINX Service Mesh deployed in namespace "nginx-mesh"? Use -n to name another namespace.\n',
    );
  });
});

describe('config', () => {
  const stored = '{"mtls":{"mode":"permissive","caKeyType":"ec-p256"},"accessControlMode":"allow"}';
  const configMap = { status: 200, body: JSON.stringify({ data: { 'meshconfig.json': stored } }) };

  it('prints the stored configuration as indented JSON, keys in stored order', async () => {
    const { kube } = kubeAnswering({ [configMapPath]: configMap });
    const result = await runCli(['config'], { kube });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${JSON.stringify(JSON.parse(stored), null, 2)}\n`);
  });

  it('prints YAML with -o yaml', async () => {
    const { kube } = kubeAnswering({ [configMapPath]: configMap });
    const result = await runCli(['config', '-o', 'yaml'], { kube });
    expect(result.stdout).toBe(
      'mtls:\n  mode: permissive\n  caKeyType: ec-p256\naccessControlMode: allow\n',
    );
  });

  it('fails with NGINX Service Mesh wording when the ConfigMap is missing', async () => {
    const { kube } = kubeAnswering({});
    const result = await runCli(['config'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: unable to get mesh config: error getting mesh ConfigMap: not found\n',
    );
  });
});
