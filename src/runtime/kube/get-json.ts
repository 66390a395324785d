// GET of one API object as JSON through KubeAccess, with the API's own error message.
import type { KubeAccess, KubeTarget } from './access';
import { apiError } from './client';

export { KubeApiError } from './client';

export async function getJson<T>(kube: KubeAccess, target: KubeTarget, path: string): Promise<T> {
  const response = await kube.getRaw(target, path);
  if (response.status !== 200) throw apiError(response);
  return JSON.parse(response.body) as T;
}
