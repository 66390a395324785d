// The registrar at work: it loads the shared CA (waiting for the Kubernetes API as long as that
// takes), serves the SVID API once it can sign, and keeps the CA, its own serving certificate and
// the published trust bundle current. Every failure is retried with jittered backoff, forever,
// and readiness says what stands in the way:
//   - "loading the CA from Secret <ns>/<name>" before the first attempt has answered;
//   - "waiting for the Kubernetes API: <error>" while the CA cannot be read at start
//     ("cannot load the CA: <error>" when it can be read but not used);
//   - "the CA expired: …" / "the CA is not valid yet: …" (its validity window and the time)
//     whenever the CA in force cannot sign, which is also every SVID request's 503;
//   - "cannot rotate the CA: <error>" or "cannot publish the trust bundle: <error>" once the CA
//     in force has less than one SVID lifetime left while its maintenance keeps failing: the
//     leaves it signs are then cut short, and the mesh breaks unless the failure is mended. With
//     more life left a failure is only logged and retried, since a registrar that is not ready
//     leaves the Service's endpoints and then signs nothing at all.
import type { Clock } from '../clock';
import { jitteredBackoffMs } from '../backoff';
import type { Logger } from '../role/log';
import type { Readiness, RunningRole } from '../role/role';
import { renewalTime } from '../svid/schedule';
import type { ApiServer } from './api-server';
import { startApiServer } from './api-server';
import type { AuthorityOptions } from './authority';
import { AuthorityError } from './authority';
import type { BundleApi } from './bundle-publisher';
import { publishBundle } from './bundle-publisher';
import type { CaState, CaStore } from './ca-state';
import { authorityInForce, caValidityProblem, reconcileCa } from './ca-state';
import type { CaView, WorkloadDirectory } from './issuer';
import { createIssuer } from './issuer';
import { reasonOf } from './reason';
import type { ServingCertificate } from './serving';
import { issueServingCertificate } from './serving';

export interface RegistrarSettings extends AuthorityOptions {
  /** The mesh namespace: where the CA Secret lives, and the registrar's own identity. */
  readonly namespace: string;
  readonly svidTtlMs: number;
  /** Where the SVID API listens; port 0 picks a free one. */
  readonly host: string;
  readonly port: number;
  readonly secretName: string;
  /** The images of mesh members: only pods that run them get SVIDs. */
  readonly sidecarImage: string;
  readonly controlPlaneImage: string;
}

export interface RegistrarDeps {
  readonly store: CaStore;
  readonly bundles: BundleApi;
  readonly directory: WorkloadDirectory;
  readonly clock: Clock;
  /** A number in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  /**
   * Starts watching namespaces: onAdded is called whenever one appears (and after every full
   * list), so its bundle copy is written at once rather than at the next periodic sync.
   */
  readonly watchNamespaces: (onAdded: () => void) => { stop(): Promise<void> };
}

export interface RegistrarService extends RunningRole {
  /** The SVID API's port once it listens; undefined before. */
  apiPort(): number | undefined;
}

/**
 * How often every namespace's bundle ConfigMap is checked regardless of events (a new namespace
 * gets its copy as soon as the namespace watch reports it; this catches copies edited or
 * deleted). It also bounds the wait between two reads of the CA, whatever the clock does.
 */
const BUNDLE_SYNC_MS = 15_000;
/** Shortest wait between two rounds, so that second-scale test TTLs do not spin. */
const MIN_WAIT_MS = 200;
/** Backoff of a failed round: the first retry within a second, then up to half a minute. */
const RETRY_INITIAL_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** How long stop waits for a round in flight (a Kubernetes request may hang). */
const STOP_WAIT_MS = 5000;
/** Per-identity issuance limit: a rollout's burst, then a steady rate. */
export const RATE_LIMIT = { perSecond: 20, burst: 200 };
/**
 * Per client address, before any API call: a sidecar asks once at start and then at half-life,
 * and retries with backoff, so a handful at once and one a second is generous.
 */
const CLIENT_RATE_LIMIT = { perSecond: 1, burst: 10 };
/** TokenReviews in flight at most: the API server's work the registrar can cause at once. */
export const MAX_REVIEWS_IN_FLIGHT = 32;
export const MAX_BUCKETS = 100_000;

/** When the serving certificate is half used, counted from its issue (notBefore is dated back). */
function servingHalfLife(serving: ServingCertificate): number {
  const { notBefore, notAfter, issuedAt } = serving;
  return renewalTime(notBefore.getTime(), notAfter.getTime(), issuedAt.getTime(), 0);
}

interface Failure {
  /** What could not be done, as a log message: "cannot rotate the CA". */
  readonly what: string;
  readonly error: string;
}

const describe = (failure: Failure): string => `${failure.what}: ${failure.error}`;

/** Starts at once; the SVID API listens as soon as the CA has been loaded. */
export function startRegistrarService(
  settings: RegistrarSettings,
  deps: RegistrarDeps,
): RegistrarService {
  const { clock, logger } = deps;
  const secret = `Secret ${settings.namespace}/${settings.secretName}`;
  let state: CaState | undefined;
  let serving: { certificate: ServingCertificate; issuerPem: string } | undefined;
  let server: ApiServer | undefined;
  let caFailure: Failure | undefined;
  let servingFailure: Failure | undefined;
  let publishFailure: Failure | undefined;
  let published = '';
  let publishedAt = 0;
  /** A namespace appeared since the last publication: publish at once. */
  let stale = false;
  const stop = new AbortController();
  let wake = new AbortController();

  const view = (): CaView | undefined =>
    state === undefined
      ? undefined
      : { active: authorityInForce(state, clock.now()), bundlePem: state.bundlePem };

  const issuer = createIssuer(
    {
      trustDomain: settings.trustDomain,
      svidTtlMs: settings.svidTtlMs,
      meshNamespace: settings.namespace,
      sidecarImage: settings.sidecarImage,
      controlPlaneImage: settings.controlPlaneImage,
      rateLimit: RATE_LIMIT,
      clientRateLimit: CLIENT_RATE_LIMIT,
      maxReviewsInFlight: MAX_REVIEWS_IN_FLIGHT,
      maxBuckets: MAX_BUCKETS,
    },
    { directory: deps.directory, ca: view, now: () => clock.now(), logger },
  );

  const loadCa = async (now: Date): Promise<void> => {
    const previous = state;
    try {
      state = await reconcileCa(deps.store, settings, () => now, logger);
      caFailure = undefined;
    } catch (error) {
      const what =
        previous !== undefined
          ? 'cannot rotate the CA'
          : error instanceof AuthorityError
            ? 'cannot load the CA'
            : 'waiting for the Kubernetes API';
      caFailure = { what, error: reasonOf(error) };
      return;
    }
    if (previous === undefined) {
      logger.info('CA loaded', {
        authorities: state.authorities.length,
        notAfter: authorityInForce(state, now).fields.notAfter.toISOString(),
        upstream: settings.upstream !== undefined,
      });
    } else if (state.bundlePem !== previous.bundlePem) {
      logger.info('trust bundle changed', { authorities: state.authorities.length });
    }
  };

  /** The serving certificate needs no API: it is renewed while the CA in force can sign. */
  const renewServing = async (now: Date): Promise<void> => {
    if (state === undefined) return;
    const active = authorityInForce(state, now);
    if (caValidityProblem(active.fields, now) !== undefined) return;
    const rotated = serving !== undefined && serving.issuerPem !== active.stored.certificate;
    if (serving !== undefined && !rotated && now.getTime() < servingHalfLife(serving.certificate))
      return;
    let certificate: ServingCertificate;
    try {
      certificate = await issueServingCertificate(
        { active, bundlePem: state.bundlePem },
        { ...settings, ttlMs: settings.svidTtlMs },
        now,
      );
      servingFailure = undefined;
    } catch (error) {
      servingFailure = { what: 'cannot renew the serving certificate', error: reasonOf(error) };
      return;
    }
    serving = { certificate, issuerPem: active.stored.certificate };
    if (server !== undefined) {
      server.setCertificate(certificate.chainPem, certificate.keyPem);
      logger.info('serving certificate renewed', {
        notAfter: certificate.notAfter.toISOString(),
        rotated,
      });
      return;
    }
    // A listen failure (the port is taken) is fatal: it rejects the round and ends the role.
    const started = await startApiServer({
      host: settings.host,
      port: settings.port,
      certificateChainPem: certificate.chainPem,
      privateKeyPem: certificate.keyPem,
      issuer,
      logger,
    });
    if (stop.signal.aborted) {
      await started.close();
      return;
    }
    server = started;
    logger.info('SVID API listening', { port: started.port });
  };

  const publish = async (nowMs: number): Promise<void> => {
    if (state === undefined) return;
    if (!stale && published === state.bundlePem && nowMs < publishedAt + BUNDLE_SYNC_MS) return;
    stale = false;
    const bundlePem = state.bundlePem;
    try {
      const result = await publishBundle(deps.bundles, bundlePem);
      for (const [namespace, reason] of result.failed) {
        logger.warn('trust bundle not published', { namespace, reason });
      }
      if (result.written > 0) logger.info('trust bundle published', { namespaces: result.written });
      if (result.failed.size === 0) published = bundlePem;
      publishedAt = nowMs;
      publishFailure = undefined;
    } catch (error) {
      stale = true;
      publishFailure = { what: 'cannot publish the trust bundle', error: reasonOf(error) };
    }
  };

  /** Milliseconds until the next round is due after a successful one. */
  const wait = (nowMs: number): number => {
    if (stale) return MIN_WAIT_MS;
    const due = Math.min(
      state?.nextChangeMs ?? nowMs,
      serving === undefined ? nowMs : servingHalfLife(serving.certificate),
      publishedAt + BUNDLE_SYNC_MS,
    );
    return Math.min(BUNDLE_SYNC_MS, Math.max(MIN_WAIT_MS, due - nowMs));
  };

  const failure = (): Failure | undefined => caFailure ?? servingFailure ?? publishFailure;

  const readiness = (): Readiness => {
    const failing = failure();
    if (state === undefined) {
      return {
        ready: false,
        reason: failing === undefined ? `loading the CA from ${secret}` : describe(failing),
      };
    }
    if (server === undefined) {
      return {
        ready: false,
        reason: failing === undefined ? 'starting the SVID API' : describe(failing),
      };
    }
    const now = clock.now();
    const active = authorityInForce(state, now);
    const invalid = caValidityProblem(active.fields, now);
    if (invalid !== undefined) {
      return {
        ready: false,
        reason: failing === undefined ? invalid : `${invalid}; ${describe(failing)}`,
      };
    }
    const nearExpiry = active.fields.notAfter.getTime() - now.getTime() <= settings.svidTtlMs;
    if (failing !== undefined && nearExpiry) return { ready: false, reason: describe(failing) };
    return { ready: true };
  };

  const round = async (): Promise<Failure | undefined> => {
    const now = clock.now();
    await loadCa(now);
    if (stop.signal.aborted) return undefined;
    await renewServing(now);
    if (stop.signal.aborted) return undefined;
    await publish(now.getTime());
    return failure();
  };

  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!stop.signal.aborted) {
      const failed = await round();
      if (stop.signal.aborted) break;
      let delay: number;
      if (failed === undefined) {
        if (failures > 0) logger.info('registrar recovered', { failures });
        failures = 0;
        delay = wait(clock.now().getTime());
      } else {
        delay = jitteredBackoffMs(failures, deps.random(), RETRY_INITIAL_MS, RETRY_MAX_MS);
        failures += 1;
        const ready = readiness().ready;
        const fields = { error: failed.error, failures, retryMs: delay, ready };
        if (ready) logger.warn(failed.what, fields);
        else logger.error(failed.what, fields);
      }
      try {
        await clock.sleep(delay, AbortSignal.any([stop.signal, wake.signal]));
      } catch {
        if (stop.signal.aborted) break;
      }
      wake = new AbortController();
    }
  };

  let fail: (error: unknown) => void = () => undefined;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const namespaces = deps.watchNamespaces(() => {
    stale = true;
    wake.abort();
  });
  const running = loop().catch((error: unknown) => {
    stop.abort();
    fail(error);
  });

  return {
    readiness,
    done,
    apiPort: () => server?.port,
    async stop() {
      stop.abort();
      const grace = new AbortController();
      await Promise.race([running, clock.sleep(STOP_WAIT_MS, grace.signal).catch(() => undefined)]);
      grace.abort();
      await namespaces.stop();
      await server?.close();
      finish();
    },
  };
}
