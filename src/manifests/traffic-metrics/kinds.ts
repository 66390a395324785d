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
}

const [deploymentLabel, statefulSetLabel, daemonSetLabel] = METRIC_OWNER_LABELS;

/** In NSM's discovery order. */
export const TRAFFIC_KINDS: readonly TrafficKind[] = [
  { plural: 'namespaces', kind: 'Namespace', namespaced: false, label: METRIC_LABEL_NAMESPACE },
  { plural: 'pods', kind: 'Pod', namespaced: true, label: METRIC_LABEL_POD },
  { plural: 'deployments', kind: 'Deployment', namespaced: true, label: deploymentLabel },
  { plural: 'statefulsets', kind: 'StatefulSet', namespaced: true, label: statefulSetLabel },
  { plural: 'daemonsets', kind: 'DaemonSet', namespaced: true, label: daemonSetLabel },
];

export function trafficKind(plural: string): TrafficKind | undefined {
  return TRAFFIC_KINDS.find((kind) => kind.plural === plural);
}

/** The kind whose resources the given label names (namespace, pod, deployment…). */
export function kindOfLabel(label: string): TrafficKind | undefined {
  return TRAFFIC_KINDS.find((kind) => kind.label === label);
}
