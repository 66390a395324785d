// The telemetry settings of a snapshot, read from the mesh configuration's telemetry object
// ({exporters: {otlp: {host, port, protocol?}}, samplerRatio}) as deploy stores it and MeshConfig
// holds it. Pure.
import { TELEMETRY_SAMPLER_RATIO_DEFAULT } from '../mesh-config/deploy-flags';
import { parseSamplerRatio } from '../mesh-config/telemetry';
import { OTLP_PROTOCOLS } from '../mesh-config/types';
import type { OtlpProtocol } from '../mesh-config/types';
import { objectOf } from './kube-objects';
import type { SnapshotTelemetry } from './types';

export type TelemetryOutcome =
  { readonly telemetry: SnapshotTelemetry | undefined } | { readonly problem: string };

/** The settings, undefined when tracing is off (no exporter), or what is wrong with them. */
export function telemetryOf(value: unknown): TelemetryOutcome {
  if (value === undefined || value === null) return { telemetry: undefined };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { problem: 'telemetry: expected an object' };
  }
  const telemetry = objectOf(value);
  if (telemetry.exporters === undefined) return { telemetry: undefined };
  const otlp = objectOf(objectOf(telemetry.exporters).otlp);
  const { host, port, protocol = 'grpc', samplerRatio } = { ...otlp, ...telemetry };
  if (typeof host !== 'string' || host === '') {
    return { problem: 'telemetry.exporters.otlp.host: expected a host name or address' };
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    return { problem: 'telemetry.exporters.otlp.port: expected a port from 1 to 65535' };
  }
  if (!(OTLP_PROTOCOLS as readonly unknown[]).includes(protocol)) {
    return { problem: 'telemetry.exporters.otlp.protocol: expected grpc or http' };
  }
  const ratio = ratioOf(samplerRatio);
  if (ratio === undefined) {
    return { problem: 'telemetry.samplerRatio: expected a number from 0 to 1' };
  }
  return {
    telemetry: { host, port, protocol: protocol as OtlpProtocol, samplerRatio: ratio },
  };
}

/** The stored ratio, NGINX Service Mesh's default when none is stored; undefined when invalid. */
function ratioOf(value: unknown): number | undefined {
  if (value === undefined) return parseSamplerRatio(TELEMETRY_SAMPLER_RATIO_DEFAULT);
  return typeof value === 'number' ? parseSamplerRatio(value) : undefined;
}
