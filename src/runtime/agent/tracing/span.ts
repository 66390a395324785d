// A span as the agent exports it: what nginx recorded (nginx-spans.ts), in OpenTelemetry's terms.
export type SpanAttribute = string | number | boolean;

export interface MeshSpan {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly kind: 'client' | 'server';
  readonly name: string;
  readonly startUnixNano: bigint;
  readonly endUnixNano: bigint;
  readonly status: 'unset' | 'ok' | 'error';
  readonly statusMessage?: string;
  readonly attributes: Readonly<Record<string, SpanAttribute>>;
}

/** The resource every span of one sidecar belongs to: service.name, k8s.pod.name, … */
export type TraceResource = Readonly<Record<string, string>>;
