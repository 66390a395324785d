// The registrar on a real API server: it runs as a pod of the test cluster (the executable, as
// the nginx-mesh-controller image) with exactly the RBAC rules the deploy manifests grant it, and
// a workload pod obtains and renews its SVID with a real projected token. Forged, expired,
// foreign-audience and unbound tokens, pods outside the mesh (also one that only carries the
// injector's annotation and hands the token to its app) and requests for another identity are
// refused. The test's echo-server image stands in for the sidecar image: the registrar is told so
// (--sidecar-image), and the client pod runs it exactly as the injector runs the sidecar. TTLs are seconds, so the CA rotates during the test, across a registrar restart.
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { SERVICE_ACCOUNT_ISSUER } from './harness/control-plane';
import type { KubeRest } from './harness/kube-rest';
import { KubeRestError } from './harness/kube-rest';
import {
  createNamespace,
  deleteNamespace,
  isReady,
  listPods,
  testRest,
  waitFor,
} from './support/kube';
import { createKeyAndRequest } from '../../src/runtime/svid/csr';
import { CLIENT_IMAGE, CONTROLLER_IMAGE_REF, ECHO_SERVER_IMAGE } from '../support/images';
import { podLogs } from './support/node-access';

const meshNamespace = 'registrar-mesh';
const appNamespace = 'registrar-app';
const clusterRole = `${meshNamespace}-nginx-mesh-registrar`;
const serverName = `nginx-mesh-registrar.${meshNamespace}.svc`;
// The SVID's half-life (8 s) must outlast the registrar's restart in the rotation test, which
// a loaded node can stretch to 10 s; the CA lives the least it may, six SVID lifetimes.
const CA_TTL = '96s';
const SVID_TTL = '16s';
let rest: KubeRest;
let registrarUrl: string;
let bundle: string;

const root = join(__dirname, '..', '..');
const stateDir = (): string => {
  const dir = process.env.NMK_TEST_STATE_DIR;
  if (dir === undefined) throw new Error('NMK_TEST_STATE_DIR is not set');
  return dir;
};

async function create(path: string, body: unknown): Promise<void> {
  await rest.request('POST', path, body);
}

const rbac = (kind: string, namespace?: string): string =>
  `/apis/rbac.authorization.k8s.io/v1${namespace === undefined ? '' : `/namespaces/${namespace}`}/${kind}`;

/** The registrar's RBAC: what the deploy manifests must grant, and nothing more. */
async function grantRegistrar(): Promise<void> {
  const subject = {
    kind: 'ServiceAccount',
    name: 'nginx-mesh-registrar',
    namespace: meshNamespace,
  };
  await create(`/api/v1/namespaces/${meshNamespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'nginx-mesh-registrar' },
  });
  await create(rbac('clusterroles'), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: clusterRole },
    rules: [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['nginx-mesh-bundle'],
        verbs: ['list', 'update'],
      },
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: [clusterRole],
        verbs: ['get'],
      },
    ],
  });
  await create(rbac('clusterrolebindings'), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: clusterRole },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [subject],
  });
  await create(rbac('roles', meshNamespace), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'nginx-mesh-registrar' },
    rules: [
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['nginx-mesh-registrar-ca'],
        verbs: ['get', 'update'],
      },
    ],
  });
  await create(rbac('rolebindings', meshNamespace), {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'nginx-mesh-registrar' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nginx-mesh-registrar' },
    subjects: [subject],
  });
}

async function deployRegistrar(): Promise<void> {
  await create(`/api/v1/namespaces/${meshNamespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'nginx-mesh-registrar' },
    spec: {
      selector: { app: 'nginx-mesh-registrar' },
      ports: [{ name: 'api', port: 8443, targetPort: 8443 }],
    },
  });
  await create(`/apis/apps/v1/namespaces/${meshNamespace}/deployments`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'nginx-mesh-registrar' },
    spec: {
      selector: { matchLabels: { app: 'nginx-mesh-registrar' } },
      template: {
        metadata: { labels: { app: 'nginx-mesh-registrar' } },
        spec: {
          serviceAccountName: 'nginx-mesh-registrar',
          terminationGracePeriodSeconds: 5,
          securityContext: { runAsUser: 65532, runAsNonRoot: true },
          containers: [
            {
              name: 'registrar',
              image: CONTROLLER_IMAGE_REF,
              args: [
                'run',
                '--role',
                'registrar',
                '--mesh-namespace',
                meshNamespace,
                `--cluster-role=${clusterRole}`,
                '--ca-ttl',
                CA_TTL,
                '--svid-ttl',
                SVID_TTL,
                `--sidecar-image=${ECHO_SERVER_IMAGE}`,
                `--control-plane-image=${CONTROLLER_IMAGE_REF}`,
              ],
              ports: [
                { name: 'api', containerPort: 8443 },
                { name: 'probes', containerPort: 8081 },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'probes' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  });
}

async function readyRegistrarPod(exclude = ''): Promise<string> {
  return waitFor('a ready registrar pod', async () => {
    const pods = await listPods(rest, meshNamespace, 'app=nginx-mesh-registrar');
    const ready = pods.find((pod) => isReady(pod) && pod.metadata.name !== exclude);
    return ready?.metadata.name;
  });
}

async function bundleIn(namespace: string): Promise<string | undefined> {
  try {
    const map = await rest.request<{ data?: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${namespace}/configmaps/nginx-mesh-bundle`,
    );
    return map.data?.['bundle.crt'];
  } catch (error) {
    if (error instanceof KubeRestError && error.status === 404) return undefined;
    throw error;
  }
}

const roots = (pem: string): X509Certificate[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );

interface Answer {
  status: number;
  body: { error?: string; spiffeId?: string; certificateChain?: string; trustBundle?: string };
}

/** POSTs a CSR with a token to the registrar, verifying it with the published bundle. */
function post(token: string, csrPem: string): Promise<Answer> {
  const url = new URL('/v1/svid', registrarUrl);
  const body = JSON.stringify({ csr: csrPem });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: bundle,
        servername: serverName,
        checkServerIdentity: () => undefined,
        agent: false,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function tokenFor(pod: { name: string; uid: string }, audience: string, account = 'web') {
  const review = await rest.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${appNamespace}/serviceaccounts/${account}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [audience],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
      },
    },
  );
  return review.status.token;
}

function podSpec(name: string, annotations: Record<string, string>, container: unknown): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations },
    spec: {
      serviceAccountName: 'web',
      terminationGracePeriodSeconds: 1,
      containers: [container],
      volumes: [
        {
          name: 'nginx-mesh-identity',
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: 'nginx-mesh-registrar',
                  expirationSeconds: 3600,
                  path: 'token',
                },
              },
              {
                configMap: {
                  name: 'nginx-mesh-bundle',
                  items: [{ key: 'bundle.crt', path: 'bundle.crt' }],
                },
              },
            ],
          },
        },
        { name: 'nginx-mesh-config', emptyDir: { medium: 'Memory' } },
      ],
    },
  };
}

async function startClientPod(): Promise<void> {
  const service = await rest.request<{ spec: { clusterIP: string } }>(
    'GET',
    `/api/v1/namespaces/${meshNamespace}/services/nginx-mesh-registrar`,
  );
  await create(
    `/api/v1/namespaces/${appNamespace}/pods`,
    podSpec(
      'client',
      {},
      {
        // Shaped as the injector shapes the sidecar: its name, the (stand-in) sidecar image with
        // the agent role's arguments, the sidecar's uid, no environment of its own. The image
        // then runs the SVID client (test/cluster/apps/svid-client.ts).
        name: 'nginx-mesh-sidecar',
        image: ECHO_SERVER_IMAGE,
        args: [
          'run',
          '--role=agent',
          '--token-path=/var/run/secrets/nginx-mesh/token',
          '--bundle-path=/var/run/secrets/nginx-mesh/bundle.crt',
          '--output-dir=/etc/nginx-mesh',
          `--registrar-url=https://${service.spec.clusterIP}:8443`,
          `--registrar-server-name=${serverName}`,
        ],
        securityContext: { runAsUser: 2102, runAsGroup: 2102 },
        volumeMounts: [
          { name: 'nginx-mesh-identity', mountPath: '/var/run/secrets/nginx-mesh', readOnly: true },
          { name: 'nginx-mesh-config', mountPath: '/etc/nginx-mesh' },
        ],
      },
    ),
  );
}

interface ClientState {
  current?: { spiffeId: string; notAfter: string };
  svid: string;
  checks: number;
  violations: string[];
  issuers: string[];
}

async function clientState(): Promise<ClientState> {
  const pod = await rest.request<{ status?: { podIP?: string } }>(
    'GET',
    `/api/v1/namespaces/${appNamespace}/pods/client`,
  );
  const ip = pod.status?.podIP;
  if (ip === undefined) throw new Error('client pod has no IP yet');
  const response = await fetch(`http://${ip}:8080/`, { signal: AbortSignal.timeout(2_000) });
  return (await response.json()) as ClientState;
}

async function podRef(name: string): Promise<{ name: string; uid: string }> {
  const pod = await rest.request<{ metadata: { uid: string } }>(
    'GET',
    `/api/v1/namespaces/${appNamespace}/pods/${name}`,
  );
  return { name, uid: pod.metadata.uid };
}

/** A service-account token signed with the cluster's real key, expired an hour ago. */
function expiredToken(pod: { name: string; uid: string }): string {
  const key = createPrivateKey(readFileSync(join(stateDir(), 'control-plane', 'pki', 'sa.key')));
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = b64({ alg: 'ES256', typ: 'JWT' });
  const claims = b64({
    aud: ['nginx-mesh-registrar'],
    exp: now - 3600,
    iat: now - 7200,
    nbf: now - 7200,
    iss: SERVICE_ACCOUNT_ISSUER,
    jti: randomUUID(),
    sub: `system:serviceaccount:${appNamespace}:web`,
    'kubernetes.io': {
      namespace: appNamespace,
      pod: pod,
      serviceaccount: { name: 'web', uid: randomUUID() },
    },
  });
  const signature = sign('sha256', Buffer.from(`${header}.${claims}`), {
    key,
    dsaEncoding: 'ieee-p1363',
  }).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

/** The last lines every registrar container logged, to explain a failure. */
async function registrarLogs(): Promise<string> {
  const pods = await listPods(rest, meshNamespace, 'app=nginx-mesh-registrar').catch(() => []);
  return pods
    .map((pod) => {
      const text = podLogs(pod.metadata.uid).registrar ?? '';
      return `${pod.metadata.name}:\n${text.split('\n').slice(-40).join('\n')}`;
    })
    .join('\n');
}

/** Runs a step; when it fails, the registrar's logs join the error. */
async function explained<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n${await registrarLogs()}`,
    );
  }
}

async function deleteQuietly(path: string): Promise<void> {
  await rest.request('DELETE', path).catch(() => undefined);
}

beforeAll(async () => {
  rest = await testRest();
  await createNamespace(rest, meshNamespace);
  await createNamespace(rest, appNamespace);
  await create(`/api/v1/namespaces/${appNamespace}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'web' },
  });
  await grantRegistrar();
  await deployRegistrar();
  const pod = await readyRegistrarPod();
  const ip = (
    await rest.request<{ status: { podIP: string } }>(
      'GET',
      `/api/v1/namespaces/${meshNamespace}/pods/${pod}`,
    )
  ).status.podIP;
  registrarUrl = `https://${ip}:8443`;
  bundle = await waitFor('the trust bundle in the app namespace', () => bundleIn(appNamespace));
  await startClientPod();
});

afterAll(async () => {
  if (rest === undefined) return;
  await deleteQuietly(`/apis/apps/v1/namespaces/${meshNamespace}/deployments/nginx-mesh-registrar`);
  await deleteNamespace(rest, appNamespace);
  await deleteNamespace(rest, meshNamespace);
  await deleteQuietly(`${rbac('clusterrolebindings')}/${clusterRole}`);
  await deleteQuietly(`${rbac('clusterroles')}/${clusterRole}`);
  const copies = await rest.request<{ items: { metadata: { namespace: string } }[] }>(
    'GET',
    '/api/v1/configmaps?fieldSelector=metadata.name%3Dnginx-mesh-bundle',
  );
  for (const item of copies.items) {
    await deleteQuietly(
      `/api/v1/namespaces/${item.metadata.namespace}/configmaps/nginx-mesh-bundle`,
    );
  }
  rest.close();
});

describe('the registrar', () => {
  it('keeps its CA in a Secret and publishes the bundle in every namespace', async () => {
    const secret = await rest.request<{ data: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${meshNamespace}/secrets/nginx-mesh-registrar-ca`,
    );
    expect(Object.keys(secret.data)).toEqual(['authorities.json']);
    expect(await bundleIn(meshNamespace)).toBe(bundle);
    await expect(waitFor('the bundle in default', () => bundleIn('default'))).resolves.toBe(bundle);
  });

  it('publishes the bundle in a new namespace as soon as the namespace exists', async () => {
    // Three namespaces 5 s apart, spread over the 15 s periodic sync: each copy must come from
    // the namespace watch, within 2 s, not from a sync that happened to fall close by.
    const delays: number[] = [];
    for (let index = 0; index < 3; index += 1) {
      if (index > 0) await new Promise((resolve) => setTimeout(resolve, 5_000));
      const namespace = `late-${randomUUID().slice(0, 8)}`;
      const created = Date.now();
      await rest.request('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace },
      });
      try {
        await expect(
          waitFor(`the bundle in ${namespace}`, () => bundleIn(namespace), 10_000, 50),
        ).resolves.toBe(bundle);
        delays.push(Date.now() - created);
      } finally {
        await deleteNamespace(rest, namespace);
      }
    }
    process.stderr.write(`bundle published in new namespaces after ${delays.join(', ')} ms\n`);
    for (const delay of delays) expect(delay).toBeLessThan(2_000);
  }, 60_000);

  it('gives an injected pod its SVID through its projected token', async () => {
    const state = await waitFor('the client SVID', async () => {
      const current = await clientState();
      return current.current?.spiffeId === undefined ? undefined : current;
    });
    expect(state.current?.spiffeId).toBe(`spiffe://example.org/ns/${appNamespace}/sa/web`);
    const [leaf] = roots(state.svid);
    expect(leaf?.subjectAltName).toBe(
      `DNS:web.${appNamespace}.svc, URI:spiffe://example.org/ns/${appNamespace}/sa/web`,
    );
    expect(
      roots(bundle).some((ca) => leaf?.checkIssued(ca) === true && leaf.verify(ca.publicKey)),
    ).toBe(true);
  });
});

describe('refusals', () => {
  let csr: string;
  beforeAll(async () => (csr = (await createKeyAndRequest('ec-p256')).csrPem));

  it('issues to a valid token of the client pod (the control case)', async () => {
    const answer = await post(await tokenFor(await podRef('client'), 'nginx-mesh-registrar'), csr);
    expect(answer.status).toBe(200);
  });

  it('refuses a forged token', async () => {
    const [header, claims] = (await tokenFor(await podRef('client'), 'nginx-mesh-registrar')).split(
      '.',
    );
    const answer = await post(
      `${header}.${claims}.${Buffer.from('forged').toString('base64url')}`,
      csr,
    );
    expect(answer).toMatchObject({ status: 401 });
    expect(answer.body.certificateChain).toBeUndefined();
  });

  it('refuses an expired token signed by the cluster', async () => {
    const answer = await post(expiredToken(await podRef('client')), csr);
    expect(answer.status).toBe(401);
    expect(answer.body.error).toMatch(/expired|token rejected/);
  });

  it('refuses a token for another audience', async () => {
    const answer = await post(await tokenFor(await podRef('client'), 'some-other-service'), csr);
    expect(answer.status).toBe(401);
    expect(answer.body.certificateChain).toBeUndefined();
  });

  it("refuses a request for another pod's identity", async () => {
    const foreign = readFileSync(
      join(root, 'test', 'fixtures', 'registrar', 'csr-foreign.pem'),
      'utf8',
    );
    const answer = await post(
      await tokenFor(await podRef('client'), 'nginx-mesh-registrar'),
      foreign,
    );
    expect(answer.status).toBe(403);
    expect(answer.body.error).toMatch(/spiffe:\/\/example\.org\/ns\/other\/sa\/admin/);
  });

  it("refuses a pod that only carries the injector's annotation and gives its app the token", async () => {
    const app = {
      name: 'app',
      image: CLIENT_IMAGE,
      command: ['sh', '-c', 'exec sleep 600'],
      volumeMounts: [
        { name: 'nginx-mesh-identity', mountPath: '/var/run/secrets/nginx-mesh', readOnly: true },
      ],
    };
    await create(
      `/api/v1/namespaces/${appNamespace}/pods`,
      podSpec('forged', { 'injector.nsm.nginx.com/status': 'injected' }, app),
    );
    const token = await tokenFor(await podRef('forged'), 'nginx-mesh-registrar');
    const answer = await post(token, csr);
    expect(answer.status).toBe(403);
    expect(answer.body.error).toMatch(/not in the mesh: it has no container nginx-mesh-sidecar/);
    expect(answer.body.certificateChain).toBeUndefined();
  });

  it('refuses a pod that is not in the mesh, and one that is gone', async () => {
    const plain = { name: 'plain', image: CLIENT_IMAGE, command: ['sh', '-c', 'exec sleep 600'] };
    await create(`/api/v1/namespaces/${appNamespace}/pods`, podSpec('plain', {}, plain));
    const ref = await podRef('plain');
    const token = await tokenFor(ref, 'nginx-mesh-registrar');
    const outside = await post(token, csr);
    expect(outside.status).toBe(403);
    expect(outside.body.error).toMatch(/not in the mesh/);
    await rest.request(
      'DELETE',
      `/api/v1/namespaces/${appNamespace}/pods/plain?gracePeriodSeconds=0`,
    );
    await waitFor('the plain pod to be gone', async () =>
      (await podRef('plain').catch(() => undefined)) === undefined ? true : undefined,
    );
    const gone = await post(token, csr);
    expect([401, 403]).toContain(gone.status);
    expect(gone.body.certificateChain).toBeUndefined();
  });
});

describe('rotation', () => {
  it(
    'rotates the CA across a registrar restart with no expired certificate in use',
    () =>
      explained(async () => {
        const first = roots(bundle)[0];
        if (first === undefined) throw new Error('no root in the bundle');
        await waitFor(
          'a second root in the bundle',
          async () => {
            const current = await bundleIn(meshNamespace);
            return current !== undefined && roots(current).length === 2 ? true : undefined;
          },
          120_000,
        );
        const old = await readyRegistrarPod();
        await rest.request('DELETE', `/api/v1/namespaces/${meshNamespace}/pods/${old}`);
        await readyRegistrarPod(old);
        const afterRestart = await bundleIn(meshNamespace);
        expect(roots(afterRestart ?? '').map((ca) => ca.fingerprint256)).toContain(
          first.fingerprint256,
        );
        await waitFor(
          'the first root to leave the bundle',
          async () => {
            const current = await bundleIn(meshNamespace);
            return current !== undefined &&
              !roots(current).some((ca) => ca.fingerprint256 === first.fingerprint256)
              ? true
              : undefined;
          },
          120_000,
        );
        const state = await waitFor(
          'the client to use the new CA',
          async () => {
            const current = await clientState();
            return current.issuers.length >= 2 ? current : undefined;
          },
          60_000,
        );
        expect(state.violations).toEqual([]);
        expect(state.checks).toBeGreaterThan(100);
      }),
    300_000,
  );
});
