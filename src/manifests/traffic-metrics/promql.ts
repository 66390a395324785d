// The PromQL behind a Traffic Metrics answer, from the sidecar metric contract (docs/metrics.md).
// One query per metric; each groups by the same labels, so their results join on them. Pure.
import {
  METRIC_DESTINATION_PREFIX,
  METRIC_DIRECTION_INBOUND,
  METRIC_FAILURE_CODE,
  METRIC_LABEL_CODE,
  METRIC_LABEL_DIRECTION,
  METRIC_LABEL_NAMESPACE,
  METRIC_LABEL_POD,
  METRIC_OWNER_LABELS,
  METRIC_SOURCE_PREFIX,
  SIDECAR_DURATION_METRIC,
  SIDECAR_REQUESTS_METRIC,
} from '../constants';
import type { TrafficKind } from './kinds';
import type { TrafficQuery } from './types';

/** The metrics of a TrafficMetrics object, in the order SMI (and NSM's top) requires. */
export const TRAFFIC_METRIC_NAMES = [
  'p99_response_latency',
  'p90_response_latency',
  'p50_response_latency',
  'success_count',
  'failure_count',
] as const;
export type TrafficMetricName = (typeof TRAFFIC_METRIC_NAMES)[number];

const QUANTILES: Readonly<Record<string, number>> = {
  p99_response_latency: 0.99,
  p90_response_latency: 0.9,
  p50_response_latency: 0.5,
};

export interface TrafficQueries {
  /** The labels every query groups by; a result's values for them identify its item. */
  readonly groupBy: readonly string[];
  readonly queries: Readonly<Record<TrafficMetricName, string>>;
}

/** The labels that identify a peer of a resource of this kind, without the src_/dst_ prefix. */
export function peerLabels(kind: TrafficKind): readonly string[] {
  switch (kind.plural) {
    case 'namespaces':
      return [METRIC_LABEL_NAMESPACE];
    case 'pods':
      return [METRIC_LABEL_NAMESPACE, METRIC_LABEL_POD];
    case 'deployments':
    case 'statefulsets':
    case 'daemonsets':
      return [METRIC_LABEL_NAMESPACE, ...METRIC_OWNER_LABELS];
  }
}

function groupLabels(query: TrafficQuery): string[] {
  if (query.scope === 'edges') {
    const peers = peerLabels(query.kind);
    return [
      METRIC_LABEL_DIRECTION,
      ...peers.map((label) => `${METRIC_SOURCE_PREFIX}${label}`),
      ...peers.map((label) => `${METRIC_DESTINATION_PREFIX}${label}`),
    ];
  }
  const identity =
    query.kind.label === METRIC_LABEL_NAMESPACE
      ? [METRIC_LABEL_NAMESPACE]
      : [METRIC_LABEL_NAMESPACE, query.kind.label];
  return [...identity, METRIC_LABEL_DIRECTION];
}

/** A PromQL string literal. */
function literal(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function matchers(query: TrafficQuery): string[] {
  const result: string[] = [];
  const { kind } = query;
  if (kind.namespaced && query.namespace !== undefined) {
    result.push(`${METRIC_LABEL_NAMESPACE}=${literal(query.namespace)}`);
  }
  if (query.name === undefined) result.push(`${kind.label}!=""`);
  else result.push(`${kind.label}=${literal(query.name)}`);
  if (query.scope === 'get') {
    result.push(`${METRIC_LABEL_DIRECTION}=${literal(METRIC_DIRECTION_INBOUND)}`);
  }
  return result;
}

/** Builds the five queries answering a Traffic Metrics request. */
export function buildTrafficQueries(query: TrafficQuery): TrafficQueries {
  const groupBy = groupLabels(query);
  const by = groupBy.join(', ');
  const range = `[${Math.max(1, Math.round(query.windowMs))}ms]`;
  const selector = (extra: readonly string[]): string =>
    `{${[...matchers(query), ...extra].join(', ')}}`;
  const count = (codeMatcher: string): string =>
    `sum by (${by}) (increase(${SIDECAR_REQUESTS_METRIC}${selector([codeMatcher])}${range}))`;
  const buckets = `sum by (le, ${by}) (increase(${SIDECAR_DURATION_METRIC}_bucket${selector([])}${range}))`;
  const quantile = (name: string): string =>
    `histogram_quantile(${QUANTILES[name] ?? 0.5}, ${buckets})`;
  const failure = `${METRIC_LABEL_CODE}=${literal(METRIC_FAILURE_CODE)}`;
  const success = `${METRIC_LABEL_CODE}!=${literal(METRIC_FAILURE_CODE)}`;
  return {
    groupBy,
    queries: {
      p99_response_latency: quantile('p99_response_latency'),
      p90_response_latency: quantile('p90_response_latency'),
      p50_response_latency: quantile('p50_response_latency'),
      success_count: count(success),
      failure_count: count(failure),
    },
  };
}
