// The registrar's work, loaded only when the registrar role starts: the flags become settings,
// the Kubernetes calls are wired in, and registrar-service.ts does the rest.
import { UsageError } from '../../errors';
import { REGISTRAR_CA_SECRET_NAME, TRUST_BUNDLE_CONFIG_MAP_NAME } from '../../manifests/constants';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import { checkTtls } from '../../manifests/registrar/svid-policy';
import { systemClock } from '../clock';
import { createKubeAccess } from '../kube/access';
import type { KubeObject } from '../kube/client';
import { kubeClusterRoleOwner } from '../kube/owner';
import { startWatch } from '../kube/watch';
import { parseBindAddress } from '../role/bind-address';
import type { RoleContext, RunningRole } from '../role/role';
import { loadUpstreamCa } from './authority';
import { kubeBundleApi, kubeCaStore, kubeWorkloadDirectory } from './kube-registrar-api';
import type { RegistrarSettings } from './registrar-service';
import { startRegistrarService } from './registrar-service';

/** Timeout of the API requests the namespace watch makes. */
const KUBE_TIMEOUT_MS = 30_000;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

const usage = (message: string): UsageError => new UsageError(message, 'nginx-meshctl run');

/** The registrar trusts pods by the images they run: it cannot start without knowing them. */
function requiredImage(options: RoleContext['options'], flag: string): string {
  const image = options.string(flag);
  if (image === '') throw usage(`the registrar needs --${flag}`);
  return image;
}

async function settingsOf(options: RoleContext['options']): Promise<RegistrarSettings> {
  const trustDomain = options.string('trust-domain');
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw usage(
      `invalid --trust-domain "${trustDomain}": expected lower-case letters, digits, ".", "-" and "_"`,
    );
  }
  const ttlMs = options.duration('ca-ttl');
  const svidTtlMs = options.duration('svid-ttl');
  const problem = checkTtls(ttlMs, svidTtlMs);
  if (problem !== undefined) throw usage(problem);
  const bind = parseBindAddress(options.string('api-bind-address'));
  if (bind === undefined) throw usage('invalid --api-bind-address: expected host:port or :port');
  const dir = options.string('upstream-ca-dir');
  return {
    namespace: options.string('mesh-namespace'),
    trustDomain,
    keyType: options.string('ca-key-type') as MtlsCaKeyType,
    ttlMs,
    svidTtlMs,
    upstream: dir === '' ? undefined : await loadUpstreamCa(dir),
    host: bind.host,
    port: bind.port,
    secretName: REGISTRAR_CA_SECRET_NAME,
    sidecarImage: requiredImage(options, 'sidecar-image'),
    controlPlaneImage: requiredImage(options, 'control-plane-image'),
  };
}

/**
 * Reads the flags and the upstream CA, then runs the registrar; nothing here waits for the API
 * server, so the probes report what the registrar waits for from the start.
 */
export async function startRegistrar({ logger, options }: RoleContext): Promise<RunningRole> {
  const settings = await settingsOf(options);
  const clock = systemClock;
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  // Loads the kubeconfig only: no request is made here.
  const kube = await createKubeAccess(process.env).connect({
    kubeconfig: process.env.KUBECONFIG ?? '',
    timeoutMs: KUBE_TIMEOUT_MS,
  });
  const clusterRole = options.string('cluster-role');
  if (clusterRole === '') throw usage('the registrar needs --cluster-role');
  // Read before the first write and retried with it: the round that writes reports the failure.
  const owner = kubeClusterRoleOwner(k8s, config, clusterRole);
  return startRegistrarService(settings, {
    store: kubeCaStore(k8s, config, settings.namespace, settings.secretName, owner),
    bundles: kubeBundleApi(k8s, config, TRUST_BUNDLE_CONFIG_MAP_NAME, clusterRole, owner),
    directory: kubeWorkloadDirectory(kube),
    clock,
    random: Math.random,
    logger,
    watchNamespaces: (onAdded) =>
      startWatch<KubeObject>(kube, {
        path: '/api/v1/namespaces',
        onUpdate: (update) => {
          if (update.type === 'ADDED' || update.type === 'SYNC') onAdded();
        },
        clock,
        random: Math.random,
        logger,
      }),
  });
}
