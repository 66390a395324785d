// Helpers for cluster-tier tests: a client for the shared test cluster and bounded waits.
import type { KubeRest } from '../harness/kube-rest';
import { createKubeRest, KubeRestError } from '../harness/kube-rest';

export function testKubeconfig(): string {
  const path = process.env.NMK_TEST_KUBECONFIG;
  if (path === undefined)
    throw new Error('NMK_TEST_KUBECONFIG is not set: the cluster tier global setup did not run');
  return path;
}

export function testKubectl(): string {
  return process.env.NMK_TEST_KUBECTL ?? 'kubectl';
}

export function testRest(): Promise<KubeRest> {
  return createKubeRest(testKubeconfig());
}

/** Polls until check returns a value (not undefined) or the time is up. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs}ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
  );
}

/** Creates a namespace and waits for its default ServiceAccount (pods need it). */
export async function createNamespace(rest: KubeRest, name: string): Promise<void> {
  await rest.request('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  });
  await waitFor(`default ServiceAccount in ${name}`, async () => {
    try {
      await rest.request('GET', `/api/v1/namespaces/${name}/serviceaccounts/default`);
      return true;
    } catch (error) {
      if (error instanceof KubeRestError && error.status === 404) return undefined;
      throw error;
    }
  });
}

export async function deleteNamespace(rest: KubeRest, name: string): Promise<void> {
  try {
    await rest.request('DELETE', `/api/v1/namespaces/${name}`);
  } catch (error) {
    if (!(error instanceof KubeRestError && error.status === 404)) throw error;
  }
}

export interface PodSummary {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; state?: Record<string, unknown> }[];
  };
}

export async function listPods(
  rest: KubeRest,
  namespace: string,
  selector?: string,
): Promise<PodSummary[]> {
  const query = selector === undefined ? '' : `?labelSelector=${encodeURIComponent(selector)}`;
  const list = await rest.request<{ items: PodSummary[] }>(
    'GET',
    `/api/v1/namespaces/${namespace}/pods${query}`,
  );
  return list.items;
}

export function isReady(pod: PodSummary): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/**
 * A test file's namespace: created (with its default ServiceAccount) before the file's tests and
 * deleted after them. Returns the file's client, valid from the first beforeAll on.
 */
export function useTestNamespace(namespace: string): () => KubeRest {
  let rest: KubeRest | undefined;
  beforeAll(async () => {
    rest = await testRest();
    await createNamespace(rest, namespace);
  });
  afterAll(async () => {
    if (rest === undefined) return;
    await deleteNamespace(rest, namespace);
    rest.close();
  });
  return () => {
    if (rest === undefined)
      throw new Error('useTestNamespace: the client is used before beforeAll ran');
    return rest;
  };
}

/**
 * Waits until no mesh is left on the cluster from an earlier test file: no CRD and no webhook
 * configuration labelled part of the mesh (cluster-scoped, so one mesh at a time).
 */
export async function waitForNoMesh(rest: KubeRest, timeoutMs = 120_000): Promise<void> {
  const selector = encodeURIComponent('app.kubernetes.io/part-of=nginx-service-mesh');
  const left = async (): Promise<string[]> => {
    const names = async (path: string): Promise<string[]> =>
      (
        await rest.request<{ items: { metadata: { name: string } }[] }>(
          'GET',
          `${path}?labelSelector=${selector}`,
        )
      ).items.map((item) => item.metadata.name);
    return [
      ...(await names('/apis/apiextensions.k8s.io/v1/customresourcedefinitions')).map(
        (name) => `crd/${name}`,
      ),
      ...(await names('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).map(
        (name) => `mutatingwebhookconfiguration/${name}`,
      ),
    ];
  };
  try {
    await waitFor(
      'no mesh CRD or webhook configuration left on the cluster',
      async () => ((await left()).length === 0 ? true : undefined),
      timeoutMs,
      1_000,
    );
  } catch (error) {
    // Say what an earlier file left behind, so the failure points at it.
    const names = await left().catch(() => []);
    throw new Error(`${(error as Error).message}; still there: ${names.join(', ')}`);
  }
}
