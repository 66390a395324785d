// The registrar's admission policy on a real kube-apiserver (with etcd): the registrar's
// ServiceAccount may write its trust-bundle ConfigMap owned by its own ClusterRole, and no
// ConfigMap that names another owner.
import * as K8s from '@kubernetes/client-node';
import { REGISTRAR_NAME } from '../../src/manifests/constants';
import { REGISTRAR_RBAC_NAME } from '../../src/manifests/install/rbac';
import { buildRegistrarAdmission } from '../../src/manifests/install/registrar-admission';
import type { BareControlPlane } from '../support/bare-control-plane';
import {
  BARE_CONTROL_PLANE_TIMEOUT_MS,
  startBareControlPlane,
} from '../support/bare-control-plane';

const NAMESPACE = 'default';

let bare: BareControlPlane | undefined;
let admin: K8s.KubeConfig;
let registrar: K8s.CoreV1Api;
let ownerUid: string;

beforeAll(async () => {
  bare = await startBareControlPlane('nmk-registrar-admission-');
  const { plane } = bare;
  admin = new K8s.KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  const core = admin.makeApiClient(K8s.CoreV1Api);
  const rbac = admin.makeApiClient(K8s.RbacAuthorizationV1Api);
  const admission = admin.makeApiClient(K8s.AdmissionregistrationV1Api);
  const [policy, binding] = buildRegistrarAdmission(NAMESPACE, {});
  await admission.createValidatingAdmissionPolicy({
    body: policy as unknown as K8s.V1ValidatingAdmissionPolicy,
  });
  await admission.createValidatingAdmissionPolicyBinding({
    body: binding as unknown as K8s.V1ValidatingAdmissionPolicyBinding,
  });
  const role = await rbac.createClusterRole({
    body: {
      metadata: { name: REGISTRAR_RBAC_NAME },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] }],
    },
  });
  ownerUid = role.metadata?.uid ?? '';
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: REGISTRAR_RBAC_NAME },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: REGISTRAR_RBAC_NAME,
      },
      subjects: [{ kind: 'ServiceAccount', name: REGISTRAR_NAME, namespace: NAMESPACE }],
    },
  });
  await core.createNamespacedServiceAccount({
    namespace: NAMESPACE,
    body: { metadata: { name: REGISTRAR_NAME } },
  });
  const token = await core.createNamespacedServiceAccountToken({
    name: REGISTRAR_NAME,
    namespace: NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const config = new K8s.KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server: plane.server, caFile: plane.caPath }],
    users: [{ name: 'registrar', token: token.status?.token ?? '' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'registrar' }],
    currentContext: 'test',
  });
  registrar = config.makeApiClient(K8s.CoreV1Api);
}, BARE_CONTROL_PLANE_TIMEOUT_MS);

afterAll(() => bare?.stop(), 60_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates the bundle in namespace as the registrar; the API server's message when refused. */
async function createBundle(
  namespace: string,
  owner: K8s.V1OwnerReference,
): Promise<string | undefined> {
  try {
    await registrar.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: { name: 'nginx-mesh-bundle', ownerReferences: [owner] },
        data: { 'bundle.crt': 'pem' },
      },
    });
    return undefined;
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return typeof body === 'string' ? body : String(error);
  }
}

describe("the registrar's bundle ConfigMaps under the admission policy", () => {
  it('may name the registrar’s ClusterRole as owner, and no other', async () => {
    const core = admin.makeApiClient(K8s.CoreV1Api);
    const foreign = {
      apiVersion: 'v1',
      kind: 'Namespace',
      name: 'kube-system',
      uid: '00000000-0000-4000-8000-000000000000',
    };
    // The policy takes effect once the API server has loaded it: until a foreign owner is refused.
    let refusal: string | undefined;
    for (let attempt = 0; attempt < 100 && refusal === undefined; attempt += 1) {
      await core.createNamespace({ body: { metadata: { name: `probe-${attempt}` } } });
      refusal = await createBundle(`probe-${attempt}`, foreign);
      if (refusal === undefined) await sleep(300);
    }
    expect(refusal).toContain(`may be owned only by ClusterRole ${REGISTRAR_RBAC_NAME}`);
    expect(
      await createBundle(NAMESPACE, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        name: REGISTRAR_RBAC_NAME,
        uid: ownerUid,
      }),
    ).toBeUndefined();
  }, 60_000);
});
