// @kubernetes/client-node's API classes as a KubeConfig hands them out, in memory: each method
// records its request and answers from a table; the owner ClusterRole answers with a fixed uid
// until it is made unreachable.
import type * as K8s from '@kubernetes/client-node';
import { kubeClusterRoleOwner } from '../../src/runtime/kube/owner';

const ROLE = 'nginx-mesh-registrar.security.builtin.nsm.nginx';
const UID = '7f1c2d3e-0000-4000-8000-000000000001';

/** The ClusterRole fakeClientNode serves, and the owner reference to it. */
export const FAKE_OWNER = {
  ROLE,
  UID,
  OWNER: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: ROLE, uid: UID },
} as const;

interface Call {
  readonly method: string;
  readonly request: { body?: { metadata?: K8s.V1ObjectMeta } } & Record<string, unknown>;
}

/**
 * client-node's API classes as a KubeConfig hands them out: each method records its request and
 * answers from `answers` (an answer that throws is a failed request). readClusterRole answers
 * with the uid until `ownerDown` is set.
 */
export function fakeClientNode(answers: Record<string, (request: unknown) => unknown> = {}) {
  const calls: Call[] = [];
  const state = { ownerDown: false, ownerReads: 0 };
  const method =
    (name: string) =>
    (request: Call['request']): Promise<unknown> => {
      calls.push({ method: name, request });
      const answer = answers[name];
      return new Promise((resolve) => resolve(answer === undefined ? {} : answer(request)));
    };
  const core = Object.fromEntries(
    [
      'listNamespace',
      'readNamespacedSecret',
      'createNamespacedSecret',
      'replaceNamespacedSecret',
      'listConfigMapForAllNamespaces',
      'createNamespacedConfigMap',
      'replaceNamespacedConfigMap',
    ].map((name) => [name, method(name)]),
  );
  const rbac = {
    readClusterRole: ({ name }: { name: string }) => {
      state.ownerReads += 1;
      if (state.ownerDown) {
        return Promise.reject(Object.assign(new Error('fetch failed'), { cause: 'ECONNREFUSED' }));
      }
      return Promise.resolve({ metadata: { name, uid: FAKE_OWNER.UID } });
    },
  };
  const k8s = { CoreV1Api: 'core', RbacAuthorizationV1Api: 'rbac' } as unknown as typeof K8s;
  const config = {
    makeApiClient: (api: unknown) => (api === 'rbac' ? rbac : core),
  } as unknown as K8s.KubeConfig;
  const owner = kubeClusterRoleOwner(k8s, config, FAKE_OWNER.ROLE);
  const written = (name: string) =>
    calls.filter((call) => call.method === name).map((call) => call.request.body?.metadata);
  return { k8s, config, owner, calls, state, written };
}
