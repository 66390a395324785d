// WebhookTlsApi over @kubernetes/client-node (loaded by the caller, on demand).
import type * as K8s from '@kubernetes/client-node';
import type { WebhookTlsApi } from './webhook-tls';

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export function kubeWebhookApi(k8s: typeof K8s, config: K8s.KubeConfig): WebhookTlsApi {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const admission = config.makeApiClient(k8s.AdmissionregistrationV1Api);
  const secret = (namespace: string, name: string, data: Record<string, string>): K8s.V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'nginx-service-mesh' } },
    data,
  });
  return {
    async readSecret(namespace, name) {
      try {
        return (await core.readNamespacedSecret({ name, namespace })).data ?? {};
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
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
    async setWebhookCaBundle(configurationName, caBundle) {
      let configuration: K8s.V1MutatingWebhookConfiguration;
      try {
        configuration = await admission.readMutatingWebhookConfiguration({
          name: configurationName,
        });
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
      const operations = (configuration.webhooks ?? []).flatMap((webhook, index) =>
        webhook.clientConfig.caBundle === caBundle
          ? []
          : [{ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle }],
      );
      if (operations.length === 0) return true;
      await admission.patchMutatingWebhookConfiguration(
        { name: configurationName, body: operations },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
      return true;
    },
  };
}
