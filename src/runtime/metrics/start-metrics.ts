// The metrics role's work, loaded only when the role starts: a serving certificate trusted
// through the APIService, the front-proxy settings from the API server, then the API itself.
import { UsageError } from '../../errors';
import {
  EXTENSION_API_AUTH_CONFIG_MAP,
  EXTENSION_API_AUTH_NAMESPACE,
  METRICS_API_SERVICE_NAME,
  METRICS_SERVICE_NAME,
  METRICS_TLS_SECRET_NAME,
} from '../../manifests/constants';
import { parsePrometheusAddress } from '../../manifests/traffic-metrics/prometheus-address';
import { apiServiceCaBundleTarget, kubeCertificateStore } from '../pki/kube-tls-api';
import { ensureServingCertificate, keepCaBundle } from '../pki/managed-certificate';
import type { ServingCertificate } from '../pki/serving-certificate';
import { parseBindAddress } from '../role/bind-address';
import type { Logger } from '../role/log';
import type { RoleContext, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import type { AccessReviewer } from './access-review';
import { kubeAccessReviewer } from './access-review';
import type { RequestHeaderConfig } from './front-proxy';
import { parseRequestHeaderConfig } from './front-proxy';
import { startMetricsServer } from './metrics-server';
import type { MetricsServer } from './metrics-server';
import type { PrometheusClient } from './prometheus-client';
import { createPrometheusClient } from './prometheus-client';
import { answerTrafficRequest } from './traffic-api';

/** How often the APIService's CA bundle is checked (it may be created or edited later). */
const CA_BUNDLE_SYNC_MS = 30_000;
/** How long one Prometheus query may take. */
const PROMETHEUS_TIMEOUT_MS = 10_000;

export interface MetricsApiParts {
  readonly host: string;
  readonly port: number;
  readonly certificate: Pick<ServingCertificate, 'certificatePem' | 'privateKeyPem'>;
  readonly requestHeader: RequestHeaderConfig;
  readonly reviewer: AccessReviewer;
  readonly prometheus: PrometheusClient | undefined;
  readonly logger: Logger;
}

/** The API server alone, from its parts (the role gets them from the cluster). */
export function startMetricsApi(parts: MetricsApiParts): Promise<MetricsServer> {
  const deps = {
    prometheus: parts.prometheus,
    requestHeader: parts.requestHeader,
    reviewer: parts.reviewer,
    now: () => new Date(),
    logger: parts.logger,
  };
  return startMetricsServer({
    host: parts.host,
    port: parts.port,
    certificatePem: parts.certificate.certificatePem,
    privateKeyPem: parts.certificate.privateKeyPem,
    clientCaPem: parts.requestHeader.clientCaPem,
    handle: (request) => answerTrafficRequest(request, deps),
    logger: parts.logger,
  });
}

function prometheusFrom(text: string, logger: Logger): PrometheusClient | undefined {
  const address = parsePrometheusAddress(text);
  switch (address.kind) {
    case 'invalid':
      throw new UsageError(address.message, 'nginx-meshctl run');
    case 'unset':
      logger.warn('no --prometheus-address: Traffic Metrics queries will be answered 503');
      return undefined;
    case 'url':
      return createPrometheusClient(address.url, PROMETHEUS_TIMEOUT_MS);
  }
}

export async function startMetrics({ logger, options }: RoleContext): Promise<RunningRole> {
  const bind = parseBindAddress(options.string('api-bind-address'));
  if (bind === undefined) {
    throw new UsageError(
      'invalid --api-bind-address: expected host:port or :port',
      'nginx-meshctl run',
    );
  }
  const prometheus = prometheusFrom(options.string('prometheus-address'), logger);
  const namespace = options.string('mesh-namespace');
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const target = apiServiceCaBundleTarget(k8s, config, METRICS_API_SERVICE_NAME);
  const certificate = await ensureServingCertificate(
    { namespace, secretName: METRICS_TLS_SECRET_NAME, serviceName: METRICS_SERVICE_NAME },
    { store: kubeCertificateStore(k8s, config), target },
    new Date(),
    logger,
  );
  const authentication = await config.makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({
    name: EXTENSION_API_AUTH_CONFIG_MAP,
    namespace: EXTENSION_API_AUTH_NAMESPACE,
  });
  const server = await startMetricsApi({
    host: bind.host,
    port: bind.port,
    certificate,
    requestHeader: parseRequestHeaderConfig(authentication.data ?? {}),
    reviewer: kubeAccessReviewer(k8s, config, () => Date.now()),
    prometheus,
    logger,
  });
  logger.info('traffic metrics API listening', {
    port: server.port,
    prometheus: prometheus?.address ?? '',
  });
  const stopCaSync = keepCaBundle(target, certificate, CA_BUNDLE_SYNC_MS, logger);
  return runningUntilStopped(async () => {
    stopCaSync();
    await server.close();
  });
}
