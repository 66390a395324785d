// A span as the agent exports it: what nginx reports for one request it proxied, in the words of
// OpenTelemetry's trace model. The producer (nginx's side) and the exporter share only this.

export type SpanAttribute = string | number | boolean; // number: integer → intValue when Number.isInteger, else doubleValue
export interface MeshSpan {
  readonly traceId: string; // 32 lowercase hex
  readonly spanId: string; // 16 lowercase hex
  readonly parentSpanId?: string; // 16 lowercase hex
  readonly kind: 'client' | 'server';
  readonly name: string;
  readonly startUnixNano: bigint;
  readonly endUnixNano: bigint;
  readonly status: 'unset' | 'ok' | 'error';
  readonly statusMessage?: string;
  readonly attributes: Readonly<Record<string, SpanAttribute>>;
}
export type TraceResource = Readonly<Record<string, string>>; // service.name, k8s.pod.name, k8s.namespace.name, ...
