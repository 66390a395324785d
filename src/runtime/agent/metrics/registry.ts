// The sidecar's metrics as the agent keeps them between scrapes: one series per label set, each
// a counter and a duration histogram (and, for TCP connections, byte counters), bounded in
// number, printed in the Prometheus text exposition format (version 0.0.4). One registry per
// family: HTTP requests and TCP connections never share a series. nginx counts, the agent takes
// its counts and adds them here, so the totals survive nginx's reloads and restarts. Pure:
// counts in, text out.
import {
  SIDECAR_DURATION_BUCKETS_MS,
  SIDECAR_DURATION_METRIC,
  SIDECAR_REQUESTS_METRIC,
  SIDECAR_TCP_CONNECTIONS_METRIC,
  SIDECAR_TCP_DURATION_METRIC,
  SIDECAR_TCP_RECEIVED_BYTES_METRIC,
  SIDECAR_TCP_SENT_BYTES_METRIC,
} from '../../../manifests/constants';
import { classSiblings, type Labels } from './peers';

/** What nginx counted for one of its series since the agent's last take. */
export interface Counts {
  readonly count: number;
  readonly sumMs: number;
  /** Observations per bucket of the registry's bounds, not cumulative, the last one +Inf. */
  readonly buckets: readonly number[];
  /** TCP: bytes to the client of the server, and from it. */
  readonly sent?: number;
  readonly received?: number;
}

/** Most series a registry keeps before new label sets go to their overflow series. */
export const MAX_SERIES = 2_000;

/** Counter of series from nginx the agent could not read (keys or lines it does not know). */
export const STATS_UNREADABLE_METRIC = 'nginx_mesh_stats_unreadable_total';

/** A metric's name and the help text printed before it. */
export interface MetricName {
  readonly name: string;
  readonly help: string;
}

/** The names a registry prints its series under. */
export interface MetricFamily {
  /** Counter of observations. */
  readonly total: MetricName;
  /** Histogram of their durations, in milliseconds. */
  readonly duration: MetricName;
  /** Byte counters (TCP connections): to the client, and from it. */
  readonly bytes?: { readonly sent: MetricName; readonly received: MetricName };
  /** Whether it prints the counter of unreadable series (one family does). */
  readonly reportsDropped: boolean;
}

/** HTTP requests (docs/metrics.md). */
export const HTTP_FAMILY: MetricFamily = {
  total: {
    name: SIDECAR_REQUESTS_METRIC,
    help: 'HTTP requests the sidecar proxied, counted when the response completes.',
  },
  duration: {
    name: SIDECAR_DURATION_METRIC,
    help: 'Time from the request to the last byte of the response, in milliseconds.',
  },
  reportsDropped: true,
};

/** TCP connections (docs/metrics.md). */
export const TCP_FAMILY: MetricFamily = {
  total: {
    name: SIDECAR_TCP_CONNECTIONS_METRIC,
    help: 'TCP connections the sidecar proxied, counted when they close.',
  },
  duration: {
    name: SIDECAR_TCP_DURATION_METRIC,
    help: 'How long TCP connections lasted, in milliseconds.',
  },
  bytes: {
    sent: {
      name: SIDECAR_TCP_SENT_BYTES_METRIC,
      help: 'Bytes the sidecar sent to the client of TCP connections.',
    },
    received: {
      name: SIDECAR_TCP_RECEIVED_BYTES_METRIC,
      help: 'Bytes the sidecar received from the client of TCP connections.',
    },
  },
  reportsDropped: false,
};

/** How a registry names, bounds and buckets its series. */
export interface RegistryOptions {
  readonly family: MetricFamily;
  /** Series kept before new label sets are folded into overflow series (MAX_SERIES). */
  readonly maxSeries: number;
  /** Upper bounds (ms) of the histogram buckets, ascending; +Inf is implied. */
  readonly bucketsMs: readonly number[];
  /** The series a label set joins once maxSeries are kept; bounded in number by design. */
  readonly overflow: (labels: Labels) => Labels;
  /**
   * The label sets created at zero beside a new one. Prometheus's increase() and rate() take a
   * series' first sample as its start, so a failure series that appears only with the first
   * failure hides that failure; created with its success series, it shows it.
   */
  readonly zeroSiblings?: (labels: Labels) => readonly Labels[];
}

interface Series {
  /** The label set printed as `name="value",…`. */
  readonly text: string;
  count: number;
  sumMs: number;
  sentBytes: number;
  receivedBytes: number;
  /** Observations per bucket (not cumulative), the last one +Inf. */
  readonly buckets: number[];
}

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelText(labels: Labels): string {
  return labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',');
}

/** Prometheus prints floats this way: integers bare, +Inf spelled out. */
function number(value: number): string {
  if (value === Infinity) return '+Inf';
  return String(Math.round(value * 1000) / 1000);
}

/** Counters and duration histograms of one family by label set, bounded; survives nginx reloads. */
export class RequestRegistry {
  private readonly series = new Map<string, Series>();
  private kept = 0;
  private droppedLines = 0;

  constructor(private readonly options: RegistryOptions) {}

  /** The histogram's upper bounds, ms, ascending; +Inf is implied. */
  bounds(): readonly number[] {
    return this.options.bucketsMs;
  }

  /** Adds counts to this label set's series; their buckets must be this registry's. */
  add(labels: Labels, counts: Counts): void {
    const series = this.seriesOf(labels, true);
    series.count += counts.count;
    series.sumMs += counts.sumMs;
    series.sentBytes += counts.sent ?? 0;
    series.receivedBytes += counts.received ?? 0;
    counts.buckets.forEach((value, index) => {
      if (index < series.buckets.length)
        series.buckets[index] = (series.buckets[index] ?? 0) + value;
    });
  }

  /**
   * The series of a label set, created (or its overflow series, past the bound) on first use.
   * A new series brings its zero siblings (RegistryOptions.zeroSiblings) along, so that a
   * sibling's first observation is an increase Prometheus sees rather than its starting value.
   */
  private seriesOf(labels: Labels, withSiblings: boolean): Series {
    let text = labelText(labels);
    const known = this.series.get(text);
    if (known !== undefined) return known;
    let kept = labels;
    if (this.kept >= this.options.maxSeries) {
      kept = this.options.overflow(labels);
      text = labelText(kept);
      const overflow = this.series.get(text);
      if (overflow !== undefined) return overflow;
    } else {
      this.kept += 1;
    }
    const series: Series = {
      text,
      count: 0,
      sumMs: 0,
      sentBytes: 0,
      receivedBytes: 0,
      buckets: new Array<number>(this.options.bucketsMs.length + 1).fill(0),
    };
    this.series.set(text, series);
    if (withSiblings)
      for (const sibling of this.options.zeroSiblings?.(kept) ?? []) this.seriesOf(sibling, false);
    return series;
  }

  /** Counts series nginx reported that the agent could not read. */
  drop(count = 1): void {
    this.droppedLines += count;
  }

  /** How many label sets are kept (overflow series included). */
  size(): number {
    return this.series.size;
  }

  /** Every series in the text exposition format, sorted by labels. */
  render(): string {
    const all = [...this.series.values()].sort((a, b) =>
      a.text < b.text ? -1 : a.text > b.text ? 1 : 0,
    );
    const { family } = this.options;
    const lines: string[] = [
      ...counterLines(family.total, all, (series) => series.count),
      ...this.histogramLines(family.duration, all),
    ];
    if (family.bytes !== undefined)
      lines.push(
        ...counterLines(family.bytes.sent, all, (series) => series.sentBytes),
        ...counterLines(family.bytes.received, all, (series) => series.receivedBytes),
      );
    if (family.reportsDropped)
      lines.push(
        `# HELP ${STATS_UNREADABLE_METRIC} Counter series from nginx the agent could not read.`,
        `# TYPE ${STATS_UNREADABLE_METRIC} counter`,
        `${STATS_UNREADABLE_METRIC} ${this.droppedLines}`,
      );
    return `${lines.join('\n')}\n`;
  }

  private histogramLines(metric: MetricName, all: readonly Series[]): string[] {
    const bounds = [...this.options.bucketsMs.map(number), '+Inf'];
    const lines = [`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} histogram`];
    for (const series of all) {
      let cumulative = 0;
      bounds.forEach((bound, index) => {
        cumulative += series.buckets[index] ?? 0;
        lines.push(`${metric.name}_bucket{${series.text},le="${bound}"} ${cumulative}`);
      });
      lines.push(`${metric.name}_sum{${series.text}} ${number(series.sumMs)}`);
      lines.push(`${metric.name}_count{${series.text}} ${series.count}`);
    }
    return lines;
  }
}

function counterLines(
  metric: MetricName,
  all: readonly Series[],
  value: (series: Series) => number,
): string[] {
  return [
    `# HELP ${metric.name} ${metric.help}`,
    `# TYPE ${metric.name} counter`,
    ...all.map((series) => `${metric.name}{${series.text}} ${value(series)}`),
  ];
}

/** A registry of HTTP requests with the documented buckets and bound (docs/metrics.md). */
export function createRequestRegistry(overflow: (labels: Labels) => Labels): RequestRegistry {
  return new RequestRegistry({
    family: HTTP_FAMILY,
    maxSeries: MAX_SERIES,
    bucketsMs: SIDECAR_DURATION_BUCKETS_MS,
    overflow,
    zeroSiblings: classSiblings,
  });
}

/** A registry of TCP connections with the same buckets and bound as the HTTP one. */
export function createTcpRegistry(overflow: (labels: Labels) => Labels): RequestRegistry {
  return new RequestRegistry({
    family: TCP_FAMILY,
    maxSeries: MAX_SERIES,
    bucketsMs: SIDECAR_DURATION_BUCKETS_MS,
    overflow,
  });
}
