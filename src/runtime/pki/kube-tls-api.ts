// CertificateStore and CaBundleTargets over @kubernetes/client-node (loaded by the caller, on
// demand).
import type * as K8s from '@kubernetes/client-node';
import { MeshctlError } from '../../errors';
import type { OwnerSource } from '../kube/owner';
import { ownedMetadata } from '../kube/owner';
import type { CaBundleTarget, CertificateStore, SecretWrite } from './managed-certificate';

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message of a failed request, on one line. */
function reasonOf(error: unknown): string {
  const status = statusOf(error);
  const body = (error as { body?: unknown }).body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as unknown;
    } catch {
      parsed = { message: body };
    }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  if (status !== undefined && typeof message === 'string' && message !== '') {
    return `${status} ${message}`;
  }
  if (status !== undefined) {
    // Some answers (401) carry no body; the client names the status in its own message.
    const named = /\nMessage: (.+)\n/.exec(error instanceof Error ? error.message : '')?.[1];
    return named === undefined || named.startsWith('Unknown')
      ? `HTTP ${status}`
      : `${status} ${named}`;
  }
  return withCauses(error);
}

/** "fetch failed: connect ECONNREFUSED 10.0.0.1:443": a network error with what caused it. */
function withCauses(error: unknown): string {
  const parts: string[] = [];
  for (
    let current = error, depth = 0;
    current !== undefined && current !== null && depth < 4;
    depth += 1
  ) {
    const { message, code, cause } = current as {
      message?: unknown;
      code?: unknown;
      cause?: unknown;
    };
    const text = typeof message === 'string' && message !== '' ? message : code;
    if (typeof text === 'string' && text !== '' && !parts.includes(text)) parts.push(text);
    current = cause;
  }
  const line = parts.length === 0 ? String(error) : parts.join(': ');
  return line.split('\n')[0] ?? '';
}

/** Runs one request; a failure becomes an error naming what was being done. */
async function request<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new MeshctlError(`${what}: ${reasonOf(error)}`, { cause: error });
  }
}

/** Reads an object, or undefined when it does not exist. */
async function readOptional<T>(what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw new MeshctlError(`${what}: ${reasonOf(error)}`, { cause: error });
  }
}

/** Runs a write; 409 (AlreadyExists on create, Conflict on update) and 404 are 'conflict'. */
async function write(what: string, run: () => Promise<unknown>): Promise<SecretWrite> {
  try {
    await run();
    return 'written';
  } catch (error) {
    const status = statusOf(error);
    if (status === 409 || status === 404) return 'conflict';
    throw new MeshctlError(`${what}: ${reasonOf(error)}`, { cause: error });
  }
}

/**
 * Secrets through the API server; every write names the version it replaces, and makes owner (the
 * role's ClusterRole) the Secret's only owner, so that one written by an older version is adopted.
 */
export function kubeCertificateStore(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  owner: OwnerSource,
): CertificateStore {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const secret = async (
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    resourceVersion?: string,
  ): Promise<K8s.V1Secret> => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: await ownedMetadata(name, namespace, owner, resourceVersion),
    data: { ...data },
  });
  return {
    async readSecret(namespace, name) {
      const found = await readOptional(`reading Secret ${namespace}/${name}`, () =>
        core.readNamespacedSecret({ name, namespace }),
      );
      if (found === undefined) return undefined;
      return { data: found.data ?? {}, resourceVersion: found.metadata?.resourceVersion ?? '' };
    },
    async createSecret(namespace, name, data) {
      const body = await secret(namespace, name, data);
      return write(`creating Secret ${namespace}/${name}`, () =>
        core.createNamespacedSecret({ namespace, body }),
      );
    },
    // A replace that names a resourceVersion is refused (409) once the Secret has changed.
    async updateSecret(namespace, name, data, resourceVersion) {
      const body = await secret(namespace, name, data, resourceVersion);
      return write(`updating Secret ${namespace}/${name}`, () =>
        core.replaceNamespacedSecret({ name, namespace, body }),
      );
    },
  };
}

type PatchOperation = { op: 'add'; path: string; value: string };

const jsonPatch = (k8s: typeof K8s): K8s.ConfigurationOptions =>
  k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

/** Every webhook of a MutatingWebhookConfiguration trusts the CA. */
export function webhookCaBundleTarget(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  name: string,
): CaBundleTarget {
  const admission = config.makeApiClient(k8s.AdmissionregistrationV1Api);
  const description = `MutatingWebhookConfiguration ${name}`;
  return {
    description,
    async publish(caBundle) {
      const found = await readOptional(`reading ${description}`, () =>
        admission.readMutatingWebhookConfiguration({ name }),
      );
      if (found === undefined) return false;
      const operations: PatchOperation[] = (found.webhooks ?? []).flatMap((webhook, index) =>
        webhook.clientConfig.caBundle === caBundle
          ? []
          : [{ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle }],
      );
      if (operations.length === 0) return true;
      await request(`patching the caBundle of ${description}`, () =>
        admission.patchMutatingWebhookConfiguration({ name, body: operations }, jsonPatch(k8s)),
      );
      return true;
    },
  };
}

/** The APIService trusts the CA (spec.caBundle). */
export function apiServiceCaBundleTarget(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  name: string,
): CaBundleTarget {
  const registration = config.makeApiClient(k8s.ApiregistrationV1Api);
  const description = `APIService ${name}`;
  return {
    description,
    async publish(caBundle) {
      const found = await readOptional(`reading ${description}`, () =>
        registration.readAPIService({ name }),
      );
      if (found === undefined) return false;
      if (found.spec?.caBundle === caBundle) return true;
      const operations: PatchOperation[] = [{ op: 'add', path: '/spec/caBundle', value: caBundle }];
      await request(`patching the caBundle of ${description}`, () =>
        registration.patchAPIService({ name, body: operations }, jsonPatch(k8s)),
      );
      return true;
    },
  };
}
