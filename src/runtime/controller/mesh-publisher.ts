// The controller's main loop: the cluster cache feeds the snapshot builder, and the leader
// publishes each snapshot on NATS, writes the policies' Events and Accepted conditions, and
// tells remove (through MeshConfig status.transparent) once every sidecar passes traffic
// through. A replica that does not lead keeps its cache warm so that it can take over at once.
import type { NatsConnection } from 'nats';
import { describeError } from '../../errors';
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
import type { CachedClusterState } from './cluster-cache';
import { startClusterCache } from './cluster-cache';
import { createDebouncer } from './debounce';
import { startLeaderElection } from './leader';
import { createPolicyStatusWriter } from './policy-status';

/** How often the leader checks whether every sidecar has gone transparent. */
const TRANSPARENCY_CHECK_MS = 1_000;

export interface MeshPublisherOptions {
  readonly connection: KubeConnection;
  readonly nats: NatsConnection;
  readonly meshNamespace: string;
  /** This replica's name: the Lease holder and the Events' reporting instance. */
  readonly identity: string;
  readonly version: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
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
  ];
}

/** "<namespace>/<name>" of every pod that carries a running sidecar (not a finished pod's). */
function injectedPods(state: CachedClusterState): ReadonlySet<string> {
  const pods = new Set<string>();
  for (const pod of state.pods) {
    const metadata = pod.metadata as
      { name?: string; namespace?: string; annotations?: Record<string, string> } | undefined;
    if (metadata?.annotations?.[INJECTION_STATUS_ANNOTATION] !== INJECTION_STATUS_INJECTED)
      continue;
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    pods.add(`${metadata.namespace ?? ''}/${metadata.name ?? ''}`);
  }
  return pods;
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
  let bus: ControllerBus | undefined;
  let published: MeshSnapshot | undefined;
  let transparentReported: boolean | undefined;
  let warnings = new Set<string>();

  const rebuild = async (): Promise<void> => {
    const current = bus;
    if (current === undefined || !cache.synced()) return;
    const state = cache.state();
    const base = meshBaseFromConfigMap(state.meshConfigMap);
    const started = options.clock.now().getTime();
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
        buildMs: options.clock.now().getTime() - started,
      });
    }
    await status.report(outcome.problems, policiesOf(state));
  };
  const debouncer = createDebouncer(rebuild, {
    onError: (error) =>
      logger.error('cannot publish the mesh configuration', { error: describeError(error) }),
  });
  const unsubscribe = cache.onChange(() => debouncer.notify());

  const leader = startLeaderElection(client, {
    namespace: meshNamespace,
    identity: options.identity,
    clock: options.clock,
    random: options.random,
    logger,
    onStartedLeading: () => {
      void startControllerBus(options.nats, {
        logger,
        now: () => options.clock.now().getTime(),
        version: options.version,
      }).then(
        (started) => {
          if (!leader.isLeader()) {
            void started.close();
            return;
          }
          bus = started;
          transparentReported = undefined;
          debouncer.notify();
        },
        (error: unknown) =>
          logger.error('cannot start publishing on NATS', { error: describeError(error) }),
      );
    },
    onStoppedLeading: () => {
      const previous = bus;
      bus = undefined;
      void previous?.close();
    },
  });

  // remove waits for status.transparent: true once every sidecar acknowledged pass-through.
  const transparency = setInterval(() => {
    if (bus === undefined || published === undefined) return;
    const wanted = published.mesh.transparent && bus.behind().length === 0;
    if (wanted === transparentReported) return;
    transparentReported = wanted;
    void status.setMeshConfigTransparent(wanted).catch((error: unknown) => {
      transparentReported = undefined;
      logger.warn('cannot update MeshConfig status', { error: describeError(error) });
    });
  }, TRANSPARENCY_CHECK_MS);
  transparency.unref();

  return {
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
      clearInterval(transparency);
      unsubscribe();
      await debouncer.stop();
      await leader.stop();
      await bus?.close();
      bus = undefined;
      await cache.stop();
    },
  };
}
