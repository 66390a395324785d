// The mesh-wide settings of a snapshot: the ConfigMap's (install-time and transparent), with the
// runtime fields of MeshConfig nginx-mesh-config laid over them. A MeshConfig field of the wrong
// value is ignored with a warning and the ConfigMap's value stays, so a bad edit never takes the
// mesh's configuration away. Pure.
import {
  ACCESS_CONTROL_MODES,
  CLIENT_MAX_BODY_SIZE_PATTERN,
  MTLS_MODES,
  NGINX_ERROR_LOG_LEVELS,
  NGINX_LB_METHODS,
  NGINX_LOG_FORMATS,
} from '../mesh-config/deploy-flags';
import { lbMethodFallbackWarning, openSourceLbMethod } from '../mesh-config/lb-method';
import { MESH_CONFIG_RESOURCE_NAME } from '../constants';
import { objectOf } from './kube-objects';
import type { KubeObject } from './kube-objects';
import { telemetryOf } from './telemetry';
import type { SnapshotMesh, SnapshotTelemetry } from './types';

const WHERE = `MeshConfig ${MESH_CONFIG_RESOURCE_NAME}`;

/** `base` with the MeshConfig's valid runtime fields; a warning per invalid one. */
export function buildMeshSettings(
  base: SnapshotMesh,
  meshConfig: KubeObject | undefined,
  warnings: string[],
): SnapshotMesh {
  if (meshConfig === undefined) return base;
  const spec = objectOf(meshConfig.spec);
  const mtls = objectOf(spec.mtls);
  const pick = <T extends string>(
    field: string,
    value: unknown,
    valid: readonly T[],
  ): T | undefined => {
    if (value === undefined) return undefined;
    const found = valid.find((candidate) => candidate === value);
    if (found === undefined) {
      warnings.push(
        `${WHERE} ${field} ${JSON.stringify(value)}: expected one of ${valid.join(', ')}; keeping the current value`,
      );
    }
    return found;
  };
  const lbMethod = pick('spec.nginxLBMethod', spec.nginxLBMethod, NGINX_LB_METHODS);
  if (lbMethod !== undefined) {
    const fallback = lbMethodFallbackWarning(lbMethod, `${WHERE} spec.nginxLBMethod`);
    if (fallback !== undefined) warnings.push(fallback);
  }
  return {
    mtlsMode: pick('spec.mtls.mode', mtls.mode, MTLS_MODES) ?? base.mtlsMode,
    accessControlMode:
      pick('spec.accessControlMode', spec.accessControlMode, ACCESS_CONTROL_MODES) ??
      base.accessControlMode,
    lbMethod: lbMethod === undefined ? base.lbMethod : openSourceLbMethod(lbMethod),
    clientMaxBodySize: bodySize(spec.clientMaxBodySize, warnings) ?? base.clientMaxBodySize,
    errorLogLevel:
      pick('spec.nginxErrorLogLevel', spec.nginxErrorLogLevel, NGINX_ERROR_LOG_LEVELS) ??
      base.errorLogLevel,
    logFormat:
      pick('spec.nginxLogFormat', spec.nginxLogFormat, NGINX_LOG_FORMATS) ?? base.logFormat,
    ...telemetrySetting(base.telemetry, spec.telemetry, warnings),
    trustDomain: base.trustDomain,
    transparent: base.transparent,
  };
}

/**
 * MeshConfig's telemetry when it has one ({} turns tracing off), else the ConfigMap's; an invalid
 * one is ignored with a warning.
 */
function telemetrySetting(
  base: SnapshotTelemetry | undefined,
  value: unknown,
  warnings: string[],
): { telemetry?: SnapshotTelemetry } {
  if (value === undefined) return base === undefined ? {} : { telemetry: base };
  const outcome = telemetryOf(value);
  if ('problem' in outcome) {
    warnings.push(`${WHERE} spec.${outcome.problem}; keeping the current value`);
    return base === undefined ? {} : { telemetry: base };
  }
  return outcome.telemetry === undefined ? {} : { telemetry: outcome.telemetry };
}

function bodySize(value: unknown, warnings: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && CLIENT_MAX_BODY_SIZE_PATTERN.test(value)) return value;
  warnings.push(
    `${WHERE} spec.clientMaxBodySize ${JSON.stringify(value)}: expected a size such as 1m, 64k or 0; keeping the current value`,
  );
  return undefined;
}
