// A mesh installed from the Helm chart belongs to its release: nginx-meshctl recognises it by
// Helm's annotation (or its managed-by label), refuses to upgrade it or deploy over it, naming
// the helm command to use, and remove takes it off the cluster with the release's records, while
// leaving the namespace it did not create.
import { existingMeshProblem } from '../../src/commands/deploy/run-deploy';
import type { Installation } from '../../src/runtime/install/inventory';
import { helmReleaseOf } from '../../src/runtime/install/inventory';
import type { RawResponse } from '../../src/runtime/kube/access';
import { runCli } from '../support/cli';
import { kubeAnswering, kubeScripted, okJson } from '../support/fake-kube';
import type { SeenRequest } from '../support/fake-kube';
import { fixedClock } from '../support/fakes';

const NS = 'helm-mesh';
const PART_OF = { 'app.kubernetes.io/part-of': 'nginx-service-mesh' };
const HELM_CONTROLLER = {
  metadata: {
    name: 'nginx-mesh-controller',
    namespace: NS,
    labels: { ...PART_OF, 'app.kubernetes.io/managed-by': 'Helm' },
    annotations: { 'meta.helm.sh/release-name': 'mesh', 'meta.helm.sh/release-namespace': NS },
  },
};

describe('helmReleaseOf', () => {
  it("names the release from Helm's annotation", () => {
    expect(helmReleaseOf(HELM_CONTROLLER)).toBe('mesh');
  });

  it('knows a Helm object without the annotation, by its managed-by label, as a nameless release', () => {
    expect(
      helmReleaseOf({ metadata: { labels: { 'app.kubernetes.io/managed-by': 'Helm' } } }),
    ).toBe('');
  });

  it('sees no release on what deploy applied, or on nothing', () => {
    expect(
      helmReleaseOf({ metadata: { labels: { 'app.kubernetes.io/managed-by': 'nginx-meshctl' } } }),
    ).toBeUndefined();
    expect(helmReleaseOf(undefined)).toBeUndefined();
  });
});

describe('existingMeshProblem on a Helm release', () => {
  const helmInstalled: Installation = {
    namespaceExists: true,
    namespaceOwned: false,
    namespaceTerminating: false,
    controller: true,
    helmRelease: 'mesh',
    crds: ['meshconfigs.nsm.nginx.com'],
    foreignCrds: [],
    gatewayApiCrds: [],
    clusterObjects: [],
    bundles: [],
    gateways: [],
  };

  it('refuses, telling how Helm removes it', () => {
    expect(existingMeshProblem(helmInstalled, NS)).toBe(
      `mesh already exists: found NGINX Service Mesh installed with Helm (release 'mesh') in namespace '${NS}'. To remove it, run "helm uninstall mesh -n ${NS}"`,
    );
  });

  it('shows a placeholder for a release of unknown name', () => {
    expect(existingMeshProblem({ ...helmInstalled, helmRelease: '' }, NS)).toContain(
      `"helm uninstall <release> -n ${NS}"`,
    );
  });
});

describe('nginx-meshctl upgrade on a Helm release', () => {
  it('refuses in one line naming helm upgrade, and reads nothing else', async () => {
    const { kube, paths } = kubeAnswering({
      [`/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`]: okJson(HELM_CONTROLLER),
    });
    const result = await runCli(['upgrade', '-y', '-n', NS], { kube });
    expect(result.stderr).toBe(
      `Error: NGINX Service Mesh in namespace '${NS}' is managed by Helm (release 'mesh'): upgrade it with "helm upgrade mesh <chart> -n ${NS}" instead\n`,
    );
    expect(result.code).toBe(1);
    expect(paths.filter((path) => !path.startsWith('/version'))).toEqual([
      `/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`,
    ]);
  });

  it('refuses --dry-run too: Helm renders its own upgrades', async () => {
    const { kube } = kubeAnswering({
      [`/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`]: okJson(HELM_CONTROLLER),
    });
    const result = await runCli(['upgrade', '--dry-run', '-n', NS], { kube });
    expect(result.stdout).toBe('');
    expect(result.code).toBe(1);
  });
});

describe('nginx-meshctl remove on a Helm release', () => {
  const MISSING: RawResponse = { status: 404, body: '{}' };
  const labelled = (name: string): object => ({
    metadata: { name, namespace: NS, labels: PART_OF },
  });
  /** The mesh's own objects in the release namespace, by collection, as the chart creates them. */
  const namespaced: Record<string, string[]> = {
    [`/apis/apps/v1/namespaces/${NS}/deployments`]: ['nginx-mesh-controller'],
    [`/api/v1/namespaces/${NS}/services`]: ['nginx-mesh-controller'],
    [`/api/v1/namespaces/${NS}/configmaps`]: ['nginx-mesh-config'],
    [`/api/v1/namespaces/${NS}/secrets`]: ['nginx-mesh-controller-report'],
    [`/api/v1/namespaces/${NS}/serviceaccounts`]: ['nginx-mesh-controller'],
    [`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`]: ['nginx-mesh-controller'],
    [`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`]: ['nginx-mesh-controller'],
    [`/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`]: ['nats'],
  };

  const NATS_POD = `/api/v1/namespaces/${NS}/pods/nats-server-1`;

  /** Lists by label: the release's records, and the mesh's objects not deleted yet. */
  function listAnswer(
    path: string,
    query: string,
    deleted: ReadonlySet<string>,
  ): RawResponse | undefined {
    const selector = new URLSearchParams(query).get('labelSelector') ?? '';
    if (path === `/api/v1/namespaces/${NS}/secrets` && selector === 'owner=helm,name=mesh') {
      return okJson({ items: [{ metadata: { name: 'sh.helm.release.v1.mesh.v1' } }] });
    }
    const names = namespaced[path];
    if (names === undefined || selector !== 'app.kubernetes.io/part-of=nginx-service-mesh') {
      return undefined;
    }
    return okJson({ items: names.filter((name) => !deleted.has(`${path}/${name}`)).map(labelled) });
  }

  function scripted(): { requests: SeenRequest[]; run: () => ReturnType<typeof runCli> } {
    const deleted = new Set<string>();
    let natsPodReads = 0;
    const { connection, requests } = kubeScripted((request) => {
      const [path = '', query = ''] = request.path.split('?');
      if (request.method === 'DELETE') {
        deleted.add(path);
        return okJson({});
      }
      if (request.method === 'PATCH') return okJson({});
      if (path === `/api/v1/namespaces/${NS}`) return okJson({ metadata: { name: NS } });
      if (path === `/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`) {
        return deleted.has(path) ? MISSING : okJson(HELM_CONTROLLER);
      }
      if (path === `/api/v1/namespaces/${NS}/configmaps/meshconfig`) return okJson({ data: {} });
      if (path === NATS_POD) {
        natsPodReads += 1;
        return natsPodReads < 3 ? okJson(labelled('nats-server-1')) : MISSING;
      }
      if (path === `/api/v1/namespaces/${NS}/pods` && natsPodReads < 3) {
        return okJson({ items: [labelled('nats-server-1')] });
      }
      const listed = listAnswer(path, query, deleted);
      if (listed !== undefined) return listed;
      return request.path.includes('?') ? okJson({ items: [] }) : MISSING;
    });
    const kube = {
      getRaw: () => Promise.reject(new Error('unused')),
      connect: () => Promise.resolve(connection),
    };
    return {
      requests,
      run: () => runCli(['remove', '-y', '-n', NS], { kube, clock: fixedClock() }),
    };
  }

  it("deletes the mesh's objects and the release's records, and keeps the namespace", async () => {
    const { requests, run } = scripted();
    const result = await run();
    expect(result.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(result.code).toBe(0);
    const deletions = requests.filter((each) => each.method === 'DELETE').map((each) => each.path);
    for (const [collection, names] of Object.entries(namespaced)) {
      for (const name of names) expect(deletions).toContain(`${collection}/${name}`);
    }
    expect(deletions).toContain(`/api/v1/namespaces/${NS}/secrets/sh.helm.release.v1.mesh.v1`);
    expect(deletions).not.toContain(`/api/v1/namespaces/${NS}`);
    expect(result.stderr).toContain(`Removing NGINX Service Mesh objects from namespace ${NS}`);
    expect(result.stderr).not.toContain('Deleting namespace');
  });

  it("waits for the control plane's pods, which no namespace deletion waits for", async () => {
    const { requests, run } = scripted();
    const result = await run();
    expect(result.code).toBe(0);
    const reads = requests.filter((each) => each.method === 'GET' && each.path === NATS_POD);
    expect(reads).toHaveLength(3);
  });
});
