// Instant queries against the Prometheus HTTP API (GET /api/v1/query).
import { MeshctlError } from '../../errors';
import type { PromSample } from '../../manifests/traffic-metrics/build';

/** Prometheus could not answer: unreachable, timed out, or it rejected the query. */
export class PrometheusError extends MeshctlError {
  constructor(
    message: string,
    /** True when Prometheus was not reached (or answered 5xx), false when it rejected the query. */
    readonly unavailable: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

export interface PrometheusClient {
  /** Base URL of the HTTP API, as configured. */
  readonly address: string;
  /** Evaluates promql at the given instant; resolves to the instant vector. */
  query(promql: string, at: Date): Promise<PromSample[]>;
}

/** Answers of an instant query are small; a larger one is refused rather than buffered. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

interface QueryResponse {
  status?: string;
  error?: string;
  data?: {
    resultType?: string;
    result?: { metric?: Record<string, string>; value?: [number, string] }[];
  };
}

function sampleValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

function toSamples(body: QueryResponse, address: string): PromSample[] {
  if (body.status !== 'success' || body.data?.resultType !== 'vector') {
    throw new PrometheusError(
      `Prometheus at ${address} did not answer with an instant vector: ${body.error ?? body.data?.resultType ?? 'no data'}`,
      false,
    );
  }
  return (body.data.result ?? []).map((entry) => ({
    labels: entry.metric ?? {},
    value: sampleValue(entry.value?.[1] ?? 'NaN'),
  }));
}

async function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  const transport =
    url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = transport.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`answer over ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
  });
}

export function createPrometheusClient(address: string, timeoutMs: number): PrometheusClient {
  return {
    address,
    async query(promql, at) {
      const url = new URL(`${address}/api/v1/query`);
      url.searchParams.set('query', promql);
      url.searchParams.set('time', (at.getTime() / 1000).toFixed(3));
      let response: { status: number; body: string };
      try {
        response = await get(url, timeoutMs);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new PrometheusError(`unable to reach Prometheus at ${address}: ${reason}`, true, {
          cause: error,
        });
      }
      let body: QueryResponse;
      try {
        body = JSON.parse(response.body) as QueryResponse;
      } catch (error) {
        throw new PrometheusError(
          `Prometheus at ${address} answered ${response.status} without JSON`,
          response.status >= 500 || response.status === 0,
          { cause: error },
        );
      }
      if (response.status >= 500) {
        throw new PrometheusError(
          `Prometheus at ${address} answered ${response.status}: ${body.error ?? ''}`,
          true,
        );
      }
      return toSamples(body, address);
    },
  };
}
