// The controller's work, loaded only when the controller role starts.
import { UsageError } from '../../errors';
import { reviewPodAdmission } from '../../manifests/admission';
import {
  CONTROLLER_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_SERVICE_NAME,
  WEBHOOK_TLS_SECRET_NAME,
} from '../../manifests/constants';
import { injectPodTemplate } from '../../manifests/inject/inject-pod';
import type { ImagePullPolicy, InjectionSettings, MtlsMode } from '../../manifests/inject/types';
import { parseBindAddress } from '../role/bind-address';
import type { RoleContext, RoleOptions, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { kubeCertificateStore, webhookCaBundleTarget } from '../pki/kube-tls-api';
import { ensureServingCertificate, keepCaBundle } from '../pki/managed-certificate';
import { startVersionServer } from './version-server';
import { startWebhookServer } from './webhook-server';
import { natsUrlOf, registrarUrlOf } from '../svid/identity';

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29. */
const NATIVE_SIDECAR_MINOR = 29;
/** How often the webhook configuration's CA bundle is checked (it may be created or edited later). */
const CA_BUNDLE_SYNC_MS = 30_000;

function requiredImage(options: RoleOptions, flag: string): string {
  const image = options.string(flag);
  if (image === '') throw new UsageError(`the controller needs --${flag}`, 'nginx-meshctl run');
  return image;
}

function injectionSettings(options: RoleOptions, native: boolean): InjectionSettings {
  const key = options.string('registry-key-name');
  const meshNamespace = options.string('mesh-namespace');
  return {
    meshNamespace,
    sidecarImage: requiredImage(options, 'sidecar-image'),
    initImage: requiredImage(options, 'init-image'),
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

export async function startController({
  logger,
  options,
  version: ownVersion,
}: RoleContext): Promise<RunningRole> {
  const bind = bindAddress(options, 'webhook-bind-address');
  const versionBind = bindAddress(options, 'version-bind-address');
  const namespace = options.string('mesh-namespace');
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const version = await config.makeApiClient(k8s.VersionApi).getCode();
  const settings = injectionSettings(
    options,
    nativeFromVersion(options.string('sidecar-layout'), version.minor),
  );
  logger.info('injection settings', {
    kubernetes: version.gitVersion,
    nativeSidecar: settings.nativeSidecar,
  });
  const target = webhookCaBundleTarget(k8s, config, WEBHOOK_CONFIGURATION_NAME);
  const certificate = await ensureServingCertificate(
    { namespace, secretName: WEBHOOK_TLS_SECRET_NAME, serviceName: WEBHOOK_SERVICE_NAME },
    { store: kubeCertificateStore(k8s, config), target },
    new Date(),
    logger,
  );
  const server = await startWebhookServer({
    host: bind.host,
    port: bind.port,
    path: WEBHOOK_PATH,
    certificatePem: certificate.certificatePem,
    privateKeyPem: certificate.privateKeyPem,
    decide: (body) => reviewPodAdmission(body, settings, injectPodTemplate),
    logger,
  });
  logger.info('injection webhook listening', { port: server.port, path: WEBHOOK_PATH });
  const stopCaSync = keepCaBundle(target, certificate, CA_BUNDLE_SYNC_MS, logger);
  const versions = await startVersionServer({
    host: versionBind.host,
    port: versionBind.port,
    versions: () => ({ [CONTROLLER_NAME]: [ownVersion] }),
  });
  return runningUntilStopped(async () => {
    stopCaSync();
    await Promise.all([server.close(), versions.close()]);
  });
}
