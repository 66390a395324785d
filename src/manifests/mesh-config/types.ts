// The mesh's full configuration: NGINX Service Mesh's FullMeshConfig (ConfigMap meshconfig, key
// meshconfig.json), field for field and in its order, so `config` prints what NGINX Service Mesh
// users know. Fields this mesh needs beyond it follow NGINX Service Mesh's fields in their object
// and are marked "Beyond NGINX Service Mesh". Credentials are never part of it (see MeshSecrets).
import type {
  AccessControlMode,
  Environment,
  MeshMtlsMode,
  MtlsCaKeyType,
  NginxErrorLogLevel,
  NginxLbMethod,
  NginxLogFormat,
  PersistentStorage,
  SpireServerKeyManager,
} from './deploy-flags';

export interface MeshConfigMtls {
  readonly mode: MeshMtlsMode;
  readonly caKeyType: MtlsCaKeyType;
  /** Whole hours, 24h to 999999h. */
  readonly caTTL: string;
  /** 1 to 999999 hours (h) or minutes (m). */
  readonly svidTTL: string;
  readonly trustDomain: string;
  /**
   * Beyond NGINX Service Mesh (a Helm value there): --persistent-storage as given, shown by
   * `config`. Nothing reads it: the registrar keeps its CA in a Secret whatever it says.
   */
  readonly persistentStorage: PersistentStorage;
  /**
   * Beyond NGINX Service Mesh (a Helm value there): --spire-server-key-manager as given. Nothing
   * reads it: the registrar keeps its CA keys in a Secret whatever it says.
   */
  readonly spireServerKeyManager: SpireServerKeyManager;
}

export interface MeshConfigRegistry {
  readonly server: string;
  readonly imageTag: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent';
  readonly sidecarImage: string;
  readonly sidecarInitImage: string;
  /** Name of the Secret with registry credentials; "" when deployed without credentials. */
  readonly registryKeyName: string;
  readonly disablePublicImages: boolean;
  /** Beyond NGINX Service Mesh: image of the controller, registrar and metrics roles. */
  readonly controllerImage: string;
  /** Beyond NGINX Service Mesh: image of the metrics role (the controller image unless overridden). */
  readonly metricsImage: string;
}

export interface OtlpExporter {
  readonly host: string;
  readonly port: number;
  /** OTLP over gRPC (NGINX Service Mesh's only choice, the default) or over HTTP/protobuf. */
  readonly protocol?: OtlpProtocol;
}

export const OTLP_PROTOCOLS = ['grpc', 'http'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** {} when tracing is off; otherwise an OTLP/gRPC exporter and the sampling ratio. */
export interface MeshConfigTelemetry {
  readonly exporters?: { readonly otlp: OtlpExporter };
  readonly samplerRatio?: number;
}

export interface FullMeshConfig {
  readonly mtls: MeshConfigMtls;
  readonly accessControlMode: AccessControlMode;
  readonly clientMaxBodySize: string;
  readonly environment: Environment;
  /** Namespace of the control plane. */
  readonly namespace: string;
  readonly nginxErrorLogLevel: NginxErrorLogLevel;
  /** The method the sidecars use: a least_time choice is stored as its open-source fallback. */
  readonly nginxLBMethod: NginxLbMethod;
  readonly nginxLogFormat: NginxLogFormat;
  /** <service-name>.<namespace>:<service-port>, an http(s) URL, or "". */
  readonly prometheusAddress: string;
  readonly registry: MeshConfigRegistry;
  readonly telemetry: MeshConfigTelemetry;
  readonly enableUDP: boolean;
  /** Set while the mesh is removed: every sidecar passes traffic through untouched. */
  readonly transparent: boolean;
}

/** Credentials for the registry: a user and password, or a JSON key (user "_json_key"). */
export type RegistryCredentials =
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | { readonly kind: 'key'; readonly key: string };

/** The upstream CA the registrar chains to: PEM texts read from --mtls-upstream-ca-conf's files. */
export interface DiskUpstreamAuthority {
  readonly type: 'disk';
  readonly cert: string;
  readonly key: string;
  /** "" when the configuration names no bundle. */
  readonly bundle: string;
}

/**
 * What deploy needs besides FullMeshConfig and must keep in Secrets, never in the ConfigMap:
 * registry credentials and the upstream CA's key.
 */
export interface MeshSecrets {
  readonly registry?: RegistryCredentials;
  readonly upstreamAuthority?: DiskUpstreamAuthority;
}

export type MeshConfigOutcome =
  | {
      readonly config: FullMeshConfig;
      readonly secrets: MeshSecrets;
      readonly warnings: readonly string[];
    }
  | { readonly problems: readonly string[] };
