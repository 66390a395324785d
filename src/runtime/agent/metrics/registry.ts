// The sidecar's request metrics as the agent keeps them between scrapes: one series per label
// set, each a request counter and a duration histogram, bounded in number, printed in the
// Prometheus text exposition format (version 0.0.4). Pure: observations in, text out.
import {
  SIDECAR_DURATION_BUCKETS_MS,
  SIDECAR_DURATION_METRIC,
  SIDECAR_REQUESTS_METRIC,
} from '../../../manifests/constants';
import type { Labels } from './peers';

/** Most series a registry keeps before new label sets go to their overflow series. */
export const MAX_SERIES = 2_000;

/** Counter of access-log lines the agent could not read. */
export const ACCESS_LOG_DROPPED_METRIC = 'nginx_mesh_access_log_dropped_total';

/** How a registry bounds and buckets its series. */
export interface RegistryOptions {
  /** Series kept before new label sets are folded into overflow series (MAX_SERIES). */
  readonly maxSeries: number;
  /** Upper bounds (ms) of the histogram buckets, ascending; +Inf is implied. */
  readonly bucketsMs: readonly number[];
  /** The series a label set joins once maxSeries are kept; bounded in number by design. */
  readonly overflow: (labels: Labels) => Labels;
}

interface Series {
  /** The label set printed as `name="value",…`. */
  readonly text: string;
  count: number;
  sumMs: number;
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

/** Request counters and duration histograms by label set, bounded; survives nginx reloads. */
export class RequestRegistry {
  private readonly series = new Map<string, Series>();
  private kept = 0;
  private droppedLines = 0;

  constructor(private readonly options: RegistryOptions) {}

  /** Counts one request of this label set and duration (ms). */
  observe(labels: Labels, durationMs: number): void {
    let text = labelText(labels);
    let series = this.series.get(text);
    if (series === undefined) {
      if (this.kept >= this.options.maxSeries) {
        text = labelText(this.options.overflow(labels));
        series = this.series.get(text);
      } else {
        this.kept += 1;
      }
      if (series === undefined) {
        series = {
          text,
          count: 0,
          sumMs: 0,
          buckets: new Array<number>(this.options.bucketsMs.length + 1).fill(0),
        };
        this.series.set(text, series);
      }
    }
    series.count += 1;
    series.sumMs += durationMs;
    const bounds = this.options.bucketsMs;
    let index = 0;
    while (index < bounds.length && durationMs > (bounds[index] ?? Infinity)) index += 1;
    series.buckets[index] = (series.buckets[index] ?? 0) + 1;
  }

  /** Counts a line that was not an access-log record. */
  drop(): void {
    this.droppedLines += 1;
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
    const bounds = [...this.options.bucketsMs.map(number), '+Inf'];
    const lines: string[] = [
      `# HELP ${SIDECAR_REQUESTS_METRIC} HTTP requests the sidecar proxied, counted when the response completes.`,
      `# TYPE ${SIDECAR_REQUESTS_METRIC} counter`,
      ...all.map((series) => `${SIDECAR_REQUESTS_METRIC}{${series.text}} ${series.count}`),
      `# HELP ${SIDECAR_DURATION_METRIC} Time from the request to the last byte of the response, in milliseconds.`,
      `# TYPE ${SIDECAR_DURATION_METRIC} histogram`,
    ];
    for (const series of all) {
      let cumulative = 0;
      bounds.forEach((bound, index) => {
        cumulative += series.buckets[index] ?? 0;
        lines.push(`${SIDECAR_DURATION_METRIC}_bucket{${series.text},le="${bound}"} ${cumulative}`);
      });
      lines.push(`${SIDECAR_DURATION_METRIC}_sum{${series.text}} ${number(series.sumMs)}`);
      lines.push(`${SIDECAR_DURATION_METRIC}_count{${series.text}} ${series.count}`);
    }
    lines.push(
      `# HELP ${ACCESS_LOG_DROPPED_METRIC} Access-log lines the agent received but could not read.`,
      `# TYPE ${ACCESS_LOG_DROPPED_METRIC} counter`,
      `${ACCESS_LOG_DROPPED_METRIC} ${this.droppedLines}`,
    );
    return `${lines.join('\n')}\n`;
  }
}

/** A registry with the documented buckets and bound (docs/metrics.md). */
export function createRequestRegistry(overflow: (labels: Labels) => Labels): RequestRegistry {
  return new RequestRegistry({
    maxSeries: MAX_SERIES,
    bucketsMs: SIDECAR_DURATION_BUCKETS_MS,
    overflow,
  });
}
