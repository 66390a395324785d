// The test cluster is a real node where the mesh depends on it: a kubelet on containerd runs
// the images built here, Services route to ready endpoints through kube-proxy, names resolve
// through CoreDNS, Jobs finish, native sidecars run beside the app, security contexts hold,
// `kubectl exec`, `logs` and `port-forward` work, and deleting a namespace removes its pods and
// their network namespaces.
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { KubeRest } from './harness/kube-rest';
import { netnsOf } from './support/node-access';
import { buildTopology } from './harness/topology';
import { TEST_CLUSTER_INSTANCE } from './support/global-setup';
import {
  createNamespace,
  deleteNamespace,
  isReady,
  listPods,
  testKubeconfig,
  testKubectl,
  useTestNamespace,
  waitFor,
} from './support/kube';
import { CLIENT_IMAGE, ECHO_SERVER_IMAGE, NATS_IMAGE_REF } from '../support/images';

const topology = buildTopology(TEST_CLUSTER_INSTANCE);
const namespace = 'cluster-tier';
let rest: KubeRest;

function echoDeployment(name: string, replicas: number, env: Record<string, string> = {}): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'echo',
              image: ECHO_SERVER_IMAGE,
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ...Object.entries(env).map(([key, value]) => ({ name: key, value })),
              ],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

/** A Job whose only container runs a bash script; succeeds when the script exits 0. */
function bashJob(name: string, script: string, extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: CLIENT_IMAGE, command: ['bash', '-c', script] }],
          ...extra,
        },
      },
    },
  };
}

async function jobCondition(name: string): Promise<string | undefined> {
  const job = await rest.request<{ status?: { conditions?: { type: string; status: string }[] } }>(
    'GET',
    `/apis/batch/v1/namespaces/${namespace}/jobs/${name}`,
  );
  return job.status?.conditions?.find(
    (c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'),
  )?.type;
}

function kubectl(args: readonly string[]) {
  return execa(testKubectl(), ['--kubeconfig', testKubeconfig(), ...args], { reject: false });
}

const client = useTestNamespace(namespace);

beforeAll(() => {
  rest = client();
});

describe('the test cluster', () => {
  it('has a Ready node with a containerd runtime and a v1.35 kubelet', async () => {
    const { stdout } = await kubectl(['get', 'nodes', '-o', 'wide', '--no-headers']);
    const columns = stdout.trim().split(/\s+/);
    expect(columns[0]).toBe(`${topology.prefix}-node`);
    expect(columns[1]).toBe('Ready');
    expect(columns[4]).toMatch(/^v1\.35\./);
    expect(columns[5]).toBe(topology.nodeAddress);
    expect(columns.at(-1)).toMatch(/^containerd:\/\/1\./);
  });

  it('runs a Deployment as Running, Ready pods with addresses from the pod range', async () => {
    const started = Date.now();
    await rest.request(
      'POST',
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      echoDeployment('echo', 2),
    );
    const pods = await waitFor('two ready echo pods', async () => {
      const items = await listPods(rest, namespace, 'app=echo');
      return items.length === 2 &&
        items.every((pod) => pod.status?.phase === 'Running' && isReady(pod))
        ? items
        : undefined;
    });
    expect(Date.now() - started).toBeLessThan(60_000);
    const prefix = topology.podCidr.split('.').slice(0, 3).join('.');
    for (const pod of pods) expect(pod.status?.podIP?.startsWith(`${prefix}.`)).toBe(true);
    expect(new Set(pods.map((pod) => pod.status?.podIP)).size).toBe(2);
  });

  it('routes a ClusterIP to ready endpoints, from a pod, and completes the Job', async () => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo', namespace },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    });
    const service = await rest.request<{ spec: { clusterIP: string } }>(
      'GET',
      `/api/v1/namespaces/${namespace}/services/echo`,
    );
    await waitFor('two endpoints for echo', async () => {
      const slices = await rest.request<{ items: { endpoints?: { addresses: string[] }[] }[] }>(
        'GET',
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Decho`,
      );
      const count = slices.items.flatMap((slice) => slice.endpoints ?? []).length;
      return count === 2 ? true : undefined;
    });
    // Ask through the ClusterIP (and through the injected service variables) until both pods answered.
    const script = [
      'set -e',
      `test "$ECHO_SERVICE_HOST" = "${service.spec.clusterIP}"`,
      // kube-proxy programs a new Service within moments, not at once: wait for it as a client
      // would retry.
      'for i in $(seq 1 50); do',
      '  (exec 3<>/dev/tcp/$ECHO_SERVICE_HOST/$ECHO_SERVICE_PORT) 2>/dev/null && break',
      '  sleep 0.2',
      'done',
      'seen=""',
      'for i in $(seq 1 40); do',
      '  exec 3<>/dev/tcp/$ECHO_SERVICE_HOST/$ECHO_SERVICE_PORT',
      '  printf "GET /hello HTTP/1.0\\r\\n\\r\\n" >&3',
      '  who=$(grep -i "^x-served-by:" <&3 | tr -d "\\r" | cut -d" " -f2)',
      '  exec 3>&-',
      '  case " $seen " in *" $who "*) ;; *) seen="$seen $who" ;; esac',
      'done',
      'test $(echo $seen | wc -w) -eq 2',
    ].join('\n');
    await rest.request(
      'POST',
      `/apis/batch/v1/namespaces/${namespace}/jobs`,
      bashJob('client', script),
    );
    const outcome = await waitFor('the client Job to finish', () => jobCondition('client'));
    expect(outcome).toBe('Complete');
  });

  it('gives containers the downward API, ConfigMap volumes and a projected ServiceAccount token', async () => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', namespace },
      data: { greeting: 'hello' },
    });
    const script = [
      'set -e',
      'test "$MY_NAMESPACE" = "cluster-tier"',
      'test "$(cat /etc/settings/greeting)" = hello',
      'test -s /var/run/secrets/kubernetes.io/serviceaccount/token',
      'test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      'test "$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)" = cluster-tier',
      'test "$(id -u)" = 2102',
    ].join('\n');
    const job = bashJob('files', script, {
      securityContext: { runAsUser: 2102 },
      volumes: [{ name: 'settings', configMap: { name: 'settings' } }],
    }) as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const container = job.spec.template.spec.containers[0];
    if (container !== undefined) {
      container.env = [
        { name: 'MY_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ];
      container.volumeMounts = [{ name: 'settings', mountPath: '/etc/settings', readOnly: true }];
    }
    await rest.request('POST', `/apis/batch/v1/namespaces/${namespace}/jobs`, job);
    expect(await waitFor('the files Job to finish', () => jobCondition('files'))).toBe('Complete');
  });

  it('finishes a Job whose pod has a native sidecar that never exits', async () => {
    const job = bashJob('with-sidecar', 'sleep 1; exit 0', {
      initContainers: [
        {
          name: 'sidecar',
          image: CLIENT_IMAGE,
          restartPolicy: 'Always',
          command: ['sleep', 'infinity'],
        },
      ],
    });
    await rest.request('POST', `/apis/batch/v1/namespaces/${namespace}/jobs`, job);
    expect(await waitFor('the sidecar Job to finish', () => jobCondition('with-sidecar'))).toBe(
      'Complete',
    );
  });

  it('reports a failing Job as Failed', async () => {
    await rest.request(
      'POST',
      `/apis/batch/v1/namespaces/${namespace}/jobs`,
      bashJob('fails', 'exit 3'),
    );
    expect(await waitFor('the failing Job to finish', () => jobCondition('fails'))).toBe('Failed');
  });

  it('restarts a crashing container under restartPolicy Always and reports the restarts', async () => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'crasher', namespace },
      spec: {
        terminationGracePeriodSeconds: 1,
        // It fails once: the marker on its volume outlives the container, so the second run
        // stays up, and the logs of both runs are there to read.
        containers: [
          {
            name: 'main',
            image: CLIENT_IMAGE,
            command: [
              'sh',
              '-c',
              'if [ -e /state/ran ]; then echo "run 2"; exec sleep infinity; fi; touch /state/ran; echo "run 1"; exit 4',
            ],
            volumeMounts: [{ name: 'state', mountPath: '/state' }],
          },
        ],
        volumes: [{ name: 'state', emptyDir: {} }],
      },
    });
    const status = await waitFor('a restart of the crashing container', async () => {
      const [pod] = (await listPods(rest, namespace)).filter(
        (item) => item.metadata.name === 'crasher',
      );
      const container = pod?.status?.containerStatuses?.[0] as
        { restartCount?: number; lastState?: { terminated?: { exitCode: number } } } | undefined;
      // The kubelet may report the restart before the state it ended in.
      return (container?.restartCount ?? 0) >= 1 && container?.lastState?.terminated !== undefined
        ? { pod, container }
        : undefined;
    });
    expect(status.pod?.status?.phase).toBe('Running');
    expect(status.container?.lastState?.terminated?.exitCode).toBe(4);
  });

  it('runs the nats image as a real nats-server that becomes Ready', async () => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nats', namespace },
      spec: {
        terminationGracePeriodSeconds: 2,
        containers: [
          {
            name: 'nats',
            image: NATS_IMAGE_REF,
            ports: [{ name: 'client', containerPort: 4222 }],
            readinessProbe: { tcpSocket: { port: 'client' }, periodSeconds: 1 },
          },
        ],
      },
    });
    const pod = await waitFor('nats to be ready', async () => {
      const [item] = (await listPods(rest, namespace)).filter(
        (candidate) => candidate.metadata.name === 'nats',
      );
      return item !== undefined && isReady(item) ? item : undefined;
    });
    expect(pod.status?.podIP).toBeDefined();
  });

  it('resolves Services by name through CoreDNS, from a pod', async () => {
    const script = [
      'set -e',
      'grep -q "nameserver ${DNS}" /etc/resolv.conf',
      'grep -q "search cluster-tier.svc.cluster.local svc.cluster.local cluster.local" /etc/resolv.conf',
      'test "$(getent hosts echo.cluster-tier.svc.cluster.local | cut -d" " -f1)" = "$ECHO_SERVICE_HOST"',
      'test "$(getent hosts echo | cut -d" " -f1)" = "$ECHO_SERVICE_HOST"',
      'test "$(getent hosts kubernetes.default | cut -d" " -f1)" = "$KUBERNETES_SERVICE_HOST"',
      'curl -sf -o /dev/null http://echo.cluster-tier.svc.cluster.local/hello',
    ].join('\n');
    const job = bashJob('dns', script) as {
      spec: { template: { spec: { containers: Record<string, unknown>[] } } };
    };
    const container = job.spec.template.spec.containers[0];
    if (container !== undefined) container.env = [{ name: 'DNS', value: topology.dnsServiceIP }];
    await rest.request('POST', `/apis/batch/v1/namespaces/${namespace}/jobs`, job);
    expect(await waitFor('the dns Job to finish', () => jobCondition('dns'))).toBe('Complete');
  });

  it('enforces security contexts: user, read-only root, dropped capabilities', async () => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'confined', namespace },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'main',
            image: CLIENT_IMAGE,
            command: ['sleep', 'infinity'],
            securityContext: {
              runAsUser: 2102,
              runAsGroup: 2102,
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    });
    await waitFor('the confined pod to run', async () => {
      const [pod] = (await listPods(rest, namespace)).filter((p) => p.metadata.name === 'confined');
      return pod?.status?.phase === 'Running' ? true : undefined;
    });
    const exec = (command: string) =>
      kubectl(['exec', '-n', namespace, 'confined', '--', 'sh', '-c', command]);
    expect((await exec('id -u')).stdout).toBe('2102');
    const write = await exec('touch /usr/x');
    expect(write.exitCode).not.toBe(0);
    expect(write.stderr).toContain('Read-only file system');
    expect((await exec('grep CapEff /proc/self/status')).stdout).toMatch(/0000000000000000$/);
  });

  it('serves kubectl logs (also of the previous container), exec and port-forward', async () => {
    const [pod] = (await listPods(rest, namespace, 'app=echo')).filter(isReady);
    const name = pod?.metadata.name ?? '';
    const exec = await kubectl([
      'exec',
      '-n',
      namespace,
      name,
      '--',
      'node',
      '-e',
      'console.log(6*7)',
    ]);
    expect(exec.stdout).toBe('42');
    const logs = await kubectl(['logs', '-n', namespace, 'crasher']);
    expect(logs.stdout).toBe('run 2');
    const previous = await kubectl(['logs', '-n', namespace, 'crasher', '--previous']);
    expect(previous.stdout).toBe('run 1');

    const forward = execa(
      testKubectl(),
      ['--kubeconfig', testKubeconfig(), 'port-forward', '-n', namespace, `pod/${name}`, ':8080'],
      { reject: false },
    );
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('port-forward printed no port')), 30_000);
        forward.stdout?.on('data', (chunk: Buffer) => {
          const found = /127\.0\.0\.1:(\d+)/.exec(chunk.toString());
          if (found !== null) {
            clearTimeout(timer);
            resolve(Number(found[1]));
          }
        });
      });
      const response = await fetch(`http://127.0.0.1:${port}/hello`);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-served-by')).toBe(name);
    } finally {
      forward.kill();
      await forward;
    }
  });

  it('removes the pods and their network namespaces when their namespace is deleted', async () => {
    const doomed = 'cluster-tier-doomed';
    await createNamespace(rest, doomed);
    const deployment = echoDeployment('doomed', 1) as { metadata: { namespace: string } };
    deployment.metadata.namespace = doomed;
    await rest.request('POST', `/apis/apps/v1/namespaces/${doomed}/deployments`, deployment);
    const [pod] = await waitFor('the doomed pod to run', async () => {
      const items = await listPods(rest, doomed);
      return items.length === 1 && items[0]?.status?.phase === 'Running' ? items : undefined;
    });
    const podNetns = await netnsOf(pod?.status?.podIP ?? '');
    expect(existsSync(podNetns)).toBe(true);
    await deleteNamespace(rest, doomed);
    await waitFor('the doomed namespace to disappear', async () => {
      try {
        await rest.request('GET', `/api/v1/namespaces/${doomed}`);
        return undefined;
      } catch {
        return true;
      }
    });
    await waitFor('the pod network namespace to go', () =>
      Promise.resolve(existsSync(podNetns) ? undefined : true),
    );
  });
});
