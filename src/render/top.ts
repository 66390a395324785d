// `top`'s tables, as NGINX Service Mesh printed them: a summary per resource (success rates in
// each direction and the number of requests), or one resource's edges with latencies. Pure.
import { parseQuantity } from '../manifests/traffic-metrics/quantity';
import type { TrafficKind } from '../manifests/traffic-metrics/kinds';
import type { TrafficMetrics, TrafficMetricsList } from '../manifests/traffic-metrics/types';
import { renderTable } from './table';

/** Shown where a resource had no traffic in one direction. */
const NO_TRAFFIC = '-';

function metricValue(item: TrafficMetrics, name: string): number {
  const text = item.metrics.find((metric) => metric.name === name)?.value;
  return text === undefined ? 0 : (parseQuantity(text) ?? 0);
}

function counts(item: TrafficMetrics): { success: number; failure: number } {
  return {
    success: metricValue(item, 'success_count'),
    failure: metricValue(item, 'failure_count'),
  };
}

/** NSM's "%.2f%%"; NaN (no requests) prints as "<nil>". */
function successRate(success: number, failure: number): string {
  const total = success + failure;
  return total === 0 ? '<nil>' : `${((success / total) * 100).toFixed(2)}%`;
}

/** A latency quantity as whole milliseconds, rounded up ("2969m" → "3ms"). */
function latency(item: TrafficMetrics, name: string): string {
  return `${Math.ceil(metricValue(item, name))}ms`;
}

interface Totals {
  incoming?: { success: number; failure: number };
  outgoing?: { success: number; failure: number };
}

function add(
  into: { success: number; failure: number } | undefined,
  more: { success: number; failure: number },
): { success: number; failure: number } {
  return {
    success: (into?.success ?? 0) + more.success,
    failure: (into?.failure ?? 0) + more.failure,
  };
}

/** The summary table of one kind: a row per resource, in name order, then a blank line. */
export function renderTopSummary(kind: TrafficKind, list: TrafficMetricsList): string {
  const byName = new Map<string, Totals>();
  for (const item of list.items) {
    const totals = byName.get(item.metadata.name) ?? {};
    if (item.edge.direction === 'to') totals.outgoing = add(totals.outgoing, counts(item));
    else totals.incoming = add(totals.incoming, counts(item));
    byName.set(item.metadata.name, totals);
  }
  const rate = (side: { success: number; failure: number } | undefined): string =>
    side === undefined ? NO_TRAFFIC : successRate(side.success, side.failure);
  const rows = [[kind.kind, 'Incoming Success', 'Outgoing Success', 'NumRequests']];
  for (const name of [...byName.keys()].sort()) {
    const totals = byName.get(name) ?? {};
    const requests = [totals.incoming, totals.outgoing].reduce(
      (sum, side) => sum + (side === undefined ? 0 : side.success + side.failure),
      0,
    );
    rows.push([name, rate(totals.incoming), rate(totals.outgoing), String(requests)]);
  }
  return `${renderTable(rows)}\n`;
}

function peerName(item: TrafficMetrics): string {
  const peer = item.edge.resource;
  if (peer.name === undefined)
    return peer.namespace === undefined ? '<unknown>' : `${peer.namespace}/<unknown>`;
  if (peer.namespace === undefined || peer.namespace === item.resource.namespace) return peer.name;
  return `${peer.namespace}/${peer.name}`;
}

/** One resource's edges: a header, the resource's name, then a row per peer and a blank line. */
export function renderTopEdges(kind: TrafficKind, name: string, list: TrafficMetricsList): string {
  const rows = [
    [kind.kind, 'Direction', 'Resource', 'Success Rate', 'P99', 'P90', 'P50', 'NumRequests'],
    [name, '', '', '', '', '', '', ''],
  ];
  for (const item of list.items) {
    const { success, failure } = counts(item);
    rows.push([
      '',
      item.edge.direction === 'to' ? 'To' : 'From',
      peerName(item),
      successRate(success, failure),
      latency(item, 'p99_response_latency'),
      latency(item, 'p90_response_latency'),
      latency(item, 'p50_response_latency'),
      String(success + failure),
    ]);
  }
  return `${renderTable(rows)}\n`;
}
