// How an in-cluster role gets its X.509-SVID: the flags that say where the registrar, the
// projected token and the trust bundle are, and one call that keeps the SVID on disk. Shared by
// every role that needs one (cert-reloader, controller, agent), so their flags read the same.
import {
  NATS_CLIENT_PORT,
  NATS_NAME,
  REGISTRAR_API_PORT,
  REGISTRAR_NAME,
} from '../../manifests/constants';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import { systemClock } from '../clock';
import type { Logger } from '../role/log';
import type { Readiness, RoleOptions } from '../role/role';
import type { SvidClient, SvidStatus } from './svid-client';
import { startSvidClient } from './svid-client';

/**
 * A control-plane Service's URL as a pod sees it: the flag when given, else the Service's
 * address from the Docker-links variables Kubernetes sets (<NAME>_SERVICE_HOST/_PORT, present
 * for Services of the pod's namespace that existed when it started), else its DNS name.
 */
export function serviceUrlOf(
  target: { readonly scheme: string; readonly service: string; readonly port: number },
  flag: string,
  env: Readonly<Record<string, string | undefined>>,
  namespace: string,
): string {
  if (flag !== '') return flag;
  const prefix = target.service.toUpperCase().replace(/-/g, '_');
  const host = env[`${prefix}_SERVICE_HOST`] ?? '';
  const port = env[`${prefix}_SERVICE_PORT`] ?? String(target.port);
  if (host !== '') return `${target.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return `${target.scheme}://${target.service}.${namespace}.svc:${target.port}`;
}

/** The registrar's URL (created before every other component, so its variables are set). */
export function registrarUrlOf(
  flag: string,
  env: Readonly<Record<string, string | undefined>>,
  namespace: string,
): string {
  return serviceUrlOf(
    { scheme: 'https', service: REGISTRAR_NAME, port: REGISTRAR_API_PORT },
    flag,
    env,
    namespace,
  );
}

/** NATS's URL; `tls://` because every connection to it is TLS with an SVID. */
export function natsUrlOf(
  flag: string,
  env: Readonly<Record<string, string | undefined>>,
  namespace: string,
): string {
  return serviceUrlOf(
    { scheme: 'tls', service: NATS_NAME, port: NATS_CLIENT_PORT },
    flag,
    env,
    namespace,
  );
}

/**
 * Starts keeping this pod's SVID in outputDir (svid.pem: chain and key; bundle.crt), with the
 * identity flags; the registrar runs in meshNamespace.
 */
export function startIdentity(
  options: RoleOptions,
  settings: {
    readonly meshNamespace: string;
    readonly outputDir: string;
    readonly logger: Logger;
    readonly onWritten?: (status: SvidStatus) => void;
    /** Called with the trust bundle's path when its content changed (see SvidClientDeps). */
    readonly onBundleChanged?: (bundlePath: string) => void;
  },
): SvidClient {
  return startSvidClient(
    {
      tokenPath: options.string('token-path'),
      bundlePath: options.string('bundle-path'),
      registrarUrl: registrarUrlOf(
        options.string('registrar-url'),
        process.env,
        settings.meshNamespace,
      ),
      serverName: `${REGISTRAR_NAME}.${settings.meshNamespace}.svc`,
      outputDir: settings.outputDir,
      keyType: options.string('key-type') as MtlsCaKeyType,
    },
    {
      clock: systemClock,
      logger: settings.logger,
      random: Math.random,
      ...(settings.onWritten === undefined ? {} : { onWritten: settings.onWritten }),
      ...(settings.onBundleChanged === undefined
        ? {}
        : { onBundleChanged: settings.onBundleChanged }),
    },
  );
}

/**
 * Whether this workload has a valid SVID, for a role's readiness: false before the first
 * ("no SVID yet; registrar unreachable: …") and once it has expired ("SVID expired at <time>;
 * registrar unreachable: <error>"), with why the last renewal failed. A valid SVID whose renewal
 * fails is still ready: peers accept it until it expires, and the client retries meanwhile.
 */
export function svidReadiness(
  client: Pick<SvidClient, 'current' | 'lastError'>,
  now: Date = systemClock.now(),
): Readiness {
  const current = client.current();
  const failure = client.lastError() ?? 'waiting for the registrar';
  if (current === undefined) return { ready: false, reason: `no SVID yet; ${failure}` };
  if (now.getTime() < current.notAfter.getTime()) return { ready: true };
  return { ready: false, reason: `SVID expired at ${current.notAfter.toISOString()}; ${failure}` };
}
