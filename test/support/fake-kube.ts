// A hand-written API for in-process CLI tests: fixed answers by path, and the paths asked for.
import type { KubeAccess, RawResponse } from '../../src/runtime/kube/access';
import { readOnlyKube } from './fakes';

export function kubeAnswering(
  routes: Record<string, RawResponse>,
  missingMessage = 'not found',
): { kube: KubeAccess; paths: string[] } {
  const paths: string[] = [];
  const missing = {
    status: 404,
    body: JSON.stringify({ kind: 'Status', message: missingMessage }),
  };
  return {
    paths,
    kube: readOnlyKube((_target, path) => {
      paths.push(path);
      return Promise.resolve(routes[path] ?? missing);
    }),
  };
}

/** A 200 answer with the object as JSON. */
export function okJson(body: unknown): RawResponse {
  return { status: 200, body: JSON.stringify(body) };
}
