// The controller's main loop: the cluster cache feeds the snapshot builder, and the leader
// publishes each snapshot on NATS, writes the policies' Events and Accepted conditions and the
// HTTPRoutes' parent status, and tells remove (through MeshConfig status.transparent) once every
// sidecar passes traffic through. A replica that does not lead keeps its cache warm so that it can take over at once.
// Nothing here gives up: a bus that cannot start, a connection that is replaced, and a build
// that fails are all retried on a one-second reconcile tick with jittered backoff, and
// readiness says which of them the replica is waiting for.
import type { NatsConnection } from 'nats';
import { describeError } from '../../errors';
import { jitteredBackoffMs } from '../backoff';
import { INJECTION_STATUS_ANNOTATION, INJECTION_STATUS_INJECTED } from '../../manifests/constants';
import { buildSnapshot } from '../../manifests/snapshot/build';
import { meshBaseFromConfigMap } from '../../manifests/snapshot/mesh-base';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import type { AgentState, ControllerBus } from '../bus/controller-bus';
import { startControllerBus } from '../bus/controller-bus';
import type { Clock } from '../clock';
import type { KubeConnection } from '../kube/access';
import { KubeClient } from '../kube/client';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';
import type { CachedClusterState } from './cluster-cache';
import { startClusterCache } from './cluster-cache';
import { createDebouncer } from './debounce';
import { startLeaderElection } from './leader';
import { createPolicyStatusWriter } from './policy-status';
import { createRouteStatusWriter } from './route-status';
import { createGatewayReconciler } from './gateway-reconciler';
import type { InjectionSettings } from '../../manifests/inject/types';

/** How often the leader reconciles: the bus, a failed build, whether sidecars went transparent. */
const RECONCILE_MS = 1_000;
/** Backoff of a failed bus start or build: from the first retry to the last. */
const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 30_000;
/** A build running longer than this is wedged: liveness fails and the kubelet restarts us. */
const WEDGED_BUILD_MS = 120_000;
/**
 * A leader renews every 5 s; a Lease record unchanged for longer than this has lost its leader.
 * Checked against this candidate's own observations, which come every 5-6 s.
 */
const LEADER_SILENT_MS = 12_000;
/** How long the cache may be failing to follow the cluster before the replica is not ready. */
const STALE_CACHE_MS = 30_000;

/** Why something keeps failing, how often in a row, and when it is retried. */
interface Failure {
  readonly error: string;
  readonly failures: number;
  readonly retryAtMs: number;
}

/** The NATS connection the publisher uses: replaced when it is given up for good. */
export interface BusConnectionSource {
  connection(): NatsConnection | undefined;
  readiness(): Readiness;
}

export interface MeshPublisherOptions {
  readonly connection: KubeConnection;
  readonly nats: BusConnectionSource;
  readonly meshNamespace: string;
  /** This replica's name: the Lease holder and the Events' reporting instance. */
  readonly identity: string;
  readonly version: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  /** What gateway pods run; absent: Gateways are left alone (no pods, no status). */
  readonly gatewaySettings?: InjectionSettings;
}

/** What GET /sidecars shows: the generation in force and every sidecar's last acknowledgement. */
export interface SidecarReport {
  readonly leader: boolean;
  readonly generation: number | undefined;
  readonly sidecars: readonly AgentState[];
  /**
   * Pods whose last acknowledgement is older than the generation, or an error, then injected pods
   * whose sidecar has not reported at all yet (it still passes traffic through unchanged).
   */
  readonly behind: readonly string[];
}

export interface MeshPublisher {
  /** Ready while it does its job: a leader publishing, or a follower able to take over. */
  readiness(): Readiness;
  /** Not alive when wedged: a build that never ends. */
  liveness(): Readiness;
  /** Reconciles now instead of at the next tick (e.g. a new NATS connection). */
  poke(): void;
  report(): SidecarReport;
  /** The versions of the sidecars that answered, for GET /version. */
  sidecarVersions(): readonly string[];
  stop(): Promise<void>;
}

function policiesOf(state: CachedClusterState): readonly Readonly<Record<string, unknown>>[] {
  return [
    ...state.trafficSplits,
    ...state.trafficTargets,
    ...state.rateLimits,
    ...state.circuitBreakers,
    // Route groups carry regular expressions a tenant writes: a bad match is reported on them.
    ...state.httpRouteGroups,
    ...state.tcpRoutes,
  ];
}

/**
 * "<namespace>/<name>" of every pod that carries a running sidecar (not a finished pod's) → its
 * ServiceAccount, "<namespace>/<name>".
 */
function injectedPodAccounts(state: CachedClusterState): ReadonlyMap<string, string> {
  const pods = new Map<string, string>();
  for (const pod of state.pods) {
    const metadata = pod.metadata as
      { name?: string; namespace?: string; annotations?: Record<string, string> } | undefined;
    if (metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] !== INJECTION_STATUS_INJECTED)
      continue;
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const account =
      (pod.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName || 'default';
    pods.set(
      `${metadata.namespace ?? ''}/${metadata.name ?? ''}`,
      `${metadata.namespace ?? ''}/${account}`,
    );
  }
  return pods;
}

function injectedPods(state: CachedClusterState): ReadonlySet<string> {
  return new Set(injectedPodAccounts(state).keys());
}

export function startMeshPublisher(options: MeshPublisherOptions): MeshPublisher {
  const { logger, meshNamespace } = options;
  const client = new KubeClient(options.connection);
  const cache = startClusterCache(options.connection, {
    meshNamespace,
    clock: options.clock,
    random: options.random,
    logger,
  });
  const status = createPolicyStatusWriter({
    client,
    clock: options.clock,
    logger,
    meshNamespace,
    instance: options.identity,
  });
  const routeStatus = createRouteStatusWriter({ client, clock: options.clock, logger });
  const gateways =
    options.gatewaySettings === undefined
      ? undefined
      : createGatewayReconciler({
          client,
          clock: options.clock,
          logger: logger.with({ part: 'gateways' }),
          settings: options.gatewaySettings,
        });
  let bus: ControllerBus | undefined;
  /** The connection bus runs on; a new connection needs a new bus. */
  let busConnection: NatsConnection | undefined;
  let busStarting = false;
  let busFailure: Failure | undefined;
  let buildFailure: Failure | undefined;
  let buildStartedMs: number | undefined;
  let published: MeshSnapshot | undefined;
  let transparentReported: boolean | undefined;
  let warnings = new Set<string>();
  let stopped = false;
  const now = (): number => options.clock.now().getTime();
  /** One more failure in a row after previous, retried after a backoff that grows with them. */
  const failedAgain = (previous: Failure | undefined, error: unknown): Failure => {
    const failures = (previous?.failures ?? 0) + 1;
    const waitMs = jitteredBackoffMs(failures - 1, options.random(), FIRST_RETRY_MS, LAST_RETRY_MS);
    return { error: describeError(error), failures, retryAtMs: now() + waitMs };
  };

  const rebuild = async (): Promise<void> => {
    const current = bus;
    if (current === undefined || !cache.synced()) return;
    buildStartedMs = now();
    try {
      await build(current);
      if (buildFailure !== undefined) {
        logger.info('published the mesh configuration again', {
          afterFailures: buildFailure.failures,
        });
      }
      buildFailure = undefined;
    } catch (error) {
      buildFailure = failedAgain(buildFailure, error);
      throw error;
    } finally {
      buildStartedMs = undefined;
    }
  };

  const build = async (current: ControllerBus): Promise<void> => {
    const state = cache.state();
    const base = meshBaseFromConfigMap(state.meshConfigMap);
    const started = now();
    const outcome = buildSnapshot(
      { ...state, meshConfig: state.meshConfig[0] },
      { meshNamespace, base: base.mesh },
    );
    // Each warning once while it lasts, not on every rebuild.
    const seen = new Set([...base.problems, ...outcome.warnings]);
    for (const warning of seen) if (!warnings.has(warning)) logger.warn(warning);
    warnings = seen;
    // Sidecars of pods that are gone never acknowledge again: they are not behind, they are gone.
    current.retain(injectedPods(state));
    const before = current.generation();
    const generation = current.publish(outcome.snapshot);
    published = outcome.snapshot;
    if (generation !== before) {
      logger.info('published the mesh configuration', {
        generation,
        services: Object.keys(outcome.snapshot.services).length,
        problems: outcome.problems.length,
        buildMs: now() - started,
      });
    }
    try {
      await status.report(outcome.problems, policiesOf(state));
    } catch (error) {
      throw new Error(`published, but cannot write the policies' status: ${describeError(error)}`);
    }
    await routeStatus.report(outcome.routeStatuses, [...state.httpRoutes, ...state.grpcRoutes]);
    await gateways?.report(
      {
        gateways: outcome.snapshot.gateways,
        gatewayStatuses: outcome.gatewayStatuses,
        gatewayClassStatuses: outcome.gatewayClassStatuses,
        gatewayCertificates: outcome.gatewayCertificates,
      },
      state,
    );
  };
  const debouncer = createDebouncer(rebuild, {
    onError: (error) =>
      logger.error('cannot publish the mesh configuration; retrying', {
        error: describeError(error),
        retryInMs: buildFailure === undefined ? undefined : buildFailure.retryAtMs - now(),
      }),
  });
  // The injected pods' accounts, for the bus to check who speaks for a pod: computed on the first
  // question after a change, not on every message.
  let accounts: ReadonlyMap<string, string> | undefined;
  const accountOf = (pod: string): string | undefined => {
    accounts ??= injectedPodAccounts(cache.state());
    return accounts.get(pod);
  };
  const unsubscribe = cache.onChange(() => {
    accounts = undefined;
    debouncer.notify();
  });

  const dropBus = (): void => {
    const previous = bus;
    bus = undefined;
    busConnection = undefined;
    void previous?.close();
  };

  /** Starts the bus on the current connection when this replica leads and has none on it. */
  const ensureBus = (): void => {
    if (stopped || busStarting || !leader.isLeader()) return;
    const nc = options.nats.connection();
    if (nc !== busConnection) dropBus();
    if (nc === undefined || bus !== undefined) return;
    if (busFailure !== undefined && now() < busFailure.retryAtMs) return;
    busStarting = true;
    void startControllerBus(nc, {
      logger,
      now: () => options.clock.now().getTime(),
      version: options.version,
      accountOf,
      // Above every generation a previous leader recorded, whatever this clock says.
      firstGeneration: leader.recordedGeneration() + 1,
      recordedGeneration: () => leader.recordedGeneration(),
    })
      .then(
        (started) => {
          if (stopped || !leader.isLeader() || options.nats.connection() !== nc) {
            void started.close();
            return;
          }
          if (busFailure !== undefined) logger.info('publishing on NATS again');
          busFailure = undefined;
          bus = started;
          busConnection = nc;
          transparentReported = undefined;
          debouncer.notify();
        },
        (error: unknown) => {
          busFailure = failedAgain(busFailure, error);
          logger.error('cannot start publishing on NATS; retrying', {
            error: busFailure.error,
            retryInMs: busFailure.retryAtMs - now(),
          });
        },
      )
      .finally(() => {
        busStarting = false;
      });
  };

  const leader = startLeaderElection(client, {
    namespace: meshNamespace,
    identity: options.identity,
    clock: options.clock,
    random: options.random,
    logger,
    onStartedLeading: () => {
      busFailure = undefined;
      ensureBus();
    },
    onStoppedLeading: dropBus,
    generation: () => bus?.generation() ?? 0,
  });

  /** remove waits for status.transparent: true once every sidecar acknowledged pass-through. */
  const reportTransparency = (): void => {
    if (bus === undefined || published === undefined) return;
    const wanted = published.mesh.transparent && bus.behind().length === 0;
    if (wanted === transparentReported) return;
    transparentReported = wanted;
    void status.setMeshConfigTransparent(wanted).catch((error: unknown) => {
      transparentReported = undefined;
      logger.warn('cannot update MeshConfig status', { error: describeError(error) });
    });
  };

  const reconcile = (): void => {
    if (stopped) return;
    ensureBus();
    if (bus !== undefined && buildFailure !== undefined && now() >= buildFailure.retryAtMs) {
      // Retried on its own: a failed build must not wait for the next cluster change.
      buildFailure = { ...buildFailure, retryAtMs: Number.POSITIVE_INFINITY };
      debouncer.notify();
    }
    reportTransparency();
  };
  const ticker = setInterval(reconcile, RECONCILE_MS);
  ticker.unref();

  const readiness = (): Readiness => {
    if (!cache.synced())
      return { ready: false, reason: 'listing the cluster from the Kubernetes API' };
    const stale = cache.failure();
    if (stale !== undefined && now() - stale.sinceMs >= STALE_CACHE_MS) {
      return {
        ready: false,
        reason: `cannot follow the cluster for ${Math.round((now() - stale.sinceMs) / 1000)}s: ${stale.error}`,
      };
    }
    const link = options.nats.readiness();
    if (!link.ready) return link;
    if (!leader.isLeader()) return followerReadiness();
    if (bus === undefined) {
      return {
        ready: false,
        reason:
          busFailure === undefined
            ? 'leading; starting to publish on NATS'
            : `leading, but cannot publish on NATS: ${busFailure.error}`,
      };
    }
    if (buildFailure !== undefined) {
      return {
        ready: false,
        reason: `cannot publish the mesh configuration (${buildFailure.failures} attempts): ${buildFailure.error}`,
      };
    }
    return { ready: true };
  };

  /**
   * A follower is healthy while another replica leads, renewing the Lease. One that waits for a
   * gone leader's lease to run out, or for a free Lease, is not: nobody publishes meanwhile.
   */
  const followerReadiness = (): Readiness => {
    const seen = leader.observed();
    if (seen === undefined) return { ready: false, reason: 'reading the Lease' };
    if (seen.holder === '') return { ready: false, reason: 'acquiring the free Lease' };
    if (seen.changesSeen === 0) {
      return { ready: false, reason: `waiting to see ${seen.holder} renew the Lease` };
    }
    if (seen.unchangedMs > LEADER_SILENT_MS) {
      return {
        ready: false,
        reason: `waiting for the Lease of ${seen.holder}, not renewed for ${Math.round(seen.unchangedMs / 1000)}s, to run out`,
      };
    }
    return { ready: true };
  };

  const liveness = (): Readiness => {
    if (buildStartedMs !== undefined && now() - buildStartedMs > WEDGED_BUILD_MS) {
      return {
        ready: false,
        reason: `a build of the mesh configuration has run for ${Math.round((now() - buildStartedMs) / 1000)}s`,
      };
    }
    return { ready: true };
  };

  return {
    readiness,
    liveness,
    poke: reconcile,
    report() {
      const agents = bus?.agents() ?? [];
      const heard = new Set(agents.map((agent) => agent.pod));
      const unheard = cache.synced()
        ? [...injectedPods(cache.state())].filter((pod) => !heard.has(pod)).sort()
        : [];
      return {
        leader: leader.isLeader(),
        generation: bus?.generation(),
        sidecars: agents,
        behind: [...(bus?.behind() ?? []).map((agent) => agent.pod), ...unheard],
      };
    },
    sidecarVersions() {
      return [...new Set((bus?.agents() ?? []).map((agent) => agent.version))].sort();
    },
    async stop() {
      stopped = true;
      clearInterval(ticker);
      unsubscribe();
      await debouncer.stop();
      await leader.stop();
      await bus?.close();
      bus = undefined;
      await cache.stop();
    },
  };
}
