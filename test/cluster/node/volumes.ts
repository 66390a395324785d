// Pod volumes as directories on the host, bind-mounted into each container's private mount
// namespace: emptyDir, configMap, secret, downwardAPI, projected (with ServiceAccount tokens
// from the TokenRequest API, refreshed before they expire) and hostPath.
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { V1KeyToPath, V1Pod, V1Volume, V1VolumeProjection } from '@kubernetes/client-node';
import type { KubeRest } from '../harness/kube-rest';
import { fieldValue } from './pod-spec';

export interface PreparedVolumes {
  /** Host directory (or file) of each volume by name. */
  readonly paths: ReadonlyMap<string, string>;
  /** Stops token refreshes. */
  close(): void;
}

interface VolumeContext {
  readonly rest: KubeRest;
  readonly pod: V1Pod;
  readonly dir: string;
  readonly podIP: string;
  readonly hostIP: string;
  readonly timers: NodeJS.Timeout[];
  readonly log: (msg: string, fields?: Record<string, unknown>) => void;
}

const DEFAULT_MODE = 0o644;

/** Writes a file atomically so that a container never reads half of it. */
function writeAtomic(path: string, content: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, content, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, path);
}

function writeItems(
  dir: string,
  data: Readonly<Record<string, Buffer>>,
  items: readonly V1KeyToPath[] | undefined,
  defaultMode: number,
): void {
  const selected =
    items === undefined
      ? Object.keys(data).map((key) => ({ key, path: key, mode: undefined as number | undefined }))
      : items.map((item) => ({ key: item.key, path: item.path, mode: item.mode }));
  for (const item of selected) {
    const value = data[item.key];
    if (value !== undefined) writeAtomic(join(dir, item.path), value, item.mode ?? defaultMode);
  }
}

async function fetchData(
  context: VolumeContext,
  kind: 'configmaps' | 'secrets',
  name: string,
  optional: boolean,
): Promise<Record<string, Buffer>> {
  const namespace = context.pod.metadata?.namespace ?? 'default';
  try {
    const object = await context.rest.request<{
      data?: Record<string, string>;
      binaryData?: Record<string, string>;
    }>('GET', `/api/v1/namespaces/${namespace}/${kind}/${name}`);
    const result: Record<string, Buffer> = {};
    for (const [key, value] of Object.entries(object.data ?? {})) {
      result[key] = kind === 'secrets' ? Buffer.from(value, 'base64') : Buffer.from(value, 'utf8');
    }
    for (const [key, value] of Object.entries(object.binaryData ?? {}))
      result[key] = Buffer.from(value, 'base64');
    return result;
  } catch (error) {
    if (optional) return {};
    throw error;
  }
}

/**
 * How often ConfigMap contents are brought up to date in running pods. The kubelet does this on
 * its sync period (about a minute); the node does it sooner to keep tests short.
 */
const CONFIG_MAP_SYNC_MS = 2_000;

/** Writes a ConfigMap's items now and keeps them current, as the kubelet does for running pods. */
async function keepConfigMap(
  context: VolumeContext,
  dir: string,
  source: { name?: string; optional?: boolean; items?: V1KeyToPath[] },
  mode: number,
): Promise<void> {
  const write = async (): Promise<void> => {
    const data = await fetchData(
      context,
      'configmaps',
      source.name ?? '',
      source.optional === true,
    );
    writeItems(dir, data, source.items, mode);
  };
  await write();
  context.timers.push(
    setInterval(() => {
      write().catch((error: unknown) =>
        context.log('config map refresh failed', { error: String(error) }),
      );
    }, CONFIG_MAP_SYNC_MS).unref(),
  );
}

async function writeToken(
  context: VolumeContext,
  source: NonNullable<V1VolumeProjection['serviceAccountToken']>,
  path: string,
  mode: number,
): Promise<number> {
  const pod = context.pod;
  const namespace = pod.metadata?.namespace ?? 'default';
  const account = pod.spec?.serviceAccountName ?? 'default';
  const expirationSeconds = source.expirationSeconds ?? 3600;
  const response = await context.rest.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences:
          source.audience === undefined || source.audience === '' ? undefined : [source.audience],
        expirationSeconds,
        boundObjectRef: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: pod.metadata?.name,
          uid: pod.metadata?.uid,
        },
      },
    },
  );
  writeAtomic(path, response.status.token, mode);
  return expirationSeconds;
}

async function writeProjection(
  context: VolumeContext,
  dir: string,
  source: V1VolumeProjection,
  mode: number,
): Promise<void> {
  if (source.serviceAccountToken !== undefined) {
    const tokenSource = source.serviceAccountToken;
    const path = join(dir, tokenSource.path);
    const expirationSeconds = await writeToken(context, tokenSource, path, mode);
    // Refresh at 80% of the lifetime, as the kubelet does.
    const refresh = (): void => {
      writeToken(context, tokenSource, path, mode).catch((error: unknown) =>
        context.log('token refresh failed', { error: String(error) }),
      );
    };
    context.timers.push(setInterval(refresh, expirationSeconds * 800).unref());
  }
  if (source.configMap !== undefined) await keepConfigMap(context, dir, source.configMap, mode);
  if (source.secret !== undefined) {
    const data = await fetchData(
      context,
      'secrets',
      source.secret.name ?? '',
      source.secret.optional === true,
    );
    writeItems(dir, data, source.secret.items, mode);
  }
  if (source.downwardAPI !== undefined)
    writeDownward(context, dir, source.downwardAPI.items ?? [], mode);
}

function writeDownward(
  context: VolumeContext,
  dir: string,
  items: readonly { path: string; fieldRef?: { fieldPath: string }; mode?: number }[],
  mode: number,
): void {
  for (const item of items) {
    if (item.fieldRef === undefined) continue;
    const value = fieldValue(context.pod, item.fieldRef.fieldPath, context) ?? '';
    writeAtomic(join(dir, item.path), value, item.mode ?? mode);
  }
}

async function writeConfigSources(
  context: VolumeContext,
  dir: string,
  volume: V1Volume,
): Promise<void> {
  if (volume.configMap !== undefined) {
    const { configMap } = volume;
    await keepConfigMap(context, dir, configMap, configMap.defaultMode ?? DEFAULT_MODE);
  }
  if (volume.secret !== undefined) {
    const { secret } = volume;
    const data = await fetchData(
      context,
      'secrets',
      secret.secretName ?? '',
      secret.optional === true,
    );
    writeItems(dir, data, secret.items, secret.defaultMode ?? DEFAULT_MODE);
  }
}

async function prepareVolume(context: VolumeContext, volume: V1Volume): Promise<string> {
  if (volume.hostPath !== undefined) return volume.hostPath.path;
  const dir = join(context.dir, volume.name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (volume.emptyDir !== undefined) chmodSync(dir, 0o777);
  await writeConfigSources(context, dir, volume);
  if (volume.downwardAPI !== undefined) {
    const { downwardAPI } = volume;
    writeDownward(context, dir, downwardAPI.items ?? [], downwardAPI.defaultMode ?? DEFAULT_MODE);
  }
  for (const source of volume.projected?.sources ?? []) {
    await writeProjection(context, dir, source, volume.projected?.defaultMode ?? DEFAULT_MODE);
  }
  return dir;
}

/** Prepares every volume of the pod under dir; throws (naming the volume) when one cannot be made. */
export async function prepareVolumes(
  rest: KubeRest,
  pod: V1Pod,
  dir: string,
  addresses: { podIP: string; hostIP: string },
  log: VolumeContext['log'],
): Promise<PreparedVolumes> {
  const timers: NodeJS.Timeout[] = [];
  const context: VolumeContext = { rest, pod, dir, timers, log, ...addresses };
  const paths = new Map<string, string>();
  try {
    for (const volume of pod.spec?.volumes ?? []) {
      try {
        paths.set(volume.name, await prepareVolume(context, volume));
      } catch (error) {
        throw new Error(
          `volume "${volume.name}": ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  } catch (error) {
    for (const timer of timers) clearInterval(timer);
    throw error;
  }
  return { paths, close: () => timers.forEach((timer) => clearInterval(timer)) };
}
