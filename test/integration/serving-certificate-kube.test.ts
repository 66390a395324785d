// The serving certificate's Secret, caBundle and front-proxy CA against a real kube-apiserver
// (with etcd) on loopback: writes name the resourceVersion they replace and lose to a newer one,
// two replicas renewing through the API server serve one certificate, and the requestheader CA
// comes from kube-system/extension-apiserver-authentication.
import { readFileSync } from 'node:fs';
import * as K8s from '@kubernetes/client-node';
import { systemClock } from '../../src/runtime/clock';
import { startRequestHeaderSource } from '../../src/runtime/metrics/request-header-source';
import { kubeCertificateStore, webhookCaBundleTarget } from '../../src/runtime/pki/kube-tls-api';
import type { ManagedServingCertificate } from '../../src/runtime/pki/managed-certificate';
import { startServingCertificate } from '../../src/runtime/pki/managed-certificate';
import { splitPemCertificates } from '../../src/runtime/pki/renewal-policy';
import type { ServingCertificate } from '../../src/runtime/pki/serving-certificate';
import type { OwnerSource } from '../../src/runtime/kube/owner';
import { kubeClusterRoleOwner } from '../../src/runtime/kube/owner';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { BareControlPlane } from '../support/bare-control-plane';
import {
  BARE_CONTROL_PLANE_TIMEOUT_MS,
  startBareControlPlane,
} from '../support/bare-control-plane';

const NAMESPACE = 'default';
const WEBHOOK = 'nmk-renewal-test';
/** The ClusterRole that owns the Secrets, as a role's own ClusterRole does. */
const OWNER = 'nmk-serving-owner';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await read();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const logLines: string[] = [];
const logger = createJsonLogger({
  level: 'debug',
  out: { write: (text) => void logLines.push(text) },
  now: () => new Date(),
});

let bare: BareControlPlane | undefined;
let config: K8s.KubeConfig;
let owner: OwnerSource;

beforeAll(async () => {
  bare = await startBareControlPlane('nmk-serving-kube-');
  const { plane } = bare;
  config = new K8s.KubeConfig();
  config.loadFromFile(plane.kubeconfigPath);
  await config
    .makeApiClient(K8s.RbacAuthorizationV1Api)
    .createClusterRole({ body: { metadata: { name: OWNER }, rules: [] } });
  owner = kubeClusterRoleOwner(K8s, config, OWNER);
}, BARE_CONTROL_PLANE_TIMEOUT_MS);

afterAll(() => bare?.stop(), 60_000);

describe('Secret writes through the API server', () => {
  it('creates once, and updates only over the resourceVersion it read', async () => {
    const store = kubeCertificateStore(K8s, config, owner);
    const data = { 'tls.crt': 'YQ==', 'tls.key': 'Yg==', 'ca.crt': 'Yw==' };
    expect(await store.readSecret(NAMESPACE, 'nmk-store')).toBeUndefined();
    expect(await store.createSecret(NAMESPACE, 'nmk-store', data)).toBe('written');
    expect(await store.createSecret(NAMESPACE, 'nmk-store', data)).toBe('conflict');
    const read = await store.readSecret(NAMESPACE, 'nmk-store');
    if (read === undefined) throw new Error('the Secret was not created');
    expect(read.data).toEqual(data);
    const next = { ...data, 'tls.crt': 'ZA==' };
    expect(await store.updateSecret(NAMESPACE, 'nmk-store', next, read.resourceVersion)).toBe(
      'written',
    );
    // The version read before that update is stale now: a second writer loses.
    expect(await store.updateSecret(NAMESPACE, 'nmk-store', data, read.resourceVersion)).toBe(
      'conflict',
    );
    expect((await store.readSecret(NAMESPACE, 'nmk-store'))?.data['tls.crt']).toBe('ZA==');
  });

  it('makes the ClusterRole the owner, so the garbage collector deletes the Secret with it', async () => {
    const rbac = config.makeApiClient(K8s.RbacAuthorizationV1Api);
    const core = config.makeApiClient(K8s.CoreV1Api);
    const role = await rbac.createClusterRole({
      body: { metadata: { name: 'nmk-doomed-owner' }, rules: [] },
    });
    const store = kubeCertificateStore(
      K8s,
      config,
      kubeClusterRoleOwner(K8s, config, 'nmk-doomed-owner'),
    );
    expect(
      await store.createSecret(NAMESPACE, 'nmk-owned', { 'tls.crt': 'YQ==', 'tls.key': 'Yg==' }),
    ).toBe('written');
    const created = await core.readNamespacedSecret({ name: 'nmk-owned', namespace: NAMESPACE });
    expect(created.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        name: 'nmk-doomed-owner',
        uid: role.metadata?.uid,
      },
    ]);
    await rbac.deleteClusterRole({ name: 'nmk-doomed-owner' });
    await eventually(
      'the garbage collector to delete Secret nmk-owned',
      async () =>
        (await store.readSecret(NAMESPACE, 'nmk-owned')) === undefined ? true : undefined,
      60_000,
    );
  }, 70_000);

  it('names the Secret and the API server’s reason, on one line, when a request fails', async () => {
    if (bare === undefined) throw new Error('the control plane did not start');
    const { plane } = bare;
    const stranger = new K8s.KubeConfig();
    stranger.loadFromOptions({
      clusters: [{ name: 'test', server: plane.server, caFile: plane.caPath }],
      users: [{ name: 'stranger', token: 'not-a-token' }],
      contexts: [{ name: 'test', cluster: 'test', user: 'stranger' }],
      currentContext: 'test',
    });
    const store = kubeCertificateStore(K8s, stranger, owner);
    await expect(store.readSecret(NAMESPACE, 'nmk-store')).rejects.toThrow(
      /^reading Secret default\/nmk-store: 401 Unauthorized$/,
    );
  });
});

describe('two replicas renewing through the API server', () => {
  const replicas: ManagedServingCertificate[] = [];

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
  });

  it('serve one certificate, then one renewed certificate whose CA the caBundle trusts', async () => {
    const admission = config.makeApiClient(K8s.AdmissionregistrationV1Api);
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: WEBHOOK },
        webhooks: [
          {
            name: 'renewal.test.nginx-meshctl.io',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Ignore',
            clientConfig: { url: 'https://127.0.0.1:9/mutate' },
            // Matches no namespace: the API server never calls it.
            namespaceSelector: { matchLabels: { 'nginx-meshctl-test': 'never' } },
            rules: [
              { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] },
            ],
          },
        ],
      },
    });
    const options = {
      namespace: NAMESPACE,
      secretName: 'nmk-webhook-tls',
      serviceName: 'nmk-webhook',
      validityMs: 6_000,
      checkIntervalMs: 300,
      settleMs: 300,
      minCheckDelayMs: 50,
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
    };
    const renewed: ServingCertificate[][] = [[], []];
    for (const index of [0, 1]) {
      const replica = startServingCertificate(options, {
        store: kubeCertificateStore(K8s, config, owner),
        target: webhookCaBundleTarget(K8s, config, WEBHOOK),
        clock: systemClock,
        random: Math.random,
        logger: logger.with({ replica: index }),
      });
      replica.onRenewal((certificate) => renewed[index]?.push(certificate));
      replicas.push(replica);
    }
    const firsts = await Promise.all(replicas.map((replica) => replica.first));
    expect(firsts[1]?.certificatePem).toBe(firsts[0]?.certificatePem);

    const [a, b] = await eventually(
      'both replicas to serve a renewed certificate',
      () => {
        const [fromA, fromB] = renewed.map((list) => list[0]);
        return Promise.resolve(
          fromA !== undefined && fromB !== undefined ? [fromA, fromB] : undefined,
        );
      },
      15_000,
    );
    expect(b.certificatePem).toBe(a.certificatePem);
    const configuration = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK });
    const caBundle = Buffer.from(
      configuration.webhooks?.[0]?.clientConfig.caBundle ?? '',
      'base64',
    ).toString('utf8');
    // The renewed certificate's CA (the first of its bundle) is trusted.
    expect(splitPemCertificates(caBundle)).toContain(splitPemCertificates(a.caPem)[0]);
    expect(replicas.map((replica) => replica.readiness())).toEqual([
      { ready: true },
      { ready: true },
    ]);
  });
});

describe('front-proxy CA', () => {
  it('is read from kube-system/extension-apiserver-authentication', async () => {
    if (bare === undefined) throw new Error('the control plane did not start');
    const { plane } = bare;
    const core = config.makeApiClient(K8s.CoreV1Api);
    const source = startRequestHeaderSource({
      read: async () =>
        (
          await core.readNamespacedConfigMap({
            name: 'extension-apiserver-authentication',
            namespace: 'kube-system',
          })
        ).data ?? {},
      description: 'ConfigMap kube-system/extension-apiserver-authentication',
      clock: systemClock,
      random: Math.random,
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      logger,
    });
    try {
      const settings = await source.first;
      expect(settings.clientCaPem.trim()).toContain(
        readFileSync(plane.pki.frontProxyCa.cert, 'utf8').trim(),
      );
      expect(settings.allowedNames).toEqual(['front-proxy-client']);
      expect(source.readiness()).toEqual({ ready: true });
    } finally {
      await source.stop();
    }
  });
});
