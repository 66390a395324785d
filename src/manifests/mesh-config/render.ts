// The mesh configuration as Kubernetes stores it: ConfigMap meshconfig (key meshconfig.json, the
// full configuration) and the MeshConfig resource with its MeshConfigClass (the settings that can
// change at runtime). Printing only: every decision was made by buildMeshConfig. Pure.
import {
  MESH_CONFIG_API_VERSION,
  MESH_CONFIG_CLASS_SUFFIX,
  MESH_CONFIG_CONTROLLER_NAME,
  MESH_CONFIG_MAP_KEY,
  MESH_CONFIG_MAP_NAME,
  MESH_CONFIG_MAP_TRANSPARENT_KEY,
  MESH_CONFIG_RESOURCE_NAME,
  PART_OF_LABEL,
  PART_OF_VALUE,
} from '../constants';

const labels = { [PART_OF_LABEL]: PART_OF_VALUE };
import type { FullMeshConfig, MeshConfigTelemetry } from './types';

/** The telemetry object with its keys in NGINX Service Mesh's order; {} when tracing is off. */
function orderedTelemetry(telemetry: MeshConfigTelemetry): Record<string, unknown> {
  const otlp = telemetry.exporters?.otlp;
  return {
    ...(otlp === undefined
      ? {}
      : {
          exporters: {
            otlp: {
              host: otlp.host,
              port: otlp.port,
              ...(otlp.protocol === undefined ? {} : { protocol: otlp.protocol }),
            },
          },
        }),
    ...(telemetry.samplerRatio === undefined ? {} : { samplerRatio: telemetry.samplerRatio }),
  };
}

/** FullMeshConfig with its keys in NGINX Service Mesh's order, this mesh's additions last. */
function orderedMeshConfig(config: FullMeshConfig): Record<string, unknown> {
  const { mtls, registry } = config;
  return {
    mtls: {
      mode: mtls.mode,
      caKeyType: mtls.caKeyType,
      caTTL: mtls.caTTL,
      svidTTL: mtls.svidTTL,
      trustDomain: mtls.trustDomain,
      persistentStorage: mtls.persistentStorage,
      spireServerKeyManager: mtls.spireServerKeyManager,
    },
    accessControlMode: config.accessControlMode,
    clientMaxBodySize: config.clientMaxBodySize,
    environment: config.environment,
    namespace: config.namespace,
    nginxErrorLogLevel: config.nginxErrorLogLevel,
    nginxLBMethod: config.nginxLBMethod,
    nginxLogFormat: config.nginxLogFormat,
    prometheusAddress: config.prometheusAddress,
    registry: {
      server: registry.server,
      imageTag: registry.imageTag,
      imagePullPolicy: registry.imagePullPolicy,
      sidecarImage: registry.sidecarImage,
      sidecarInitImage: registry.sidecarInitImage,
      registryKeyName: registry.registryKeyName,
      disablePublicImages: registry.disablePublicImages,
      controllerImage: registry.controllerImage,
      metricsImage: registry.metricsImage,
    },
    telemetry: orderedTelemetry(config.telemetry),
    enableUDP: config.enableUDP,
    transparent: config.transparent,
  };
}

/** meshconfig.json: 2-space indented JSON in NGINX Service Mesh's key order, ending in a newline. */
export function renderMeshConfigJson(config: FullMeshConfig): string {
  return `${JSON.stringify(orderedMeshConfig(config), null, 2)}\n`;
}

/** ConfigMap meshconfig: the full configuration, and "transparent" ("true" while removing). */
export function buildMeshConfigMap(config: FullMeshConfig, namespace: string): object {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: MESH_CONFIG_MAP_NAME, namespace, labels },
    data: {
      [MESH_CONFIG_MAP_KEY]: renderMeshConfigJson(config),
      [MESH_CONFIG_MAP_TRANSPARENT_KEY]: String(config.transparent),
    },
  };
}

/** Name of the mesh's MeshConfigClass: <namespace>-meshconfig-class. */
export function meshConfigClassName(namespace: string): string {
  return `${namespace}${MESH_CONFIG_CLASS_SUFFIX}`;
}

/** MeshConfig nginx-mesh-config: the settings that can be changed at runtime (kubectl edit). */
export function buildMeshConfigResource(config: FullMeshConfig, namespace: string): object {
  const telemetry = orderedTelemetry(config.telemetry);
  return {
    apiVersion: MESH_CONFIG_API_VERSION,
    kind: 'MeshConfig',
    metadata: { name: MESH_CONFIG_RESOURCE_NAME, namespace, labels },
    spec: {
      meshConfigClassName: meshConfigClassName(namespace),
      accessControlMode: config.accessControlMode,
      clientMaxBodySize: config.clientMaxBodySize,
      mtls: {
        mode: config.mtls.mode,
        caKeyType: config.mtls.caKeyType,
        caTTL: config.mtls.caTTL,
        svidTTL: config.mtls.svidTTL,
      },
      nginxErrorLogLevel: config.nginxErrorLogLevel,
      nginxLBMethod: config.nginxLBMethod,
      nginxLogFormat: config.nginxLogFormat,
      prometheusAddress: config.prometheusAddress,
      ...(Object.keys(telemetry).length === 0 ? {} : { telemetry }),
    },
  };
}

/** MeshConfigClass (cluster-scoped) binding the mesh's MeshConfig to its controller. */
export function buildMeshConfigClassResource(namespace: string): object {
  return {
    apiVersion: MESH_CONFIG_API_VERSION,
    kind: 'MeshConfigClass',
    metadata: { name: meshConfigClassName(namespace), labels },
    spec: { controllerName: MESH_CONFIG_CONTROLLER_NAME },
  };
}
