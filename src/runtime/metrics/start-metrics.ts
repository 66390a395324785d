// The metrics role's work, loaded only when the role starts: a serving certificate trusted
// through the APIService, the front-proxy settings from the API server, then the API itself.
// The role starts at once and waits for the Kubernetes API in the background, retrying with
// backoff and saying so in its readiness; Prometheus is asked only per request.
import { UsageError } from '../../errors';
import {
  EXTENSION_API_AUTH_CONFIG_MAP,
  EXTENSION_API_AUTH_NAMESPACE,
  METRICS_API_SERVICE_NAME,
  METRICS_SERVICE_NAME,
  METRICS_TLS_SECRET_NAME,
} from '../../manifests/constants';
import { parsePrometheusAddress } from '../../manifests/traffic-metrics/prometheus-address';
import { systemClock } from '../clock';
import { kubeClusterRoleOwner } from '../kube/owner';
import { apiServiceCaBundleTarget, kubeCertificateStore } from '../pki/kube-tls-api';
import { startServingCertificate } from '../pki/managed-certificate';
import type { ServingCertificate } from '../pki/serving-certificate';
import { parseBindAddress } from '../role/bind-address';
import type { Logger } from '../role/log';
import type { Readiness, RoleContext, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import type { AccessReviewer } from './access-review';
import { kubeAccessReviewer } from './access-review';
import type { RequestHeaderConfig } from './front-proxy';
import { startMetricsServer } from './metrics-server';
import type { MetricsServer, TlsMetricsServer } from './metrics-server';
import type { PrometheusClient } from './prometheus-client';
import { createPrometheusClient } from './prometheus-client';
import { startRequestHeaderSource } from './request-header-source';
import { answerTrafficRequest } from './traffic-api';

/** How long one Prometheus query may take. */
const PROMETHEUS_TIMEOUT_MS = 10_000;

export interface MetricsApiParts {
  readonly host: string;
  readonly port: number;
  readonly certificate: Pick<ServingCertificate, 'certificatePem' | 'privateKeyPem'>;
  readonly requestHeader: RequestHeaderConfig;
  readonly reviewer: AccessReviewer;
  readonly prometheus: PrometheusClient | undefined;
  /** Told when a client certificate fails verification (the front proxy's CA may be new). */
  readonly onUnverifiedClient?: () => void;
  readonly logger: Logger;
}

type ServingPair = Pick<ServingCertificate, 'certificatePem' | 'privateKeyPem'>;

export interface MetricsApi extends MetricsServer {
  /** Serves new connections with this certificate. */
  setCertificate(certificate: ServingPair): void;
  /** Checks new connections and requests against these requestheader settings. */
  setRequestHeader(config: RequestHeaderConfig): void;
}

/** The API server alone, from its parts (the role gets them from the cluster). */
export async function startMetricsApi(parts: MetricsApiParts): Promise<MetricsApi> {
  let certificate: ServingPair = parts.certificate;
  let requestHeader = parts.requestHeader;
  const deps = {
    prometheus: parts.prometheus,
    get requestHeader() {
      return requestHeader;
    },
    reviewer: parts.reviewer,
    now: () => new Date(),
    logger: parts.logger,
  };
  const server: TlsMetricsServer = await startMetricsServer({
    host: parts.host,
    port: parts.port,
    certificatePem: certificate.certificatePem,
    privateKeyPem: certificate.privateKeyPem,
    clientCaPem: requestHeader.clientCaPem,
    handle: (request) => answerTrafficRequest(request, deps),
    ...(parts.onUnverifiedClient === undefined
      ? {}
      : { onUnverifiedClient: parts.onUnverifiedClient }),
    logger: parts.logger,
  });
  const applyTls = (): void =>
    server.setTls({
      certificatePem: certificate.certificatePem,
      privateKeyPem: certificate.privateKeyPem,
      clientCaPem: requestHeader.clientCaPem,
    });
  return {
    port: server.port,
    close: () => server.close(),
    setCertificate(next) {
      certificate = next;
      applyTls();
    },
    setRequestHeader(next) {
      requestHeader = next;
      applyTls();
    },
  };
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

/** Backoff while the Kubernetes API cannot be reached. */
const RETRY_INITIAL_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/** The first of these that is not ready, else ready. */
function firstUnready(...states: Readiness[]): Readiness {
  return states.find((state) => !state.ready) ?? { ready: true };
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
  const clusterRole = options.string('cluster-role');
  if (clusterRole === '') {
    throw new UsageError('the metrics API needs --cluster-role', 'nginx-meshctl run');
  }
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const retry = {
    clock: systemClock,
    random: Math.random,
    initialBackoffMs: RETRY_INITIAL_MS,
    maxBackoffMs: RETRY_MAX_MS,
  };
  const certificates = startServingCertificate(
    { namespace, secretName: METRICS_TLS_SECRET_NAME, serviceName: METRICS_SERVICE_NAME, ...retry },
    {
      // The owner is read before the first write, and retried with it by the certificate's loop.
      store: kubeCertificateStore(k8s, config, kubeClusterRoleOwner(k8s, config, clusterRole)),
      target: apiServiceCaBundleTarget(k8s, config, METRICS_API_SERVICE_NAME),
      clock: systemClock,
      random: Math.random,
      logger,
    },
  );
  const core = config.makeApiClient(k8s.CoreV1Api);
  const requestHeaders = startRequestHeaderSource({
    description: `ConfigMap ${EXTENSION_API_AUTH_NAMESPACE}/${EXTENSION_API_AUTH_CONFIG_MAP}`,
    read: async () => {
      const found = await core.readNamespacedConfigMap({
        name: EXTENSION_API_AUTH_CONFIG_MAP,
        namespace: EXTENSION_API_AUTH_NAMESPACE,
      });
      return found.data ?? {};
    },
    ...retry,
    logger,
  });
  let server: MetricsApi | undefined;
  let stopping = false;
  const serving = (async () => {
    const [certificate, requestHeader] = await Promise.all([
      certificates.first,
      requestHeaders.first,
    ]);
    if (stopping) return;
    const api = await startMetricsApi({
      host: bind.host,
      port: bind.port,
      certificate,
      requestHeader,
      reviewer: kubeAccessReviewer(k8s, config, () => Date.now()),
      prometheus,
      onUnverifiedClient: () => requestHeaders.refresh(),
      logger,
    });
    server = api;
    certificates.onRenewal((next) => api.setCertificate(next));
    requestHeaders.onChange((next) => api.setRequestHeader(next));
    logger.info('traffic metrics API listening', {
      port: api.port,
      prometheus: prometheus?.address ?? '',
    });
  })();
  const readiness = (): Readiness =>
    server === undefined
      ? firstUnready(certificates.readiness(), requestHeaders.readiness(), {
          ready: false,
          reason: 'starting the Traffic Metrics API',
        })
      : certificates.readiness();
  const running = runningUntilStopped(async () => {
    stopping = true;
    await Promise.all([certificates.stop(), requestHeaders.stop()]);
    await serving.catch(() => undefined);
    await server?.close();
  }, readiness);
  // Only a server that cannot listen ends the role; a stop before the first certificate does not.
  const failed = serving.then(
    () => new Promise<never>(() => undefined),
    (error: unknown) => {
      if (stopping) return new Promise<never>(() => undefined);
      throw error;
    },
  );
  return { ...running, done: Promise.race([running.done, failed]) };
}
