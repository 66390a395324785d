// The mesh-wide settings a snapshot starts from, read from ConfigMap meshconfig (the full
// configuration deploy stored, and the "transparent" key remove sets). MeshConfig
// nginx-mesh-config then overrides its runtime fields when the snapshot is built. Pure.
import {
  DEFAULT_TRUST_DOMAIN,
  MESH_CONFIG_MAP_KEY,
  MESH_CONFIG_MAP_TRANSPARENT_KEY,
} from '../constants';
import {
  ACCESS_CONTROL_MODES,
  CLIENT_MAX_BODY_SIZE_PATTERN,
  LB_METHOD_DEFAULT,
  MTLS_MODES,
  NGINX_ERROR_LOG_LEVELS,
  NGINX_LB_METHODS,
  NGINX_LOG_FORMATS,
} from '../mesh-config/deploy-flags';
import { openSourceLbMethod } from '../mesh-config/lb-method';
import { objectOf } from './kube-objects';
import type { Json } from './kube-objects';
import { telemetryOf } from './telemetry';
import type { SnapshotMesh } from './types';

/** NGINX Service Mesh's defaults, used for whatever the ConfigMap lacks. */
export const DEFAULT_SNAPSHOT_MESH: SnapshotMesh = {
  mtlsMode: 'permissive',
  accessControlMode: 'allow',
  lbMethod: LB_METHOD_DEFAULT,
  clientMaxBodySize: '1m',
  errorLogLevel: 'warn',
  logFormat: 'default',
  trustDomain: DEFAULT_TRUST_DOMAIN,
  transparent: false,
};

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value)
    ? (value as T)
    : fallback;
}

export interface MeshBaseOutcome {
  readonly mesh: SnapshotMesh;
  /** What could not be read, one line each; the defaults stand in for it. */
  readonly problems: readonly string[];
}

/** The settings in ConfigMap meshconfig (the object as the API server returns it, or undefined). */
export function meshBaseFromConfigMap(configMap: unknown): MeshBaseOutcome {
  const data = objectOf(objectOf(configMap).data);
  const problems: string[] = [];
  let stored: Json = {};
  const text = data[MESH_CONFIG_MAP_KEY];
  if (typeof text !== 'string') {
    problems.push(`ConfigMap meshconfig has no ${MESH_CONFIG_MAP_KEY}; using the defaults`);
  } else {
    try {
      stored = objectOf(JSON.parse(text));
    } catch {
      problems.push(`ConfigMap meshconfig: ${MESH_CONFIG_MAP_KEY} is not JSON; using the defaults`);
    }
  }
  const mtls = objectOf(stored.mtls);
  const d = DEFAULT_SNAPSHOT_MESH;
  const trustDomain = typeof mtls.trustDomain === 'string' ? mtls.trustDomain : '';
  const telemetry = telemetryOf(stored.telemetry);
  if ('problem' in telemetry) {
    problems.push(`ConfigMap meshconfig: ${telemetry.problem}; tracing is off`);
  }
  return {
    mesh: {
      mtlsMode: oneOf(mtls.mode, MTLS_MODES, d.mtlsMode),
      accessControlMode: oneOf(stored.accessControlMode, ACCESS_CONTROL_MODES, d.accessControlMode),
      lbMethod: openSourceLbMethod(oneOf(stored.nginxLBMethod, NGINX_LB_METHODS, d.lbMethod)),
      clientMaxBodySize:
        typeof stored.clientMaxBodySize === 'string' &&
        CLIENT_MAX_BODY_SIZE_PATTERN.test(stored.clientMaxBodySize)
          ? stored.clientMaxBodySize
          : d.clientMaxBodySize,
      errorLogLevel: oneOf(stored.nginxErrorLogLevel, NGINX_ERROR_LOG_LEVELS, d.errorLogLevel),
      logFormat: oneOf(stored.nginxLogFormat, NGINX_LOG_FORMATS, d.logFormat),
      ...('telemetry' in telemetry && telemetry.telemetry !== undefined
        ? { telemetry: telemetry.telemetry }
        : {}),
      trustDomain: trustDomain === '' ? d.trustDomain : trustDomain,
      // Either place turns the sidecars transparent: remove patches the key, deploy the JSON.
      transparent: data[MESH_CONFIG_MAP_TRANSPARENT_KEY] === 'true' || stored.transparent === true,
    },
    problems,
  };
}
