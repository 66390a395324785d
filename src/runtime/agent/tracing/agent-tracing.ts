// The agent's part in tracing: while the mesh configuration names an OTLP exporter, the spans
// nginx records are taken once a second (span-pump.ts) and exported in batches (exporter.ts) with
// this pod's resource attributes; a new exporter, protocol or ratio in MeshConfig applies with the
// next snapshot, without a restart, and no exporter turns export off. Counters of what was
// exported and dropped are printed with the sidecar's metrics.
import { SIDECAR_TRACE_PATH } from '../../../manifests/constants';
import type { MeshSnapshot, SnapshotTelemetry } from '../../../manifests/snapshot/types';
import type { Logger } from '../../role/log';
import { SpanExporter } from './exporter';
import type { OtlpEndpoint } from './exporter';
import type { SpanPump } from './span-pump';
import { startSpanPump } from './span-pump';
import type { TraceResource } from './span';

export const SPANS_EXPORTED_METRIC = 'nginx_mesh_spans_exported_total';
export const SPANS_DROPPED_METRIC = 'nginx_mesh_spans_dropped_total';
export const SPAN_EXPORT_FAILURES_METRIC = 'nginx_mesh_span_export_failures_total';
/** Spans the agent holds at most, queued or being sent: about a second of a busy sidecar's. */
const MAX_QUEUED_SPANS = 4096;

export interface AgentTracingOptions {
  /** nginx's stats socket, where the span zone is taken too. */
  readonly socketPath: string;
  readonly resource: TraceResource;
  /** This executable's version, the instrumentation scope's. */
  readonly version: string;
  readonly logger: Logger;
}

export interface AgentTracing {
  /** Starts, moves or stops export as the snapshot's telemetry says. */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** The counters, in Prometheus's text format. */
  exposition(): string;
  close(): Promise<void>;
}

/** The pod's resource attributes: its workload as service.name ("<kind>/<name>" from --owner). */
export function podResource(pod: {
  readonly namespace: string;
  readonly name: string;
  readonly owner: string;
}): TraceResource {
  const [kind = '', ownerName = ''] = pod.owner.split('/');
  const workload = ['deployment', 'statefulset', 'daemonset', 'replicaset', 'job', 'cronjob'];
  return {
    'service.name': ownerName || pod.name || 'unknown',
    ...(pod.namespace === '' ? {} : { 'k8s.namespace.name': pod.namespace }),
    ...(pod.name === '' ? {} : { 'k8s.pod.name': pod.name }),
    ...(workload.includes(kind.toLowerCase()) && ownerName !== ''
      ? { [`k8s.${kind.toLowerCase()}.name`]: ownerName }
      : {}),
  };
}

const endpointOf = (telemetry: SnapshotTelemetry): OtlpEndpoint => ({
  host: telemetry.host,
  port: telemetry.port,
  protocol: telemetry.protocol,
});

const describe = (endpoint: OtlpEndpoint | undefined): string =>
  endpoint === undefined
    ? 'off'
    : `OTLP/${endpoint.protocol === 'grpc' ? 'gRPC' : 'HTTP'} ${endpoint.host}:${endpoint.port}`;

export function startAgentTracing(options: AgentTracingOptions): AgentTracing {
  const exporter = new SpanExporter({
    resource: options.resource,
    scope: { name: 'nginx-meshctl', version: options.version },
    maxQueue: MAX_QUEUED_SPANS,
  });
  const pump: SpanPump = startSpanPump({
    socketPath: options.socketPath,
    path: SIDECAR_TRACE_PATH,
    add: (spans) => exporter.add(spans),
    room: () => MAX_QUEUED_SPANS - exporter.stats().queued,
  });
  let current: string = describe(undefined);
  return {
    applySnapshot(snapshot) {
      const telemetry = snapshot.mesh.telemetry;
      const endpoint = telemetry === undefined ? undefined : endpointOf(telemetry);
      exporter.configure(endpoint);
      pump.setActive(endpoint !== undefined);
      const next = describe(endpoint);
      if (next !== current) {
        options.logger.info('span export', {
          exporter: next,
          ...(telemetry === undefined ? {} : { samplerRatio: telemetry.samplerRatio }),
        });
        current = next;
      }
    },
    exposition() {
      const exported = exporter.stats();
      const pumped = pump.stats();
      return [
        `# HELP ${SPANS_EXPORTED_METRIC} Spans the OTLP exporter accepted.`,
        `# TYPE ${SPANS_EXPORTED_METRIC} counter`,
        `${SPANS_EXPORTED_METRIC} ${exported.exported}`,
        `# HELP ${SPANS_DROPPED_METRIC} Spans lost: nginx's span zone was full (stage nginx), or the agent's queue was full, export failed after its retries or was off (stage agent).`,
        `# TYPE ${SPANS_DROPPED_METRIC} counter`,
        `${SPANS_DROPPED_METRIC}{stage="nginx"} ${pumped.droppedInNginx}`,
        `${SPANS_DROPPED_METRIC}{stage="agent"} ${exported.dropped + pumped.unreadable + pumped.noRoom}`,
        `# HELP ${SPAN_EXPORT_FAILURES_METRIC} Batches of spans the exporter gave up on after its retries.`,
        `# TYPE ${SPAN_EXPORT_FAILURES_METRIC} counter`,
        `${SPAN_EXPORT_FAILURES_METRIC} ${exported.failedBatches}`,
        '',
      ].join('\n');
    },
    async close() {
      await pump.close();
      await pump.take();
      await exporter.stop();
    },
  };
}
