// The test cluster's control plane: real etcd, kube-apiserver and kube-controller-manager on
// loopback, driven through real kubectl and @kubernetes/client-node.
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Watch,
} from '@kubernetes/client-node';
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  SERVICE_ACCOUNT_ISSUER,
  startControlPlane,
  stopRecordedControlPlane,
} from '../cluster/harness/control-plane';
import type { ControlPlane } from '../cluster/harness/control-plane';
import { API_SERVER_DNS_NAMES } from '../cluster/harness/pki';
import {
  processFileOf,
  readProcessRecords,
  stopRecordedProcess,
  writeProcessRecords,
} from '../cluster/harness/processes';

const repoRoot = join(__dirname, '..', '..');
const BUILD_TIMEOUT_MS = 20 * 60_000;
const START_TIMEOUT_MS = 120_000;
const SERVICE_CIDR = '198.19.240.0/20';
const KUBERNETES_SERVICE_IP = '198.19.240.1';

function run(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: repoRoot, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error === null) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`, { cause: error }));
    });
  });
}

/** The cached cluster binaries (built on first use; a cached build answers at once). */
async function clusterBinDir(): Promise<string> {
  const { stdout } = await run('bash', ['scripts/build-k8s-binaries.sh'], BUILD_TIMEOUT_MS);
  const dir = stdout.trim().split('\n').at(-1) ?? '';
  if (!existsSync(join(dir, 'kube-apiserver'))) throw new Error(`no binaries in "${dir}"`);
  return dir;
}

async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await read();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function pidExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function getWithCa(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca, agent: false, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

describe('control plane on loopback', () => {
  let root: string;
  let stateDir: string;
  let binDir: string;
  let plane: ControlPlane | undefined;
  let kc: KubeConfig;
  const progress: string[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nginx-meshctl-control-plane-'));
    stateDir = join(root, 'state');
    binDir = await clusterBinDir();
    const launchedAt = performance.now();
    plane = await startControlPlane({
      stateDir,
      bindAddress: '127.0.0.1',
      serviceCidr: SERVICE_CIDR,
      kubernetesServiceIP: KUBERNETES_SERVICE_IP,
      binDir,
      log: (line) => progress.push(line),
    });
    progress.push(
      `startControlPlane returned after ${Math.round(performance.now() - launchedAt)} ms`,
    );
    kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    try {
      await plane?.stop();
    } finally {
      if (root !== undefined) await rm(root, { recursive: true, force: true });
    }
    if (progress.length > 0) console.log(`control plane start-up:\n  ${progress.join('\n  ')}`);
  }, 60_000);

  function started(): ControlPlane {
    if (plane === undefined) throw new Error('the control plane did not start');
    return plane;
  }

  it('writes keys readable by their owner only and a serving certificate with every name', async () => {
    const pkiDir = join(stateDir, 'pki');
    const keys = (await readdir(pkiDir)).filter((name) => name.endsWith('.key'));
    expect(keys.sort()).toEqual(
      [
        'admin.key',
        'apiserver.key',
        'ca.key',
        'client-ca.key',
        'controller-manager-serving.key',
        'controller-manager.key',
        'front-proxy-ca.key',
        'front-proxy-client.key',
        'sa.key',
        // The node's identities: its kubelet (serving and client), kube-proxy, the scheduler,
        // and the API server's client certificate towards kubelets.
        'apiserver-kubelet-client.key',
        'kube-proxy.key',
        'kubelet-serving.key',
        'kubelet.key',
        'scheduler-serving.key',
        'scheduler.key',
      ].sort(),
    );
    for (const key of keys) {
      expect(((await stat(join(pkiDir, key))).mode & 0o777).toString(8)).toBe('600');
    }
    const serving = new X509Certificate(await readFile(join(pkiDir, 'apiserver.crt')));
    const names = (serving.subjectAltName ?? '').split(', ');
    expect(names).toEqual(
      expect.arrayContaining([
        'IP Address:127.0.0.1',
        `IP Address:${KUBERNETES_SERVICE_IP}`,
        ...API_SERVER_DNS_NAMES.map((name) => `DNS:${name}`),
      ]),
    );
    const admin = new X509Certificate(await readFile(join(pkiDir, 'admin.crt')));
    expect(admin.subject.split('\n')).toEqual(
      expect.arrayContaining(['O=system:masters', 'CN=admin']),
    );
  });

  it('answers /readyz with ok over TLS that the cluster CA verifies', async () => {
    const { server, caPath } = started();
    const answer = await getWithCa(`${server}/readyz`, await readFile(caPath));
    expect(answer).toEqual({ status: 200, body: 'ok' });
  });

  it('serves kubectl through the admin kubeconfig', async () => {
    const { kubeconfigPath } = started();
    const { stdout } = await run(
      join(binDir, 'kubectl'),
      [
        `--kubeconfig=${kubeconfigPath}`,
        `--cache-dir=${join(root, 'kubectl-cache')}`,
        'get',
        'ns',
        '-o',
        'name',
      ],
      30_000,
    );
    expect(stdout.trim().split('\n')).toEqual(
      expect.arrayContaining(['namespace/default', 'namespace/kube-system']),
    );
  });

  it('creates a namespace and a config map with client-node and streams the ADDED event', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'watch-probe' } } });
    const list = await core.listNamespacedConfigMap({ namespace: 'watch-probe' });
    const events: { phase: string; name: string | undefined }[] = [];
    const abort = await new Watch(kc).watch(
      '/api/v1/namespaces/watch-probe/configmaps',
      { resourceVersion: list.metadata?.resourceVersion },
      (phase, object: V1ConfigMap) => events.push({ phase, name: object.metadata?.name }),
      () => undefined,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace: 'watch-probe',
        body: { metadata: { name: 'greeting' }, data: { hello: 'mesh' } },
      });
      await eventually('the ADDED event', () =>
        Promise.resolve(
          events.find((event) => event.phase === 'ADDED' && event.name === 'greeting'),
        ),
      );
    } finally {
      abort.abort();
    }
  });

  it('runs the controllers: default service account, then a Deployment’s ReplicaSet and Pod', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: 'workloads' } } });
    await eventually('the default ServiceAccount', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: 'workloads' }),
    );
    const labels = { app: 'probe' };
    await apps.createNamespacedDeployment({
      namespace: 'workloads',
      body: {
        metadata: { name: 'probe' },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'probe', image: 'probe.invalid/probe:1' }] },
          },
        },
      },
    });
    const replicaSet = await eventually('a ReplicaSet', async () => {
      const sets = await apps.listNamespacedReplicaSet({ namespace: 'workloads' });
      return sets.items[0];
    });
    expect(replicaSet.metadata?.ownerReferences?.[0]?.name).toBe('probe');
    const pod = await eventually('a Pod', async () => {
      const pods = await core.listNamespacedPod({ namespace: 'workloads' });
      return pods.items[0];
    });
    expect(pod.metadata?.ownerReferences?.[0]?.name).toBe(replicaSet.metadata?.name);
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.spec?.serviceAccountName).toBe('default');
  });

  it('issues a token for a custom audience that TokenReview accepts for that audience only', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const authn = kc.makeApiClient(AuthenticationV1Api);
    await core.createNamespace({ body: { metadata: { name: 'tokens' } } });
    await core.createNamespacedServiceAccount({
      namespace: 'tokens',
      body: { metadata: { name: 'sidecar' } },
    });
    const audience = 'nginx-mesh-test-audience';
    const issued = await core.createNamespacedServiceAccountToken({
      name: 'sidecar',
      namespace: 'tokens',
      body: { spec: { audiences: [audience], expirationSeconds: 600 } },
    });
    const token = issued.status?.token ?? '';
    expect(token).not.toBe('');

    const accepted = await authn.createTokenReview({
      body: { spec: { token, audiences: [audience] } },
    });
    expect(accepted.status?.authenticated).toBe(true);
    expect(accepted.status?.user?.username).toBe('system:serviceaccount:tokens:sidecar');
    expect(accepted.status?.audiences).toEqual([audience]);

    const rejected = await authn.createTokenReview({
      body: { spec: { token, audiences: [SERVICE_ACCOUNT_ISSUER] } },
    });
    expect(rejected.status?.authenticated).not.toBe(true);
  });

  it('establishes a CustomResourceDefinition and stores a custom object', async () => {
    const extensions = kc.makeApiClient(ApiextensionsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const group = 'probes.nginx-meshctl.test';
    await extensions.createCustomResourceDefinition({
      body: {
        metadata: { name: `widgets.${group}` },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: { type: 'object', properties: { size: { type: 'integer' } } },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await eventually('the Established condition', async () => {
      const crd = await extensions.readCustomResourceDefinition({ name: `widgets.${group}` });
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      return established?.status === 'True' ? true : undefined;
    });
    await core.createNamespace({ body: { metadata: { name: 'widgets' } } });
    const body = {
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name: 'first' },
      spec: { size: 3 },
    };
    await eventually(
      'the custom object to be stored',
      () =>
        custom.createNamespacedCustomObject({
          group,
          version: 'v1',
          namespace: 'widgets',
          plural: 'widgets',
          body,
        }) as Promise<unknown>,
    );
    const stored = (await custom.getNamespacedCustomObject({
      group,
      version: 'v1',
      namespace: 'widgets',
      plural: 'widgets',
      name: 'first',
    })) as { spec?: { size?: number } };
    expect(stored.spec?.size).toBe(3);
  });

  it('reports how long start-up took', () => {
    const { timings } = started();
    expect(timings.etcdHealthyMs).toBeLessThanOrEqual(timings.apiserverReadyMs);
    expect(timings.apiserverReadyMs).toBeLessThanOrEqual(timings.controllerManagerHealthyMs);
    expect(timings.controllerManagerHealthyMs).toBeLessThanOrEqual(timings.controllersWorkingMs);
    expect(timings.pkiMs).toBeLessThan(2_000);
    progress.push(`timings (ms): ${JSON.stringify(timings)}`);
  });

  // Last: it ends the control plane the tests above use.
  it('stops every process, after which stopping the recorded processes does nothing', async () => {
    const current = started();
    const pids = Object.values(current.pids);
    expect(pids.every(pidExists)).toBe(true);
    await current.stop();
    expect(pids.filter(pidExists)).toEqual([]);
    const recordBefore = await readFile(processFileOf(stateDir), 'utf8');
    await stopRecordedControlPlane(stateDir);
    await stopRecordedControlPlane(stateDir);
    expect(await readFile(processFileOf(stateDir), 'utf8')).toBe(recordBefore);
    await current.stop();
  });
});

describe('stopRecordedControlPlane', () => {
  let stateDir: string;

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'nginx-meshctl-stale-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('does nothing for a directory without a process record', async () => {
    await expect(stopRecordedControlPlane(stateDir)).resolves.toBeUndefined();
  });

  it('ends a recorded process left running, and spares a pid now used by another program', async () => {
    // A stand-in for a control-plane binary left behind by a killed run: node under the name
    // "kube-apiserver", with the state directory on its command line.
    const binary = join(stateDir, 'kube-apiserver');
    await symlink(process.execPath, binary);
    const stale = spawn(binary, ['-e', 'setInterval(() => {}, 1000)', `${stateDir}/marker`], {
      detached: true,
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => stale.once('exit', resolve));
    const pid = stale.pid ?? 0;
    await eventually('the stand-in to run', async () =>
      (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(stateDir) ? true : undefined,
    );
    await writeProcessRecords(stateDir, [
      // This test process is alive but is not etcd: it must survive.
      {
        name: 'etcd',
        binary: '/nonexistent/etcd',
        pid: process.pid,
        ports: {},
        log: '',
        startedAt: '',
      },
      { name: 'kube-apiserver', binary, pid, ports: {}, log: '', startedAt: '' },
    ]);

    await stopRecordedControlPlane(stateDir);
    await exited;
    expect(stale.signalCode).toBe('SIGTERM');
    expect(pidExists(process.pid)).toBe(true);
    await stopRecordedControlPlane(stateDir);
  });

  it('kills a process that ignores SIGTERM once the grace period is over', async () => {
    const binary = join(stateDir, 'etcd');
    await symlink(process.execPath, binary);
    const stubborn = spawn(
      binary,
      [
        '-e',
        "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)",
        `${stateDir}/marker`,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const exited = new Promise<void>((resolve) => stubborn.once('exit', () => resolve()));
    await new Promise((resolve) => stubborn.stdout?.once('data', resolve));
    const record = {
      name: 'etcd',
      binary,
      pid: stubborn.pid ?? 0,
      ports: {},
      log: '',
      startedAt: '',
    };

    await expect(stopRecordedProcess(record, stateDir, 300, exited)).resolves.toBe('killed');
    expect(stubborn.signalCode).toBe('SIGKILL');
    expect(pidExists(record.pid)).toBe(false);
  });
});

describe('a start-up that fails', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'nginx-meshctl-failed-start-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it(
    'stops what it started and shows the end of the log of the component that died',
    async () => {
      // The real etcd, and an API server that rejects its flags the way a real one would.
      const realBinDir = await clusterBinDir();
      const binDir = join(root, 'bin');
      await mkdir(binDir);
      await symlink(join(realBinDir, 'etcd'), join(binDir, 'etcd'));
      const apiserver = join(binDir, 'kube-apiserver');
      await writeFile(apiserver, '#!/bin/sh\necho "Error: unknown flag: --probe" >&2\nexit 3\n');
      await chmod(apiserver, 0o755);
      const stateDir = join(root, 'state');

      await expect(
        startControlPlane({
          stateDir,
          bindAddress: '127.0.0.1',
          serviceCidr: SERVICE_CIDR,
          kubernetesServiceIP: KUBERNETES_SERVICE_IP,
          binDir,
        }),
      ).rejects.toThrow(/kube-apiserver ended \(exit code 3\)[^]*Error: unknown flag: --probe/);

      const records = await readProcessRecords(stateDir);
      expect(records.map((record) => record.name)).toEqual(['etcd', 'kube-apiserver']);
      expect(records.map((record) => record.pid).filter(pidExists)).toEqual([]);
    },
    BUILD_TIMEOUT_MS,
  );
});
