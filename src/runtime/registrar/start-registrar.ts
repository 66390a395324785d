// The registrar's work, loaded only when the registrar role starts: load or create the CA,
// serve the SVID API, and keep CA, serving certificate and published bundle current.
import { UsageError } from '../../errors';
import { REGISTRAR_CA_SECRET_NAME, TRUST_BUNDLE_CONFIG_MAP_NAME } from '../../manifests/constants';
import type { MtlsCaKeyType } from '../../manifests/mesh-config/deploy-flags';
import { checkTtls } from '../../manifests/registrar/svid-policy';
import { systemClock } from '../clock';
import { createKubeAccess } from '../kube/access';
import type { KubeObject } from '../kube/client';
import { startWatch } from '../kube/watch';
import { parseBindAddress } from '../role/bind-address';
import { renewalTime } from '../svid/schedule';
import type { Logger } from '../role/log';
import type { RoleContext, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { loadUpstreamCa } from './authority';
import type { AuthorityOptions } from './authority';
import { startApiServer } from './api-server';
import type { BundleApi } from './bundle-publisher';
import { publishBundle } from './bundle-publisher';
import type { CaState, CaStore } from './ca-state';
import { reconcileCa } from './ca-state';
import { createIssuer } from './issuer';
import { kubeBundleApi, kubeCaStore, kubeWorkloadDirectory } from './kube-registrar-api';
import type { ServingCertificate } from './serving';
import { issueServingCertificate } from './serving';

/**
 * How often every namespace's bundle ConfigMap is checked regardless of events: a new namespace
 * gets its copy as soon as the namespace watch reports it, this catches copies edited or deleted.
 */
const BUNDLE_SYNC_MS = 15_000;
/** Timeout of the API requests the namespace watch makes. */
const KUBE_TIMEOUT_MS = 30_000;
/** Wait after a failed reconcile before the next attempt. */
const RETRY_MS = 5_000;
/** Shortest wait between two reconciles, so that second-scale test TTLs do not spin. */
const MIN_WAIT_MS = 200;
/** Per-identity issuance limit: a rollout's burst, then a steady rate. */
const RATE_LIMIT = { perSecond: 20, burst: 200 };
const MAX_BUCKETS = 100_000;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

const usage = (message: string): UsageError => new UsageError(message, 'nginx-meshctl run');

interface Settings extends AuthorityOptions {
  readonly namespace: string;
  readonly svidTtlMs: number;
  readonly host: string;
  readonly port: number;
  readonly secretName: string;
}

async function settingsOf(options: RoleContext['options']): Promise<Settings> {
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
  };
}

/** When the serving certificate is half used, counted from its issue (notBefore is dated back). */
function servingHalfLife(serving: ServingCertificate): number {
  const { notBefore, notAfter, issuedAt } = serving;
  return renewalTime(notBefore.getTime(), notAfter.getTime(), issuedAt.getTime(), 0);
}

/** The state that changes while the registrar runs, and how to bring it up to date. */
class Keeper {
  state: CaState;
  serving: ServingCertificate;
  private published = '';
  private publishedAt = 0;
  /** A namespace appeared since the last publication: publish at once. */
  private stale = false;

  constructor(
    private readonly settings: Settings,
    private readonly deps: { store: CaStore; bundles: BundleApi; logger: Logger },
    initial: { state: CaState; serving: ServingCertificate },
  ) {
    this.state = initial.state;
    this.serving = initial.serving;
  }

  /** Marks the published copies as incomplete (a namespace was added); the next publish writes. */
  markStale(): void {
    this.stale = true;
  }

  /** Milliseconds until something is due. */
  wait(nowMs: number): number {
    if (this.stale) return MIN_WAIT_MS;
    const servingRenewal = servingHalfLife(this.serving);
    const due = Math.min(
      this.state.nextChangeMs,
      servingRenewal,
      this.publishedAt + BUNDLE_SYNC_MS,
    );
    return Math.max(MIN_WAIT_MS, due - nowMs);
  }

  /** Re-reads the CA; returns a new serving certificate when one is needed. */
  async refresh(now: Date): Promise<ServingCertificate | undefined> {
    const { settings, deps } = this;
    const previous = this.state;
    this.state = await reconcileCa(deps.store, settings, () => now, deps.logger);
    if (this.state.bundlePem !== previous.bundlePem) {
      deps.logger.info('trust bundle changed', { authorities: this.state.authorities.length });
    }
    const halfLife = servingHalfLife(this.serving);
    const rotated = this.state.active.stored.certificate !== previous.active.stored.certificate;
    if (!rotated && now.getTime() < halfLife) return undefined;
    this.serving = await issueServingCertificate(
      this.state,
      { ...settings, ttlMs: settings.svidTtlMs },
      now,
    );
    deps.logger.info('serving certificate renewed', {
      notAfter: this.serving.notAfter.toISOString(),
      rotated,
    });
    return this.serving;
  }

  async publish(nowMs: number): Promise<void> {
    if (
      !this.stale &&
      this.published === this.state.bundlePem &&
      nowMs < this.publishedAt + BUNDLE_SYNC_MS
    )
      return;
    this.stale = false;
    const result = await publishBundle(this.deps.bundles, this.state.bundlePem);
    for (const [namespace, reason] of result.failed) {
      this.deps.logger.warn('trust bundle not published', { namespace, reason });
    }
    if (result.written > 0)
      this.deps.logger.info('trust bundle published', { namespaces: result.written });
    if (result.failed.size === 0) this.published = this.state.bundlePem;
    this.publishedAt = nowMs;
  }
}

export async function startRegistrar({ logger, options }: RoleContext): Promise<RunningRole> {
  const settings = await settingsOf(options);
  const clock = systemClock;
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const store = kubeCaStore(k8s, config, settings.namespace, settings.secretName);
  const bundles = kubeBundleApi(k8s, config, TRUST_BUNDLE_CONFIG_MAP_NAME);
  const state = await reconcileCa(store, settings, () => clock.now(), logger);
  logger.info('CA loaded', {
    authorities: state.authorities.length,
    notAfter: state.active.fields.notAfter.toISOString(),
    upstream: settings.upstream !== undefined,
  });
  const serving = await issueServingCertificate(
    state,
    { ...settings, ttlMs: settings.svidTtlMs },
    clock.now(),
  );
  const keeper = new Keeper(settings, { store, bundles, logger }, { state, serving });
  const issuer = createIssuer(
    {
      ...settings,
      meshNamespace: settings.namespace,
      rateLimit: RATE_LIMIT,
      maxBuckets: MAX_BUCKETS,
    },
    {
      directory: kubeWorkloadDirectory(k8s, config),
      ca: () => keeper.state,
      now: () => clock.now(),
      logger,
    },
  );
  const server = await startApiServer({
    host: settings.host,
    port: settings.port,
    certificateChainPem: serving.chainPem,
    privateKeyPem: serving.keyPem,
    issuer,
    logger,
  });
  logger.info('SVID API listening', { port: server.port });
  const stop = new AbortController();
  let wake = new AbortController();
  // A new namespace gets its bundle copy now rather than at the next periodic sync: its first
  // pods mount the copy, and wait for it.
  const kube = await createKubeAccess(process.env).connect({
    kubeconfig: process.env.KUBECONFIG ?? '',
    timeoutMs: KUBE_TIMEOUT_MS,
  });
  const namespaces = startWatch<KubeObject>(kube, {
    path: '/api/v1/namespaces',
    onUpdate: (update) => {
      if (update.type !== 'ADDED' && update.type !== 'SYNC') return;
      keeper.markStale();
      wake.abort();
    },
    clock,
    random: Math.random,
    logger,
  });
  const loop = (async () => {
    await keeper
      .publish(clock.now().getTime())
      .catch((error: unknown) =>
        logger.warn('trust bundle publication failed', { error: String(error) }),
      );
    while (!stop.signal.aborted) {
      const wait = keeper.wait(clock.now().getTime());
      try {
        await clock.sleep(wait, AbortSignal.any([stop.signal, wake.signal]));
      } catch {
        if (stop.signal.aborted) break;
      }
      wake = new AbortController();
      try {
        const renewed = await keeper.refresh(clock.now());
        if (renewed !== undefined) server.setCertificate(renewed.chainPem, renewed.keyPem);
        await keeper.publish(clock.now().getTime());
      } catch (error) {
        logger.error('CA maintenance failed; retrying', {
          error: String(error),
          retryMs: RETRY_MS,
        });
        await clock.sleep(RETRY_MS, stop.signal).catch(() => undefined);
      }
    }
  })();
  // Ready from here on: the CA is loaded and the API listens.
  return runningUntilStopped(async () => {
    stop.abort();
    await loop;
    await namespaces.stop();
    await server.close();
  });
}
