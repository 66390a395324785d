// CertificateStore and CaBundleTargets over @kubernetes/client-node (loaded by the caller, on
// demand).
import type * as K8s from '@kubernetes/client-node';
import { PART_OF_LABEL, PART_OF_VALUE } from '../../manifests/constants';
import type { CaBundleTarget, CertificateStore } from './managed-certificate';

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** Reads an object, or undefined when it does not exist. */
async function readOptional<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

export function kubeCertificateStore(k8s: typeof K8s, config: K8s.KubeConfig): CertificateStore {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const secret = (namespace: string, name: string, data: Record<string, string>): K8s.V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace, labels: { [PART_OF_LABEL]: PART_OF_VALUE } },
    data,
  });
  return {
    async readSecret(namespace, name) {
      const found = await readOptional(() => core.readNamespacedSecret({ name, namespace }));
      return found === undefined ? undefined : (found.data ?? {});
    },
    async createSecret(namespace, name, data) {
      try {
        await core.createNamespacedSecret({ namespace, body: secret(namespace, name, data) });
        return true;
      } catch (error) {
        if (statusOf(error) === 409) return false;
        throw error;
      }
    },
    async replaceSecret(namespace, name, data) {
      await core.replaceNamespacedSecret({ name, namespace, body: secret(namespace, name, data) });
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
  return {
    description: `MutatingWebhookConfiguration ${name}`,
    async publish(caBundle) {
      const found = await readOptional(() => admission.readMutatingWebhookConfiguration({ name }));
      if (found === undefined) return false;
      const operations: PatchOperation[] = (found.webhooks ?? []).flatMap((webhook, index) =>
        webhook.clientConfig.caBundle === caBundle
          ? []
          : [{ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle }],
      );
      if (operations.length === 0) return true;
      await admission.patchMutatingWebhookConfiguration({ name, body: operations }, jsonPatch(k8s));
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
  return {
    description: `APIService ${name}`,
    async publish(caBundle) {
      const found = await readOptional(() => registration.readAPIService({ name }));
      if (found === undefined) return false;
      if (found.spec?.caBundle === caBundle) return true;
      const operations: PatchOperation[] = [{ op: 'add', path: '/spec/caBundle', value: caBundle }];
      await registration.patchAPIService({ name, body: operations }, jsonPatch(k8s));
      return true;
    },
  };
}
