// Leader election over a coordination.k8s.io/v1 Lease, so that of several controller replicas
// exactly one publishes snapshots and writes status. The leader renews the Lease every few
// seconds; a candidate takes it when it is free or when its record has not changed for a whole
// lease duration by the candidate's own clock (so clock skew between nodes does not matter).
// Every write carries the resourceVersion it read, so two candidates cannot both win: the loser
// gets 409 Conflict and reads again. Stopping clears the holder, so a successor takes over at
// its next attempt instead of waiting for the lease to expire.
//
// A leader stops leading no later than renewDeadlineMs after the write of its last successful
// renewal was stamped, even while a request hangs: a timer armed at every renewal steps it down
// and abandons the request in flight. Whatever that request answers later is ignored, and
// leading again takes a fresh read-and-write (onStartedLeading is called again).
import { CONTROLLER_NAME } from '../../manifests/constants';
import { objectPath } from '../../manifests/install/resources';
import type { Clock } from '../clock';
import { KubeApiError } from '../kube/client';
import type { KubeClient } from '../kube/client';
import type { Logger } from '../role/log';

export interface LeaderElectionOptions {
  /** Namespace of the Lease: the mesh namespace. */
  readonly namespace: string;
  /** This candidate's name in holderIdentity: the pod name. */
  readonly identity: string;
  readonly clock: Clock;
  /** A number in [0, 1), to spread candidates' attempts. */
  readonly random: () => number;
  readonly logger: Logger;
  /** Called when this candidate becomes the leader. */
  readonly onStartedLeading: () => void;
  /** Called when it stops being the leader (lost, expired, or stopped). */
  readonly onStoppedLeading: () => void;
  /** Default nginx-mesh-controller. */
  readonly leaseName?: string;
  /** Default 15. */
  readonly leaseDurationSeconds?: number;
  /** How often the leader renews. Default 5000. */
  readonly renewIntervalMs?: number;
  /** How often a candidate tries to acquire (plus up to 20% jitter). Default 5000. */
  readonly retryIntervalMs?: number;
  /**
   * A leader that could not renew for this long steps down (before its lease expires), counted
   * from the moment its last successful renewal was stamped. Every attempt, a leader's or a
   * candidate's, is abandoned after this long. Default 10000.
   */
  readonly renewDeadlineMs?: number;
  /**
   * The leader's current configuration generation (0 before its first): every write of the Lease
   * records the highest one yet in the annotation LEASE_GENERATION_ANNOTATION, so the next leader
   * knows what was issued before it even when its clock is behind.
   */
  readonly generation?: () => number;
}

/** Annotation of the Lease holding the highest configuration generation a leader issued. */
export const LEASE_GENERATION_ANNOTATION = 'nsm.nginx.com/generation';

export interface LeaderElector {
  isLeader(): boolean;
  /** spec.leaseTransitions of the term this candidate leads, or undefined when it does not. */
  leaseTransitions(): number | undefined;
  /**
   * Of a candidate that does not lead: who holds the Lease ('' when free, undefined before the
   * first read) and how long ago its record last changed, by this candidate's clock. A holder
   * whose record stopped changing is gone, and the candidate waits for its lease to run out.
   */
  observed():
    | { readonly holder: string; readonly unchangedMs: number; readonly changesSeen: number }
    | undefined;
  /** The highest generation any Lease record read or written by this candidate holds; 0 if none. */
  recordedGeneration(): number;
  /** Stops trying; a leader releases the Lease first. */
  stop(): Promise<void>;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  spec?: LeaseSpec;
}

/** The generation a Lease records, or 0 when it records none (or not a number). */
function generationOf(lease: Lease): number {
  const text = lease.metadata?.annotations?.[LEASE_GENERATION_ANNOTATION] ?? '';
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : 0;
  return Number.isSafeInteger(value) ? value : 0;
}

const DEFAULT_LEASE_SECONDS = 15;
const DEFAULT_RENEW_MS = 5000;
const DEFAULT_RETRY_MS = 5000;
const DEFAULT_RENEW_DEADLINE_MS = 10_000;
/** Writes that meet 409 Conflict are retried this many times after a fresh read. */
const CONFLICT_RETRIES = 2;

/** Environment variable the Deployment fills with the pod's name (downward API). */
export const POD_NAME_ENV = 'POD_NAME';

/**
 * This candidate's holderIdentity: the pod name from the environment, else the host name (which
 * Kubernetes sets to the pod name).
 */
export function podIdentity(
  env: Readonly<Record<string, string | undefined>>,
  hostname: string,
): string {
  const fromEnv = env[POD_NAME_ENV]?.trim() ?? '';
  return fromEnv === '' ? hostname : fromEnv;
}

/** A Lease's MicroTime: RFC 3339 with microseconds. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409;
}

/**
 * Settles as the request does, unless the signal aborts first (then rejects with its reason):
 * Kubernetes requests take no signal, so an abandoned one runs on and its answer is dropped.
 */
function unlessAborted<T>(request: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Starts campaigning for the Lease at once. */
export function startLeaderElection(
  client: KubeClient,
  options: LeaderElectionOptions,
): LeaderElector {
  const name = options.leaseName ?? CONTROLLER_NAME;
  const path = objectPath({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    namespace: options.namespace,
    name,
  });
  const collection = path.slice(0, path.lastIndexOf('/'));
  const durationSeconds = options.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS;
  const renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
  const logger = options.logger.with({ lease: `${options.namespace}/${name}` });
  const abort = new AbortController();
  const now = (): number => options.clock.now().getTime();
  let transitions: number | undefined;
  let lastRenewAt = 0;
  let observedVersion = '';
  let observedAt = 0;
  /** Aborts the attempt in flight: the renew deadline passed, or the election stops. */
  let inFlight: AbortController | undefined;
  /** Cancels the timer that steps a leader down at its renew deadline. */
  let deadline: AbortController | undefined;

  const stopLeading = (why: string): void => {
    deadline?.abort();
    deadline = undefined;
    if (transitions === undefined) return;
    transitions = undefined;
    logger.info('stopped leading', { reason: why });
    options.onStoppedLeading();
  };

  /** Steps down renewDeadlineMs after renewedAt unless a later renewal re-arms the timer first. */
  const armDeadline = (renewedAt: number): void => {
    deadline?.abort();
    const timer = new AbortController();
    deadline = timer;
    options.clock.sleep(Math.max(0, renewedAt + renewDeadlineMs - now()), timer.signal).then(
      () => {
        if (deadline !== timer) return;
        inFlight?.abort(new Error(`renew deadline of ${renewDeadlineMs}ms passed`));
        stopLeading(`not renewed for ${renewDeadlineMs}ms`);
      },
      () => undefined,
    );
  };

  /** Records a successful write stamped at stampedAt; a leader's late renewal steps it down. */
  const startLeading = (term: number, stampedAt: number): void => {
    if (transitions !== undefined && now() - lastRenewAt > renewDeadlineMs) {
      stopLeading(`renewed after the ${renewDeadlineMs}ms deadline`);
      return;
    }
    lastRenewAt = stampedAt;
    armDeadline(stampedAt);
    if (transitions !== undefined) {
      transitions = term;
      return;
    }
    transitions = term;
    logger.info('started leading', { leaseTransitions: term });
    options.onStartedLeading();
  };

  let observedHolder: string | undefined;
  /** Changes of the record seen after the first read: the holder renewing while we watch. */
  let changesSeen = 0;
  let recorded = 0;
  /** Lease metadata carrying the highest generation known: recorded, or this leader's own. */
  const withGeneration = (metadata: Lease['metadata']): Lease['metadata'] => {
    const highest = Math.max(recorded, options.generation?.() ?? 0);
    if (highest === 0) return metadata;
    return {
      ...metadata,
      annotations: { ...metadata?.annotations, [LEASE_GENERATION_ANNOTATION]: String(highest) },
    };
  };
  const observe = (lease: Lease): void => {
    recorded = Math.max(recorded, generationOf(lease));
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== observedHolder) changesSeen = 0;
    else if ((lease.metadata?.resourceVersion ?? '') !== observedVersion) changesSeen += 1;
    observedHolder = holder;
    const version = lease.metadata?.resourceVersion ?? '';
    if (version !== observedVersion) {
      observedVersion = version;
      observedAt = now();
    }
  };

  const spec = (previous: LeaseSpec | undefined): LeaseSpec => {
    const stamp = microTime(options.clock.now());
    const renewing = previous?.holderIdentity === options.identity;
    const before = previous?.leaseTransitions ?? 0;
    return {
      holderIdentity: options.identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewing ? (previous.acquireTime ?? stamp) : stamp,
      renewTime: stamp,
      leaseTransitions: previous === undefined ? 0 : renewing ? before : before + 1,
    };
  };

  const create = async (signal: AbortSignal): Promise<void> => {
    const stampedAt = now();
    const wanted = spec(undefined);
    try {
      const created = await unlessAborted(
        client.create<Lease>(collection, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: withGeneration({ name, namespace: options.namespace }),
          spec: wanted,
        }),
        signal,
      );
      observe(created);
      startLeading(wanted.leaseTransitions ?? 0, stampedAt);
    } catch (error) {
      // Another candidate created it first; the next attempt reads it.
      if (!isConflict(error)) throw error;
    }
  };

  /** One read-and-write; true when it should be retried at once after a conflict. */
  const attempt = async (signal: AbortSignal): Promise<boolean> => {
    const lease = await unlessAborted(client.get<Lease>(path), signal);
    if (lease === undefined) {
      await create(signal);
      return false;
    }
    observe(lease);
    const holder = lease.spec?.holderIdentity ?? '';
    const heldFor = (lease.spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== options.identity && now() - observedAt < heldFor) {
      stopLeading(`held by ${holder}`);
      return false;
    }
    const stampedAt = now();
    const wanted = spec(lease.spec);
    try {
      const updated = await unlessAborted(
        client.replace<Lease>(path, {
          ...lease,
          metadata: withGeneration(lease.metadata),
          spec: wanted,
        }),
        signal,
      );
      observe(updated);
      startLeading(wanted.leaseTransitions ?? 0, stampedAt);
      return false;
    } catch (error) {
      if (isConflict(error)) return true;
      throw error;
    }
  };

  /**
   * Runs work with a signal that aborts after timeoutMs, when the parent signal aborts, or when
   * the renew deadline passes while it runs.
   */
  const bounded = async <T>(
    work: (signal: AbortSignal) => Promise<T>,
    limits: { readonly timeoutMs: number; readonly what: string; readonly parent: AbortSignal },
  ): Promise<T> => {
    const attemptAbort = new AbortController();
    const timer = new AbortController();
    inFlight = attemptAbort;
    options.clock.sleep(limits.timeoutMs, timer.signal).then(
      () => attemptAbort.abort(new Error(`${limits.what} took over ${limits.timeoutMs}ms`)),
      () => undefined,
    );
    try {
      return await work(AbortSignal.any([limits.parent, attemptAbort.signal]));
    } finally {
      timer.abort();
      if (inFlight === attemptAbort) inFlight = undefined;
    }
  };

  const tryAcquireOrRenew = async (signal: AbortSignal): Promise<void> => {
    for (let round = 0; round <= CONFLICT_RETRIES; round += 1) {
      if (!(await attempt(signal))) return;
    }
  };

  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      try {
        await bounded(tryAcquireOrRenew, {
          timeoutMs: renewDeadlineMs,
          what: 'lease request',
          parent: abort.signal,
        });
      } catch (error) {
        if (!abort.signal.aborted) logger.warn('lease request failed', { error });
      }
      const wait =
        transitions !== undefined
          ? (options.renewIntervalMs ?? DEFAULT_RENEW_MS)
          : (options.retryIntervalMs ?? DEFAULT_RETRY_MS) * (1 + 0.2 * options.random());
      await options.clock.sleep(Math.round(wait), abort.signal).catch(() => undefined);
    }
  };

  const release = async (signal: AbortSignal): Promise<void> => {
    const lease = await unlessAborted(client.get<Lease>(path), signal);
    if (lease?.spec?.holderIdentity !== options.identity) return;
    const stamp = microTime(options.clock.now());
    await unlessAborted(
      client.replace<Lease>(path, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: stamp },
      }),
      signal,
    );
  };

  const running = run();
  return {
    isLeader: () => transitions !== undefined,
    leaseTransitions: () => transitions,
    recordedGeneration: () => recorded,
    observed: () =>
      observedHolder === undefined
        ? undefined
        : { holder: observedHolder, unchangedMs: now() - observedAt, changesSeen },
    async stop() {
      abort.abort(new Error('leader election stopped'));
      await running;
      if (transitions === undefined) return;
      try {
        // The election's own signal is aborted by now: the release is bounded on its own.
        await bounded(release, {
          timeoutMs: renewDeadlineMs,
          what: 'releasing the lease',
          parent: new AbortController().signal,
        });
      } catch (error) {
        logger.warn('could not release the lease; it expires on its own', { error });
      }
      stopLeading('stopped');
    },
  };
}
