// What the roles write at run time is owned by their own ClusterRole, so that the garbage
// collector deletes it with the mesh however the mesh was installed: every create and every
// replace carries exactly that owner reference, a copy an older version wrote without it is
// adopted, and while the ClusterRole cannot be read nothing is written and the caller retries.
import type * as K8s from '@kubernetes/client-node';
import { kubeReportTokenStore, startReportToken } from '../../src/runtime/controller/report-token';
import { clusterRoleOwner } from '../../src/runtime/kube/owner';
import { kubeCertificateStore } from '../../src/runtime/pki/kube-tls-api';
import { publishBundle } from '../../src/runtime/registrar/bundle-publisher';
import { kubeBundleApi, kubeCaStore } from '../../src/runtime/registrar/kube-registrar-api';
import { createJsonLogger } from '../../src/runtime/role/log';
import { FAKE_OWNER, fakeClientNode } from '../support/fake-client-node';

const { ROLE, UID, OWNER } = FAKE_OWNER;

describe("the owner: the role's own ClusterRole", () => {
  it('is read once, and kept', async () => {
    const reads: string[] = [];
    const owner = clusterRoleOwner(ROLE, (name) => {
      reads.push(name);
      return Promise.resolve(UID);
    });
    expect(await owner()).toEqual(OWNER);
    expect(await owner()).toEqual(OWNER);
    expect(reads).toEqual([ROLE]);
  });

  it('is read again after a failed read, which names the ClusterRole', async () => {
    let down = true;
    const owner = clusterRoleOwner(ROLE, () =>
      down ? Promise.reject(new Error('fetch failed')) : Promise.resolve(UID),
    );
    await expect(owner()).rejects.toThrow(
      `reading ClusterRole ${ROLE}, the owner of what this role writes: fetch failed`,
    );
    down = false;
    expect(await owner()).toEqual(OWNER);
  });

  it('says which rule is missing when the read is forbidden', async () => {
    const owner = clusterRoleOwner(ROLE, () =>
      Promise.reject(Object.assign(new Error('HTTP-Code: 403\nMessage: ...'), { code: 403 })),
    );
    await expect(owner()).rejects.toMatchObject({
      message: `reading ClusterRole ${ROLE}, the owner of what this role writes: HTTP 403`,
      hint: `the role's ClusterRole must grant get on clusterroles named ${ROLE}`,
    });
  });
});

describe('serving certificate Secrets', () => {
  it('are created with exactly the owner reference', async () => {
    const fake = fakeClientNode();
    const store = kubeCertificateStore(fake.k8s, fake.config, fake.owner);
    expect(await store.createSecret('nginx-mesh', 'tls', { 'tls.crt': 'YQ==' })).toBe('written');
    expect(fake.written('createNamespacedSecret')).toEqual([
      expect.objectContaining({ name: 'tls', ownerReferences: [OWNER] }),
    ]);
  });

  it('are adopted by their next update when an older version wrote them without one', async () => {
    const fake = fakeClientNode();
    const store = kubeCertificateStore(fake.k8s, fake.config, fake.owner);
    await store.updateSecret('nginx-mesh', 'tls', { 'tls.crt': 'YQ==' }, '41');
    expect(fake.written('replaceNamespacedSecret')).toEqual([
      expect.objectContaining({ resourceVersion: '41', ownerReferences: [OWNER] }),
    ]);
  });

  it('are not written while the owner cannot be read', async () => {
    const fake = fakeClientNode();
    fake.state.ownerDown = true;
    const store = kubeCertificateStore(fake.k8s, fake.config, fake.owner);
    await expect(store.createSecret('nginx-mesh', 'tls', {})).rejects.toThrow(
      `reading ClusterRole ${ROLE}`,
    );
    expect(fake.calls).toEqual([]);
  });
});

describe("the registrar's CA Secret", () => {
  it('is created and replaced with exactly the owner reference', async () => {
    const fake = fakeClientNode();
    const store = kubeCaStore(fake.k8s, fake.config, 'nginx-mesh', 'ca', fake.owner);
    expect(await store.create({ 'ca.json': 'W10=' })).toBe(true);
    expect(await store.replace({ 'ca.json': 'W10=' }, '9')).toBe(true);
    expect(fake.written('createNamespacedSecret')).toEqual([
      expect.objectContaining({ ownerReferences: [OWNER] }),
    ]);
    expect(fake.written('replaceNamespacedSecret')).toEqual([
      expect.objectContaining({ resourceVersion: '9', ownerReferences: [OWNER] }),
    ]);
    expect(fake.state.ownerReads).toBe(1);
  });
});

describe('the trust bundle ConfigMaps', () => {
  const bundleApi = (items: K8s.V1ConfigMap[]) => {
    const fake = fakeClientNode({ listConfigMapForAllNamespaces: () => ({ items }) });
    const api = kubeBundleApi(fake.k8s, fake.config, 'nginx-mesh-bundle', ROLE, fake.owner);
    return { fake, api };
  };

  it('are created and replaced with exactly the owner reference', async () => {
    const { fake, api } = bundleApi([]);
    await api.create('app', { 'bundle.crt': 'pem' });
    await api.replace('web', { 'bundle.crt': 'pem' }, '3');
    expect(fake.written('createNamespacedConfigMap')).toEqual([
      expect.objectContaining({ namespace: 'app', ownerReferences: [OWNER] }),
    ]);
    expect(fake.written('replaceNamespacedConfigMap')).toEqual([
      expect.objectContaining({ namespace: 'web', resourceVersion: '3', ownerReferences: [OWNER] }),
    ]);
  });

  it('are listed as owned only when they name the ClusterRole', async () => {
    const { api } = bundleApi([
      { metadata: { namespace: 'old', resourceVersion: '1' } },
      { metadata: { namespace: 'new', resourceVersion: '2', ownerReferences: [OWNER] } },
    ]);
    const listed = await api.listBundles();
    expect(listed.map(({ namespace, owned }) => ({ namespace, owned }))).toEqual([
      { namespace: 'old', owned: false },
      { namespace: 'new', owned: true },
    ]);
  });

  it('are written again once when current but unowned, so the older copies are adopted', async () => {
    const { fake, api } = bundleApi([
      { metadata: { namespace: 'old', resourceVersion: '1' }, data: { 'bundle.crt': 'pem' } },
      {
        metadata: { namespace: 'new', resourceVersion: '2', ownerReferences: [OWNER] },
        data: { 'bundle.crt': 'pem' },
      },
    ]);
    const namespaces = { listNamespaces: () => Promise.resolve(['old', 'new']) };
    const result = await publishBundle({ ...api, ...namespaces }, 'pem');
    expect(result).toEqual({ written: 1, failed: new Map() });
    expect(fake.written('replaceNamespacedConfigMap')).toEqual([
      expect.objectContaining({ namespace: 'old', ownerReferences: [OWNER] }),
    ]);
  });

  it('are not written while the owner cannot be read; each namespace reports why', async () => {
    const { fake, api } = bundleApi([]);
    fake.state.ownerDown = true;
    const namespaces = { listNamespaces: () => Promise.resolve(['app']) };
    const result = await publishBundle({ ...api, ...namespaces }, 'pem');
    expect(result.written).toBe(0);
    expect(result.failed.get('app')).toContain(`reading ClusterRole ${ROLE}`);
    expect(fake.written('createNamespacedConfigMap')).toEqual([]);
  });
});

describe("the controller's report token Secret", () => {
  it('is created with exactly the owner reference', async () => {
    const fake = fakeClientNode();
    const store = kubeReportTokenStore(fake.k8s, fake.config, 'nginx-mesh', fake.owner);
    expect(await store.create('token')).toBe('written');
    expect(fake.written('createNamespacedSecret')).toEqual([
      expect.objectContaining({ ownerReferences: [OWNER] }),
    ]);
  });

  it('waits, retrying with backoff, while the owner cannot be read, then creates it', async () => {
    const notFound = () => {
      throw Object.assign(new Error('not found'), { code: 404 });
    };
    let created: () => void = () => undefined;
    const wasCreated = new Promise<void>((resolve) => {
      created = resolve;
    });
    const fake = fakeClientNode({
      readNamespacedSecret: notFound,
      createNamespacedSecret: () => {
        created();
        return {};
      },
    });
    fake.state.ownerDown = true;
    const lines: string[] = [];
    let nowMs = Date.parse('2026-01-02T03:04:05.000Z');
    const sleeps: number[] = [];
    const token = startReportToken({
      store: kubeReportTokenStore(fake.k8s, fake.config, 'nginx-mesh', fake.owner),
      clock: {
        now: () => new Date(nowMs),
        sleep: (ms) => {
          sleeps.push(ms);
          nowMs += ms;
          fake.state.ownerDown = false;
          return Promise.resolve();
        },
      },
      random: () => 0.5,
      initialBackoffMs: 1_000,
      maxBackoffMs: 60_000,
      logger: createJsonLogger({
        level: 'debug',
        out: { write: (text) => void lines.push(text) },
        now: () => new Date(nowMs),
      }),
    });
    expect(token.current()).toBeUndefined();
    await wasCreated;
    await token.loop.stop();
    expect(sleeps).toHaveLength(1);
    expect(lines.join('')).toContain('waiting for the sidecar report token');
    expect(lines.join('')).toContain(`reading ClusterRole ${ROLE}`);
    expect(token.current()).toBeDefined();
    expect(fake.written('createNamespacedSecret')).toEqual([
      expect.objectContaining({ ownerReferences: [OWNER] }),
    ]);
  });
});
