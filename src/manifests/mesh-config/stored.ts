// What upgrade re-deploys with: the configuration deploy stored (ConfigMap meshconfig), with the
// runtime settings of the MeshConfig resource laid over it (so `kubectl edit meshconfig` edits
// survive), turned back into deploy's input so that the same validation runs again. Pure.
import { CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, SIDECAR_IMAGE_NAME } from '../constants';
import type { DeployInput } from './deploy-input';
import { defaultDeployInput } from './deploy-input';

type Json = Readonly<Record<string, unknown>>;

export interface UpgradeOverrides {
  /** The tag to run: --image-tag, else this executable's version. */
  readonly imageTag: string;
  /** --registry-server when given; else the stored registry is kept. */
  readonly registryServer?: string;
}

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const field = (value: unknown, key: string): unknown => (isObject(value) ? value[key] : undefined);

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Settings both the stored configuration and the MeshConfig resource hold, by input key. */
function runtimeSettings(source: unknown): Partial<Record<keyof DeployInput, unknown>> {
  const mtls = field(source, 'mtls');
  const otlp = field(field(field(source, 'telemetry'), 'exporters'), 'otlp');
  const host = text(field(otlp, 'host'));
  const port = field(otlp, 'port');
  const protocol = text(field(otlp, 'protocol'));
  const ratio = field(field(source, 'telemetry'), 'samplerRatio');
  return {
    accessControlMode: text(field(source, 'accessControlMode')),
    clientMaxBodySize: text(field(source, 'clientMaxBodySize')),
    mtlsMode: text(field(mtls, 'mode')),
    mtlsCaKeyType: text(field(mtls, 'caKeyType')),
    mtlsCaTtl: text(field(mtls, 'caTTL')),
    mtlsSvidTtl: text(field(mtls, 'svidTTL')),
    nginxErrorLogLevel: text(field(source, 'nginxErrorLogLevel')),
    nginxLbMethod: text(field(source, 'nginxLBMethod')),
    nginxLogFormat: text(field(source, 'nginxLogFormat')),
    prometheusAddress: text(field(source, 'prometheusAddress')),
    ...(host === undefined || typeof port !== 'number'
      ? {}
      : {
          telemetryExporters: [
            `type=otlp,host=${host},port=${port}${protocol === undefined ? '' : `,protocol=${protocol}`}`,
          ],
        }),
    ...(typeof ratio === 'number' ? { telemetrySamplerRatio: String(ratio) } : {}),
  };
}

function defined(values: Partial<Record<keyof DeployInput, unknown>>): Partial<DeployInput> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined));
}

/** An image that is not the registry's default for its name is an explicit override. */
function override(stored: unknown, server: string, tag: string, name: string): string {
  const image = text(stored) ?? '';
  return image === '' || image === `${server}/${name}:${tag}` ? '' : image;
}

/**
 * Deploy's input for an upgrade: defaults of this version, the stored configuration, the
 * MeshConfig resource's runtime settings over it, then the upgrade's own flags.
 */
export function upgradeInput(
  storedConfig: unknown,
  meshConfigSpec: unknown,
  overrides: UpgradeOverrides,
): DeployInput {
  const registry = field(storedConfig, 'registry');
  const storedServer = text(field(registry, 'server'));
  const storedTag = text(field(registry, 'imageTag')) ?? '';
  const server = overrides.registryServer ?? storedServer;
  const mtls = field(storedConfig, 'mtls');
  const images = (serverOf: string): Partial<DeployInput> => {
    const controller = override(
      field(registry, 'controllerImage'),
      serverOf,
      storedTag,
      CONTROLLER_IMAGE_NAME,
    );
    const metrics = text(field(registry, 'metricsImage')) ?? '';
    const controllerStored = text(field(registry, 'controllerImage')) ?? '';
    return {
      nginxMeshControllerImage: controller,
      nginxMeshMetricsImage: metrics === controllerStored ? '' : metrics,
      nginxMeshSidecarImage: override(
        field(registry, 'sidecarImage'),
        serverOf,
        storedTag,
        SIDECAR_IMAGE_NAME,
      ),
      nginxMeshInitImage: override(
        field(registry, 'sidecarInitImage'),
        serverOf,
        storedTag,
        INIT_IMAGE_NAME,
      ),
    };
  };
  return {
    ...defaultDeployInput(overrides.imageTag),
    ...defined({
      ...runtimeSettings(storedConfig),
      environment: text(field(storedConfig, 'environment')),
      enableUdp: field(storedConfig, 'enableUDP') === true,
      mtlsTrustDomain: text(field(mtls, 'trustDomain')),
      persistentStorage: text(field(mtls, 'persistentStorage')),
      spireServerKeyManager: text(field(mtls, 'spireServerKeyManager')),
      disablePublicImages: field(registry, 'disablePublicImages') === true,
      pullAlways: field(registry, 'imagePullPolicy') === 'Always',
      registryServer: server,
    }),
    ...(storedServer === undefined ? {} : images(storedServer)),
    ...defined(runtimeSettings(meshConfigSpec)),
    imageTag: overrides.imageTag,
  };
}

/** Numeric comparison of dotted versions ("2.10.0" > "2.9.1"); pre-release parts are ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (version: string): number[] =>
    version
      .replace(/^v/, '')
      .split(/[-+]/)[0]!
      .split('.')
      .map((part) => Number.parseInt(part, 10) || 0);
  const [left, right] = [parts(a), parts(b)];
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}
