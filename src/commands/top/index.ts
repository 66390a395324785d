// `top`: traffic statistics of the mesh's workloads, read from the SMI Traffic Metrics API
// (APIService v1alpha1.metrics.smi-spec.io) through the API server, as NGINX Service Mesh.
import { MeshctlError, UsageError, describeError } from '../../errors';
import { METRICS_API_SERVICE_NAME, METRICS_NAME } from '../../manifests/constants';
import { TRAFFIC_METRICS_BASE_PATH } from '../../manifests/traffic-metrics/build';
import {
  TRAFFIC_KINDS,
  trafficKind,
  trafficKindByAlias,
} from '../../manifests/traffic-metrics/kinds';
import type { TrafficKind } from '../../manifests/traffic-metrics/kinds';
import type { TrafficMetricsList } from '../../manifests/traffic-metrics/types';
import { renderTopEdges, renderTopSummary } from '../../render/top';
import type { Clock } from '../../runtime/clock';
import type { Io } from '../../runtime/io';
import type { KubeAccess, KubeTarget } from '../../runtime/kube/access';
import type { SignalSource } from '../../runtime/signals';
import { getJson, KubeApiError } from '../../runtime/kube/get-json';
import type { GlobalOptionsReader } from '../global-flags';
import { outputFlag, printDocument } from '../output';
import type { CommandSpec } from '../spec';

export interface TopDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
  readonly clock: Clock;
  /** Ends --watch. */
  readonly signals: SignalSource;
}

/** The shortest --interval: each refresh costs the metrics role a round of Prometheus queries. */
const MIN_WATCH_INTERVAL_MS = 500;

/** Namespace of the resources when -n is not given (NSM's top: "default"). */
const TOP_DEFAULT_NAMESPACE = 'default';
/** Kinds shown when no resource type is given, in this order. */
const DEFAULT_KINDS = ['deployments', 'statefulsets', 'daemonsets'];

interface Selection {
  readonly kind: TrafficKind;
  readonly name: string | undefined;
}

function parseSelection(arg: string): Selection {
  const [type = '', name] = arg.split('/', 2);
  const kind = trafficKindByAlias(type.toLowerCase());
  if (kind === undefined) {
    throw new MeshctlError(`failed to build resource from name: ${type}`, {
      hint: `Cannot build traffic statistics.\nYou must provide one of the supported resource type names or aliases: ${TRAFFIC_KINDS.flatMap((k) => k.aliases).join(', ')}`,
    });
  }
  if (name === '') throw new MeshctlError(`no resource name after "${type}/"`);
  return { kind, name };
}

function metricsPath(selection: Selection, namespace: string): string {
  const { kind, name } = selection;
  const scope = kind.namespaced ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}/edges`;
  return `${TRAFFIC_METRICS_BASE_PATH}${scope}/${kind.plural}${object}`;
}

function apiFailure(error: unknown): MeshctlError {
  const missing = error instanceof KubeApiError && (error.status === 404 || error.status === 503);
  return new MeshctlError(`unable to get traffic metrics: ${describeError(error)}`, {
    cause: error,
    hint: missing
      ? `Is the metrics API available? Check APIService ${METRICS_API_SERVICE_NAME} and the ${METRICS_NAME} pods.`
      : undefined,
  });
}

function noTraffic(what: string, namespace: string | undefined): MeshctlError {
  const where = namespace === undefined ? '' : ` in namespace "${namespace}"`;
  return new MeshctlError(
    `no traffic yet for ${what}${where}: no metrics populated - make sure traffic is flowing`,
  );
}

interface TopRequest {
  readonly target: KubeTarget;
  readonly namespace: string;
  readonly output: string;
}

/** One look at the metrics: a table's text, or the document for -o json|yaml. */
type TopView = { readonly table: string } | { readonly document: unknown };

async function topOne(deps: TopDeps, request: TopRequest, selection: Selection): Promise<TopView> {
  const { kind, name } = selection;
  let list: TrafficMetricsList;
  try {
    list = await getJson(deps.kube, request.target, metricsPath(selection, request.namespace));
  } catch (error) {
    throw apiFailure(error);
  }
  const namespace = kind.namespaced ? request.namespace : undefined;
  if (list.items.length === 0) {
    throw noTraffic(name === undefined ? kind.plural : `${kind.plural}/${name}`, namespace);
  }
  if (request.output !== 'table') return { document: list };
  return {
    table: name === undefined ? renderTopSummary(kind, list) : renderTopEdges(kind, name, list),
  };
}

/** Deployments, StatefulSets and DaemonSets: a table for each kind with traffic. */
async function topWorkloads(deps: TopDeps, request: TopRequest): Promise<TopView> {
  const kinds = DEFAULT_KINDS.map((plural) => trafficKind(plural)).filter(
    (kind): kind is TrafficKind => kind !== undefined,
  );
  const answers = await Promise.allSettled(
    kinds.map((kind) =>
      getJson<TrafficMetricsList>(
        deps.kube,
        request.target,
        metricsPath({ kind, name: undefined }, request.namespace),
      ),
    ),
  );
  const lists = answers.flatMap((answer, index) => {
    const kind = kinds[index];
    return answer.status === 'fulfilled' && kind !== undefined
      ? [{ kind, list: answer.value }]
      : [];
  });
  if (lists.length === 0) {
    const first = answers.find((answer) => answer.status === 'rejected');
    throw apiFailure(first?.reason);
  }
  const withTraffic = lists.filter(({ list }) => list.items.length > 0);
  if (withTraffic.length === 0)
    throw noTraffic('deployments, statefulsets or daemonsets', request.namespace);
  if (request.output !== 'table') {
    const items = withTraffic.map(({ list }) => list);
    return { document: { apiVersion: 'v1', kind: 'List', items } };
  }
  return { table: withTraffic.map(({ kind, list }) => renderTopSummary(kind, list)).join('') };
}

/** Clears a terminal and puts the cursor top left, so each refresh replaces the last. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * --watch: the table again every interval until a signal, like watch(1). On a terminal each
 * refresh replaces the last; otherwise refreshes follow one another. A failed refresh (no
 * traffic yet, the metrics API away for a moment) is shown in place of the table and the watch
 * goes on; the signal ends it with exit code 0.
 */
async function watchTop(
  deps: TopDeps,
  view: () => Promise<TopView>,
  settings: { readonly intervalMs: number; readonly title: string },
): Promise<void> {
  const stopped = new AbortController();
  const unsubscribe = deps.signals.onSignal(() => stopped.abort());
  try {
    while (!stopped.signal.aborted) {
      let body: string;
      try {
        const shown = await view();
        body = 'table' in shown ? shown.table : '';
      } catch (error) {
        const hint = error instanceof MeshctlError ? error.hint : undefined;
        body = `${describeError(error)}\n${hint === undefined ? '' : `${hint}\n`}`;
      }
      if (stopped.signal.aborted) break;
      const header = `Every ${formatInterval(settings.intervalMs)}: ${settings.title}    ${deps.clock.now().toISOString()}\n\n`;
      deps.io.out.write(`${deps.io.stdoutIsTTY ? CLEAR_SCREEN : ''}${header}${body}`);
      await deps.clock.sleep(settings.intervalMs, stopped.signal).catch(() => undefined);
    }
  } finally {
    unsubscribe();
  }
}

function formatInterval(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function topCommand(globals: GlobalOptionsReader, deps: TopDeps): CommandSpec {
  return {
    name: 'top',
    short: 'Display traffic statistics',
    long: `Display traffic statistics of the mesh's workloads over the last 30 seconds.

Without an argument, top shows every Deployment, StatefulSet and DaemonSet with traffic; with a
resource type (pods, deployments, statefulsets, daemonsets, namespaces or their aliases), every
resource of that type; with type/name, the resource's traffic to and from each peer.
-n names the namespace of the resources ("default" unless given). A "-" means no traffic in that
direction. The numbers come from the metrics API (APIService ${METRICS_API_SERVICE_NAME}),
which reads them from Prometheus. --watch refreshes the table in place until interrupted.`,
    example: `  nginx-meshctl top
  nginx-meshctl top pods -n shop
  nginx-meshctl top deployments/web -n shop -o json
  nginx-meshctl top deployments -n shop --watch`,
    args: { usage: '[resource-type/resource]', max: 1 },
    flags: [
      outputFlag(['table', 'json', 'yaml']),
      {
        long: 'watch',
        short: 'w',
        type: 'bool',
        usage: 'refresh the table every --interval until interrupted',
      },
      {
        long: 'interval',
        type: 'duration',
        usage: 'time between refreshes with --watch',
        defaultValue: 2_000,
      },
    ],
    action: async (context) => {
      const { kubeconfig, timeoutMs } = globals(context);
      const namespace = context.changed('namespace')
        ? context.string('namespace')
        : TOP_DEFAULT_NAMESPACE;
      const request = {
        target: { kubeconfig, timeoutMs },
        namespace,
        output: context.string('output'),
      };
      const [arg] = context.args;
      const selection = arg === undefined ? undefined : parseSelection(arg);
      const view = () =>
        selection === undefined ? topWorkloads(deps, request) : topOne(deps, request, selection);
      if (context.bool('watch')) {
        if (request.output !== 'table')
          throw new UsageError('--watch prints tables only: leave out -o', 'nginx-meshctl top');
        const intervalMs = context.duration('interval');
        if (intervalMs < MIN_WATCH_INTERVAL_MS)
          throw new UsageError(
            `invalid --interval "${formatInterval(intervalMs)}": must be at least ${formatInterval(MIN_WATCH_INTERVAL_MS)}`,
            'nginx-meshctl top',
          );
        const title = [
          'nginx-meshctl top',
          ...(arg === undefined ? [] : [arg]),
          '-n',
          namespace,
        ].join(' ');
        return watchTop(deps, view, { intervalMs, title });
      }
      const shown = await view();
      if ('table' in shown) deps.io.out.write(shown.table);
      else await printDocument(deps.io, request.output, shown.document);
    },
  };
}
