// What `nginx-meshctl deploy` was asked for: one field per deploy flag that shapes the mesh
// (the command's own switches, --dry-run and --cleanup-on-error, stay in the command). Pure.
import { buildDeployFlags } from './deploy-flags';

/** Deploy flag values as given; buildMeshConfig validates them. Files are paths, not contents. */
export interface DeployInput {
  readonly accessControlMode: string;
  readonly clientMaxBodySize: string;
  readonly disablePublicImages: boolean;
  readonly enableUdp: boolean;
  readonly environment: string;
  readonly imageTag: string;
  readonly mtlsCaKeyType: string;
  readonly mtlsCaTtl: string;
  readonly mtlsMode: string;
  readonly mtlsSvidTtl: string;
  readonly mtlsTrustDomain: string;
  /** Path of the upstream CA configuration file; "" for none. */
  readonly mtlsUpstreamCaConf: string;
  readonly nginxErrorLogLevel: string;
  readonly nginxLbMethod: string;
  readonly nginxLogFormat: string;
  readonly persistentStorage: string;
  readonly prometheusAddress: string;
  /** Path of the registry's JSON key file; "" for none. */
  readonly registryKey: string;
  readonly registryPassword: string;
  readonly registryServer: string;
  readonly registryUsername: string;
  readonly spireServerKeyManager: string;
  readonly telemetryExporters: readonly string[];
  /** The flag's text (a float between 0 and 1), or a number. */
  readonly telemetrySamplerRatio: string | number;
  readonly pullAlways: boolean;
  readonly nginxMeshControllerImage: string;
  readonly nginxMeshMetricsImage: string;
  readonly nginxMeshSidecarImage: string;
  readonly nginxMeshInitImage: string;
  readonly certReloaderImage: string;
}

/** Reads parsed flag values; the command layer's ActionContext satisfies it. */
export interface DeployFlagReader {
  string(name: string): string;
  bool(name: string): boolean;
  strings(name: string): readonly string[];
}

/** The input field of a deploy flag: its long name in camelCase. */
export function inputKeyOf(long: string): string {
  return long.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Flags that belong to the command rather than to the mesh's configuration. */
const COMMAND_ONLY_FLAGS: ReadonlySet<string> = new Set(['dry-run', 'cleanup-on-error']);

/** The configuration flags, in declaration order (the order problems are reported in). */
export function deployInputFlags(): readonly string[] {
  return buildDeployFlags('')
    .map((flag) => flag.long)
    .filter((long) => !COMMAND_ONLY_FLAGS.has(long));
}

/** DeployInput from parsed flags. */
export function deployInputFromFlags(read: DeployFlagReader): DeployInput {
  const values: Record<string, string | boolean | readonly string[]> = {};
  for (const flag of buildDeployFlags('')) {
    if (COMMAND_ONLY_FLAGS.has(flag.long)) continue;
    const key = inputKeyOf(flag.long);
    if (flag.type === 'bool') values[key] = read.bool(flag.long);
    else if (flag.type === 'stringArray') values[key] = read.strings(flag.long);
    else values[key] = read.string(flag.long);
  }
  return values as unknown as DeployInput;
}

/** Every flag at its default: what `nginx-meshctl deploy` alone asks for. */
export function defaultDeployInput(imageTag: string): DeployInput {
  const flags = buildDeployFlags(imageTag);
  return deployInputFromFlags({
    string: (name) => {
      const value = flags.find((flag) => flag.long === name)?.defaultValue;
      return typeof value === 'string' ? value : '';
    },
    bool: (name) => flags.find((flag) => flag.long === name)?.defaultValue === true,
    strings: () => [],
  });
}
