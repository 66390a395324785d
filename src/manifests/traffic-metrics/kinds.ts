// The resource kinds SMI Traffic Metrics are served for (NSM's five), and the sidecar label that
// names a resource of each kind on a series. Pure.
import { METRIC_LABEL_NAMESPACE, METRIC_LABEL_POD, METRIC_OWNER_LABELS } from '../constants';

export type TrafficKindName = 'namespaces' | 'pods' | 'deployments' | 'statefulsets' | 'daemonsets';

export interface TrafficKind {
  /** The resource's plural, as in API paths. */
  readonly plural: TrafficKindName;
  /** The object kind, as in an ObjectReference. */
  readonly kind: 'Namespace' | 'Pod' | 'Deployment' | 'StatefulSet' | 'DaemonSet';
  readonly namespaced: boolean;
  /** The label that holds a resource's name on a sidecar series (namespace for namespaces). */
  readonly label: string;
  /** Names `top` accepts for the kind (NSM's aliases). */
  readonly aliases: readonly string[];
}

const [deploymentLabel, statefulSetLabel, daemonSetLabel] = METRIC_OWNER_LABELS;

/** In NSM's discovery order. */
export const TRAFFIC_KINDS: readonly TrafficKind[] = [
  {
    plural: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    label: METRIC_LABEL_NAMESPACE,
    aliases: ['namespaces', 'namespace', 'ns'],
  },
  {
    plural: 'pods',
    kind: 'Pod',
    namespaced: true,
    label: METRIC_LABEL_POD,
    aliases: ['pods', 'pod', 'po'],
  },
  {
    plural: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    label: deploymentLabel,
    aliases: ['deployments', 'deployment', 'deploy'],
  },
  {
    plural: 'statefulsets',
    kind: 'StatefulSet',
    namespaced: true,
    label: statefulSetLabel,
    aliases: ['statefulsets', 'statefulset', 'ss'],
  },
  {
    plural: 'daemonsets',
    kind: 'DaemonSet',
    namespaced: true,
    label: daemonSetLabel,
    aliases: ['daemonsets', 'daemonset', 'ds'],
  },
];

/** The kind a `top` resource type names, by any of its aliases. */
export function trafficKindByAlias(alias: string): TrafficKind | undefined {
  return TRAFFIC_KINDS.find((kind) => kind.aliases.includes(alias));
}

export function trafficKind(plural: string): TrafficKind | undefined {
  return TRAFFIC_KINDS.find((kind) => kind.plural === plural);
}

/** The kind whose resources the given label names (namespace, pod, deployment…). */
export function kindOfLabel(label: string): TrafficKind | undefined {
  return TRAFFIC_KINDS.find((kind) => kind.label === label);
}
