// A sidecar's Prometheus exposition (SIDECAR_METRICS_PORT, SIDECAR_METRICS_PATH), read from the
// host as the mesh's Prometheus scrapes it, and summed over the series a test asks about.
import { SIDECAR_METRICS_PATH, SIDECAR_METRICS_PORT } from '../../../src/manifests/constants';

/** One sample: a series name, its labels and its value. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of the Prometheus text format (comments left out). */
export function parseExposition(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const match = SAMPLE.exec(line);
    if (match?.[1] === undefined || match[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL))
      if (key !== undefined) labels[key] = (value ?? '').replace(/\\(.)/g, '$1');
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** What the sidecar of the pod with this address exports now. */
export async function sidecarMetrics(podIP: string): Promise<MetricSample[]> {
  const response = await fetch(`http://${podIP}:${SIDECAR_METRICS_PORT}${SIDECAR_METRICS_PATH}`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 200) throw new Error(`metrics of ${podIP} answered ${response.status}`);
  return parseExposition(await response.text());
}

/** The sum of the samples of name whose labels include every given one. */
export function sumOf(
  samples: readonly MetricSample[],
  name: string,
  labels: Record<string, string>,
): number {
  return samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The series of name whose labels include every given one, as `{labels} value` lines, for a failure's message. */
export function seriesText(
  samples: readonly MetricSample[],
  name: string,
  labels: Record<string, string> = {},
): string {
  return samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .map((sample) => `${JSON.stringify(sample.labels)} ${sample.value}`)
    .join('\n');
}
