import { MeshctlError } from '../../errors';
import {
  DEFAULT_REGISTRY_SERVER,
  INIT_IMAGE_NAME,
  MAX_MANIFEST_BYTES,
  SIDECAR_IMAGE_NAME,
} from '../../manifests/constants';
import type { InjectionSettings } from '../../manifests/inject/types';
import type { Io } from '../../runtime/io';
import type { InjectPod, InjectReportEntry } from './inject-documents';
import { injectDocuments } from './inject-documents';
import { settingsFromMeshConfig } from './mesh-settings';

export type SidecarLayout = 'native' | 'classic';

export interface InjectOptions {
  /** A file path, an http(s) URL, "-" for stdin, or undefined for stdin. */
  readonly file: string | undefined;
  readonly meshNamespace: string;
  readonly ignoreIncomingPorts: readonly number[];
  readonly ignoreOutgoingPorts: readonly number[];
  readonly layout: SidecarLayout;
  /** Tag of the images when no mesh configuration says otherwise: the client's version. */
  readonly imageTag: string;
}

export interface InputReader {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  /** The body of a GET of an http(s) URL; errors are MeshctlErrors that name the URL. */
  readUrl(url: string, maxBytes: number): Promise<string>;
}

/** What -f fetches rather than opens (NGINX Service Mesh fetched any value starting with http). */
const URL_PATTERN = /^https?:\/\//i;

/** The deployed mesh's configuration JSON, or why it could not be had. */
export type MeshConfigLookup = () => Promise<
  | { readonly found: true; readonly json: string; readonly from: string }
  | { readonly found: false; readonly reason: string }
>;

export interface InjectDeps {
  readonly io: Io;
  readonly input: InputReader;
  readonly injectPod: InjectPod;
  readonly meshConfig: MeshConfigLookup;
}

function validatePorts(ports: readonly number[], flag: string): void {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new MeshctlError(
        `invalid ignore ports: ${flag === '--ignore-incoming-ports' ? 'incoming' : 'outgoing'} ignore ports are not valid: '${port}' is not a valid port`,
      );
    }
  }
}

/** Settings used when no mesh configuration is read: the default registry, this client's version. */
export function defaultInjectionSettings(options: InjectOptions): InjectionSettings {
  const image = (name: string): string => `${DEFAULT_REGISTRY_SERVER}/${name}:${options.imageTag}`;
  return {
    meshNamespace: options.meshNamespace,
    sidecarImage: image(SIDECAR_IMAGE_NAME),
    initImage: image(INIT_IMAGE_NAME),
    imagePullPolicy: 'IfNotPresent',
    mtlsMode: 'permissive',
    enableUdp: false,
    nativeSidecar: options.layout === 'native',
    ignoreIncomingPorts:
      options.ignoreIncomingPorts.length > 0 ? options.ignoreIncomingPorts : undefined,
    ignoreOutgoingPorts:
      options.ignoreOutgoingPorts.length > 0 ? options.ignoreOutgoingPorts : undefined,
  };
}

/**
 * The mesh's own settings when its configuration can be read; otherwise the defaults, with a
 * note for stderr saying so and why, so that an offline run is never mistaken for a configured
 * one. The note is written only once the input was handled, so an error stays the only line.
 */
async function resolveSettings(
  options: InjectOptions,
  deps: InjectDeps,
): Promise<{ settings: InjectionSettings; note: string }> {
  const defaults = defaultInjectionSettings(options);
  const lookup = await deps.meshConfig();
  if (lookup.found) {
    return {
      settings: settingsFromMeshConfig(lookup.json, defaults),
      note: `using the mesh configuration in ${lookup.from}\n`,
    };
  }
  return {
    settings: defaults,
    note: `no mesh configuration (${lookup.reason}): using ${defaults.sidecarImage} and ${defaults.initImage}\n`,
  };
}

function reportLine(entry: InjectReportEntry): string {
  const reason = entry.reason === undefined ? '' : `: ${entry.reason}`;
  const warnings = entry.warnings
    .map((warning) => `warning: ${entry.object}: ${warning}\n`)
    .join('');
  return `${warnings}${entry.outcome} ${entry.object}${reason}\n`;
}

async function readLocal(source: string, fromStdin: boolean, input: InputReader): Promise<string> {
  try {
    return fromStdin ? await input.readStdin() : await input.readFile(source);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MeshctlError(`cannot read ${source}: ${reason}`, { cause: error });
  }
}

/**
 * Reads the manifests, injects every workload and writes the result to stdout in the input's
 * format. Nothing is written to stdout unless every document was handled.
 */
export async function runInject(options: InjectOptions, deps: InjectDeps): Promise<void> {
  validatePorts(options.ignoreIncomingPorts, '--ignore-incoming-ports');
  validatePorts(options.ignoreOutgoingPorts, '--ignore-outgoing-ports');
  const fromStdin = options.file === undefined || options.file === '-';
  const source = fromStdin ? 'stdin' : (options.file ?? 'stdin');
  const text = URL_PATTERN.test(source)
    ? await deps.input.readUrl(source, MAX_MANIFEST_BYTES)
    : await readLocal(source, fromStdin, deps.input);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_MANIFEST_BYTES) {
    throw new MeshctlError(
      `${source}: ${bytes} bytes is over the limit of ${MAX_MANIFEST_BYTES} bytes`,
    );
  }
  if (text.trim() === '') throw new MeshctlError(`${source}: no Kubernetes resources to inject`);
  const { settings, note } = await resolveSettings(options, deps);
  const result = injectDocuments(text, source, deps.injectPod, settings);
  deps.io.out.write(result.text);
  deps.io.err.write(note);
  const counts = { injected: 0, unchanged: 0, skipped: 0 };
  for (const entry of result.report) {
    counts[entry.outcome] += 1;
    deps.io.err.write(reportLine(entry));
  }
  deps.io.err.write(
    `${counts.injected} injected, ${counts.unchanged} already injected, ${counts.skipped} skipped, ${result.passedThrough} passed through\n`,
  );
}
