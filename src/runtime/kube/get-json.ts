// GET of one API object as JSON through KubeAccess, with the API's own error message.
import { MeshctlError } from '../../errors';
import type { KubeAccess, KubeTarget } from './access';

/** A Kubernetes API error: the HTTP status and the Status object's message. */
export class KubeApiError extends MeshctlError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function statusMessage(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string' && parsed.message !== '') return parsed.message;
  } catch {
    // not a Status object
  }
  return `the API server answered ${status}`;
}

export async function getJson<T>(kube: KubeAccess, target: KubeTarget, path: string): Promise<T> {
  const response = await kube.getRaw(target, path);
  if (response.status !== 200) {
    throw new KubeApiError(statusMessage(response.body, response.status), response.status);
  }
  return JSON.parse(response.body) as T;
}
