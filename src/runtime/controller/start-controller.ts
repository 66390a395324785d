// The controller's work, loaded only when the controller role starts.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describeError, UsageError } from '../../errors';
import { reviewPodAdmission } from '../../manifests/admission';
import {
  CONTROLLER_NAME,
  NATS_SERVICE_ACCOUNT_NAME,
  SIDECAR_CONTAINER_NAME,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_SERVICE_NAME,
  WEBHOOK_TLS_SECRET_NAME,
} from '../../manifests/constants';
import { injectPodTemplate } from '../../manifests/inject/inject-pod';
import type { ImagePullPolicy, InjectionSettings, MtlsMode } from '../../manifests/inject/types';
import { spiffeIdOf, trustDomainOf } from '../../manifests/registrar/svid-policy';
import type { BusLink } from '../bus/connect';
import { startBusLink } from '../bus/connect';
import { systemClock } from '../clock';
import { createKubeAccess } from '../kube/access';
import { kubeClusterRoleOwner } from '../kube/owner';
import { parseBindAddress } from '../role/bind-address';
import type { Logger } from '../role/log';
import type { Readiness, RoleContext, RoleOptions, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { kubeCertificateStore, webhookCaBundleTarget } from '../pki/kube-tls-api';
import { startServingCertificate } from '../pki/managed-certificate';
import { kubeReportTokenStore, startReportToken } from './report-token';
import { startVersionServer } from './version-server';
import { startManagedWebhook } from './webhook-server';
import { natsUrlOf, registrarUrlOf, startIdentity, svidReadiness } from '../svid/identity';
import type { MeshPublisher } from './mesh-publisher';
import { startMeshPublisher } from './mesh-publisher';

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29. */
const NATIVE_SIDECAR_MINOR = 29;
/** Requests of the controller's Kubernetes client; watches have their own, longer bounds. */
const KUBE_TIMEOUT_MS = 30_000;
/** Backoff while the Kubernetes API cannot be reached for the webhook's start and certificate. */
const KUBE_RETRY_INITIAL_MS = 1_000;
const KUBE_RETRY_MAX_MS = 60_000;

function requiredString(options: RoleOptions, flag: string): string {
  const value = options.string(flag);
  if (value === '') throw new UsageError(`the controller needs --${flag}`, 'nginx-meshctl run');
  return value;
}

function injectionSettings(options: RoleOptions, native: boolean): InjectionSettings {
  const key = options.string('registry-key-name');
  const meshNamespace = options.string('mesh-namespace');
  return {
    meshNamespace,
    sidecarImage: requiredString(options, 'sidecar-image'),
    initImage: requiredString(options, 'init-image'),
    imagePullPolicy: options.string('image-pull-policy') as ImagePullPolicy,
    mtlsMode: options.string('mtls-mode') as MtlsMode,
    enableUdp: options.bool('enable-udp'),
    registryKeyName: key === '' ? undefined : key,
    nativeSidecar: native,
    // Addresses, not DNS names: pods outside the mesh namespace see no variables for them.
    natsUrl: natsUrlOf(options.string('nats-url'), process.env, meshNamespace),
    registrarUrl: registrarUrlOf(options.string('registrar-url'), process.env, meshNamespace),
  };
}

function nativeFromVersion(layout: string, minor: string): boolean {
  if (layout !== 'auto') return layout === 'native';
  return Number.parseInt(minor, 10) >= NATIVE_SIDECAR_MINOR;
}

function bindAddress(options: RoleOptions, flag: string): { host: string; port: number } {
  const bind = parseBindAddress(options.string(flag));
  if (bind === undefined) {
    throw new UsageError(`invalid --${flag}: expected host:port or :port`, 'nginx-meshctl run');
  }
  return bind;
}

/**
 * In the background: the SVID, then NATS and the cache, leader election and publishing. The
 * webhook does not wait for any of it. Each dependency is retried until it answers (the SVID
 * client and the bus link on their own), and readiness says which one the controller waits for.
 */
function startMeshConfiguration(
  options: RoleOptions,
  settings: {
    readonly logger: Logger;
    readonly version: string;
    /** What gateway pods run: the sidecar image, NATS's and the registrar's addresses. */
    readonly gatewaySettings: InjectionSettings;
  },
): {
  publisher(): MeshPublisher | undefined;
  readiness(): Readiness;
  liveness(): Readiness;
  stop(): Promise<void>;
} {
  const { logger } = settings;
  const meshNamespace = options.string('mesh-namespace');
  const svidDir = options.string('svid-dir');
  const identity = startIdentity(options, { meshNamespace, outputDir: svidDir, logger });
  let stopped = false;
  let link: BusLink | undefined;
  let publisher: MeshPublisher | undefined;
  let failed: string | undefined;
  const started = (async () => {
    const svid = await identity.ready;
    if (stopped) return;
    const kube = await createKubeAccess(process.env).connect({
      kubeconfig: process.env.KUBECONFIG ?? '',
      timeoutMs: KUBE_TIMEOUT_MS,
    });
    if (stopped) return;
    link = startBusLink({
      servers: [natsUrlOf(options.string('nats-url'), process.env, meshNamespace)],
      name: CONTROLLER_NAME,
      svidFile: join(svidDir, SVID_FILE_NAME),
      bundleFile: join(svidDir, SVID_BUNDLE_FILE_NAME),
      expectedServerId: spiffeIdOf(
        trustDomainOf(svid.spiffeId),
        meshNamespace,
        NATS_SERVICE_ACCOUNT_NAME,
      ),
      logger,
      // A new connection needs a new bus at once, not at the next tick.
      onConnection: () => publisher?.poke(),
    });
    publisher = startMeshPublisher({
      connection: kube,
      nats: link,
      meshNamespace,
      identity: options.string('pod-name') || process.env.MY_POD_NAME || hostname(),
      version: settings.version,
      clock: systemClock,
      random: Math.random,
      logger,
      gatewaySettings: settings.gatewaySettings,
    });
  })().catch((error: unknown) => {
    // Only configuration errors get here (a kubeconfig that cannot be read): not retried.
    failed = describeError(error);
    if (!stopped) logger.error('cannot publish the mesh configuration', { error: failed });
  });
  return {
    publisher: () => publisher,
    readiness(): Readiness {
      if (failed !== undefined) return { ready: false, reason: failed };
      if (publisher === undefined) {
        const svid = svidReadiness(identity);
        return svid.ready ? { ready: false, reason: 'starting to publish' } : svid;
      }
      return publisher.readiness();
    },
    liveness: () => publisher?.liveness() ?? { ready: true },
    async stop() {
      stopped = true;
      await identity.stop();
      await started;
      await publisher?.stop();
      await link?.close();
    },
  };
}

export async function startController({
  logger,
  options,
  version: ownVersion,
}: RoleContext): Promise<RunningRole> {
  const bind = bindAddress(options, 'webhook-bind-address');
  const versionBind = bindAddress(options, 'version-bind-address');
  const namespace = options.string('mesh-namespace');
  const layout = options.string('sidecar-layout');
  // Checks the flags now; whether sidecars are native waits for the API server's version.
  const flagSettings = injectionSettings(options, layout === 'native');
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const retry = {
    clock: systemClock,
    random: Math.random,
    initialBackoffMs: KUBE_RETRY_INITIAL_MS,
    maxBackoffMs: KUBE_RETRY_MAX_MS,
  };
  // Read before the first write and retried with it, by the loop that writes.
  const owner = kubeClusterRoleOwner(k8s, config, requiredString(options, 'cluster-role'));
  const certificate = startServingCertificate(
    {
      namespace,
      secretName: WEBHOOK_TLS_SECRET_NAME,
      serviceName: WEBHOOK_SERVICE_NAME,
      ...retry,
    },
    {
      store: kubeCertificateStore(k8s, config, owner),
      target: webhookCaBundleTarget(k8s, config, WEBHOOK_CONFIGURATION_NAME),
      clock: systemClock,
      random: Math.random,
      logger,
    },
  );
  const webhook = startManagedWebhook({
    host: bind.host,
    port: bind.port,
    path: WEBHOOK_PATH,
    prepare: async () => {
      const version = await config.makeApiClient(k8s.VersionApi).getCode();
      const settings = { ...flagSettings, nativeSidecar: nativeFromVersion(layout, version.minor) };
      logger.info('injection settings', {
        kubernetes: version.gitVersion,
        nativeSidecar: settings.nativeSidecar,
      });
      return (body) => reviewPodAdmission(body, settings, injectPodTemplate);
    },
    certificate,
    ...retry,
    logger,
  });
  const mesh = startMeshConfiguration(options, {
    logger,
    version: ownVersion,
    gatewaySettings: flagSettings,
  });
  const reportToken = startReportToken({
    store: kubeReportTokenStore(k8s, config, namespace, owner),
    ...retry,
    logger,
  });
  const versions = await startVersionServer({
    host: versionBind.host,
    port: versionBind.port,
    versions: () => {
      const sidecars = mesh.publisher()?.sidecarVersions() ?? [];
      return {
        [CONTROLLER_NAME]: [ownVersion],
        ...(sidecars.length === 0 ? {} : { [SIDECAR_CONTAINER_NAME]: sidecars }),
      };
    },
    sidecars: () => mesh.publisher()?.report(),
    reportToken: () => reportToken.current(),
  });
  /** The webhook's share of readiness: listening, with a certificate not expiring unrenewed. */
  const servingReadiness = (): Readiness => webhook.readiness();
  const running = runningUntilStopped(
    async () => {
      await Promise.all([webhook.stop(), versions.close(), reportToken.loop.stop()]);
      await mesh.stop();
    },
    () => {
      const serving = servingReadiness();
      return serving.ready ? mesh.readiness() : serving;
    },
    () => mesh.liveness(),
    // The readiness probe: the webhook serves while publishing waits for NATS or the Lease.
    servingReadiness,
  );
  // A webhook that cannot listen ends the role.
  return { ...running, done: Promise.race([running.done, webhook.failed]) };
}
