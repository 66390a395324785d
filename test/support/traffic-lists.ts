// TrafficMetricsLists as the metrics API answers them, built by the same pure code from samples.
import { buildTrafficItems, buildTrafficList } from '../../src/manifests/traffic-metrics/build';
import type { TrafficResults } from '../../src/manifests/traffic-metrics/build';
import { trafficKind } from '../../src/manifests/traffic-metrics/kinds';
import { buildTrafficQueries } from '../../src/manifests/traffic-metrics/promql';
import type { TrafficMetricsList, TrafficQuery } from '../../src/manifests/traffic-metrics/types';

/** One row of samples: the grouping labels, then p99, p90, p50 (ms), successes and failures. */
export type SampleRow = readonly [Record<string, string>, number, number, number, number, number];

export function trafficList(
  plural: string,
  scope: TrafficQuery['scope'],
  target: { namespace?: string; name?: string },
  rows: readonly SampleRow[],
): TrafficMetricsList {
  const kind = trafficKind(plural);
  if (kind === undefined) throw new Error(`unknown kind ${plural}`);
  const query: TrafficQuery = {
    scope,
    kind,
    ...target,
    namespace: target.namespace,
    name: target.name,
    windowMs: 30_000,
  };
  const { groupBy } = buildTrafficQueries(query);
  const column = (index: 1 | 2 | 3 | 4 | 5): TrafficResults['success_count'] =>
    rows.map((row) => ({ labels: row[0], value: row[index] }));
  const results: TrafficResults = {
    p99_response_latency: column(1),
    p90_response_latency: column(2),
    p50_response_latency: column(3),
    success_count: column(4),
    failure_count: column(5),
  };
  const items = buildTrafficItems(query, groupBy, results, new Date('2026-01-02T03:04:05Z'));
  return buildTrafficList(query, items, 'self');
}
