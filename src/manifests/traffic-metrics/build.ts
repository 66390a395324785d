// Prometheus results → SMI TrafficMetrics objects. Deterministic: items are sorted, and a
// resource without requests in the window has no item. Pure.
import {
  METRIC_DESTINATION_PREFIX,
  METRIC_DIRECTION_OUTBOUND,
  METRIC_LABEL_DIRECTION,
  METRIC_LABEL_NAMESPACE,
  METRIC_SOURCE_PREFIX,
  TRAFFIC_METRICS_GROUP,
  TRAFFIC_METRICS_VERSION,
} from '../constants';
import { formatDuration } from '../duration';
import { kindOfLabel } from './kinds';
import type { TrafficKind } from './kinds';
import { peerLabels, TRAFFIC_METRIC_NAMES } from './promql';
import type { TrafficMetricName } from './promql';
import { formatQuantity } from './quantity';
import type {
  EdgeDirection,
  ObjectReference,
  TrafficMetrics,
  TrafficMetricsList,
  TrafficQuery,
} from './types';

export const TRAFFIC_TRAFFIC_METRICS_VERSION = `${TRAFFIC_METRICS_GROUP}/${TRAFFIC_METRICS_VERSION}`;
export const TRAFFIC_METRICS_BASE_PATH = `/apis/${TRAFFIC_TRAFFIC_METRICS_VERSION}`;

/** One element of a Prometheus instant vector. */
export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type TrafficResults = Readonly<Record<TrafficMetricName, readonly PromSample[]>>;

interface Row {
  readonly labels: Readonly<Record<string, string>>;
  readonly values: Partial<Record<TrafficMetricName, number>>;
}

/** Joins the five results on the grouping labels. */
function joinResults(groupBy: readonly string[], results: TrafficResults): Row[] {
  const rows = new Map<string, Row>();
  for (const name of TRAFFIC_METRIC_NAMES) {
    for (const sample of results[name]) {
      const labels = Object.fromEntries(
        groupBy.map((label) => [label, sample.labels[label] ?? '']),
      );
      const key = JSON.stringify(groupBy.map((label) => labels[label]));
      const row = rows.get(key) ?? { labels, values: {} };
      row.values[name] = sample.value;
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}

function counts(row: Row): { success: number; failure: number } {
  return {
    success: Math.max(0, Math.round(row.values.success_count ?? 0)),
    failure: Math.max(0, Math.round(row.values.failure_count ?? 0)),
  };
}

function metricsOf(row: Row): TrafficMetrics['metrics'] {
  const { success, failure } = counts(row);
  const latency = (name: TrafficMetricName): { name: string; unit: string; value: string } => ({
    name,
    unit: 'ms',
    value: formatQuantity(row.values[name] ?? Number.NaN),
  });
  return [
    latency('p99_response_latency'),
    latency('p90_response_latency'),
    latency('p50_response_latency'),
    { name: 'success_count', value: formatQuantity(success) },
    { name: 'failure_count', value: formatQuantity(failure) },
  ];
}

function directionOf(row: Row): EdgeDirection {
  return row.labels[METRIC_LABEL_DIRECTION] === METRIC_DIRECTION_OUTBOUND ? 'to' : 'from';
}

/** Path of one resource's TrafficMetrics. */
export function trafficSelfLink(
  kind: TrafficKind,
  namespace: string | undefined,
  name: string,
): string {
  const scope = kind.namespaced && namespace !== undefined ? `/namespaces/${namespace}` : '';
  return `${TRAFFIC_METRICS_BASE_PATH}${scope}/${kind.plural}/${name}`;
}

/** The peer an edge row names: the first peer label with a value gives its kind. */
function peerOf(row: Row, query: TrafficQuery): ObjectReference {
  const prefix = directionOf(row) === 'to' ? METRIC_DESTINATION_PREFIX : METRIC_SOURCE_PREFIX;
  const namespace = row.labels[`${prefix}${METRIC_LABEL_NAMESPACE}`] ?? '';
  const named = peerLabels(query.kind)
    .filter((label) => label !== METRIC_LABEL_NAMESPACE || query.kind.plural === 'namespaces')
    .find((label) => (row.labels[`${prefix}${label}`] ?? '') !== '');
  const kind = named === undefined ? undefined : kindOfLabel(named);
  if (named === undefined || kind === undefined) return namespace === '' ? {} : { namespace };
  const name = row.labels[`${prefix}${named}`] ?? '';
  return kind.namespaced ? { kind: kind.kind, namespace, name } : { kind: kind.kind, name };
}

/** The resource a row is about: the queried one, or (lists) the one its labels name. */
function resourceOf(row: Row, query: TrafficQuery): ObjectReference & { kind: string } {
  const { kind } = query;
  const name = query.name ?? row.labels[kind.label] ?? '';
  if (!kind.namespaced) return { kind: kind.kind, name };
  const namespace = query.namespace ?? row.labels[METRIC_LABEL_NAMESPACE] ?? '';
  return { kind: kind.kind, namespace, name };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortKey(item: TrafficMetrics): string {
  const peer = item.edge.resource;
  return [
    item.resource.namespace ?? '',
    item.resource.name ?? '',
    item.edge.direction,
    peer.namespace ?? '',
    peer.kind ?? '',
    peer.name ?? '',
  ].join('\u0000');
}

/** RFC 3339 with whole seconds, as Kubernetes writes timestamps. */
function timestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The TrafficMetrics items of a query, sorted by resource, direction and peer. */
export function buildTrafficItems(
  query: TrafficQuery,
  groupBy: readonly string[],
  results: TrafficResults,
  now: Date,
): TrafficMetrics[] {
  const items = joinResults(groupBy, results)
    .filter((row) => {
      const { success, failure } = counts(row);
      return success + failure > 0;
    })
    .map((row): TrafficMetrics => {
      const resource = resourceOf(row, query);
      const selfLink =
        trafficSelfLink(query.kind, resource.namespace, resource.name ?? '') +
        (query.scope === 'edges' ? '/edges' : '');
      return {
        kind: 'TrafficMetrics',
        apiVersion: TRAFFIC_TRAFFIC_METRICS_VERSION,
        metadata: {
          name: resource.name ?? '',
          ...(resource.namespace === undefined ? {} : { namespace: resource.namespace }),
          selfLink,
          creationTimestamp: timestamp(now),
        },
        timestamp: timestamp(now),
        window: formatDuration(query.windowMs),
        resource,
        edge: {
          direction: directionOf(row),
          resource: query.scope === 'edges' ? peerOf(row, query) : {},
        },
        metrics: metricsOf(row),
      };
    });
  return items.sort((a, b) => compareText(sortKey(a), sortKey(b)));
}

/** A TrafficMetricsList for a list or edges query; selfLink is the request's path. */
export function buildTrafficList(
  query: TrafficQuery,
  items: readonly TrafficMetrics[],
  selfLink: string,
): TrafficMetricsList {
  const { kind } = query;
  let resource: ObjectReference;
  if (query.scope === 'edges') resource = resourceOf({ labels: {}, values: {} }, query);
  else
    resource =
      query.namespace === undefined
        ? { kind: kind.kind }
        : { kind: kind.kind, namespace: query.namespace };
  return {
    kind: 'TrafficMetricsList',
    apiVersion: TRAFFIC_TRAFFIC_METRICS_VERSION,
    metadata: { selfLink },
    resource,
    items,
  };
}
