// The agent's metrics pipeline: nginx counts every HTTP request and TCP connection in shared
// memory (ngx_mesh's mesh_stats), by a key naming the direction, status and peer; the agent takes
// those counts (reads and empties them) over nginx's unix socket every few seconds and before every scrape,
// resolves each key's peer with the latest snapshot applied and adds the counts to its own
// series, HTTP requests and TCP connections in registries of their own; the status server prints
// both on /metrics. Totals live here, in the agent, so nginx reloads and restarts keep them; a
// take that fails (nginx not serving yet, or restarting) leaves the counts in nginx for the next.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  SIDECAR_MEMBERS_PATH,
  SIDECAR_STATS_DIR,
  SIDECAR_STATS_SOCKET,
} from '../../../manifests/constants';
import type { MeshSnapshot } from '../../../manifests/snapshot/types';
import { membersPath } from '../../../render/sidecar/upstream-slots';
import type { PeerIndex } from './peers';
import { buildPeerIndex, labelsOf, overflowLabels } from './peers';
import { createRequestRegistry, createTcpRegistry } from './registry';
import type { RequestRegistry } from './registry';
import type { StatsZone } from './stats';
import { parseStatsKey, parseStatsTake } from './stats';

/** Counter of requests nginx could not count (its zone was full), as nginx reported them. */
export const STATS_LOST_METRIC = 'nginx_mesh_stats_lost_total';
/** How often the agent takes nginx's counts between scrapes. */
const TAKE_INTERVAL_MS = 5_000;
/** The longest a take may take; nginx answers from memory, in microseconds. */
const TAKE_TIMEOUT_MS = 2_000;
/** The largest take read: two 1 MB zones print well under this, thousands of series each. */
const MAX_TAKE_BYTES = 8 * 1024 * 1024;

/**
 * Makes the directory of nginx's stats socket under runDir, mode 0700 (only this process's uid,
 * the sidecar's, enters it: a take empties the counters, and the pod's other containers must not
 * take or read them), and removes a socket a killed nginx left behind, which would keep the next
 * one from listening. Returns the socket's path. Call before nginx starts.
 */
export function prepareStatsSocket(runDir: string): string {
  const dir = join(runDir, SIDECAR_STATS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone, and the umask may have narrowed a new one.
  chmodSync(dir, 0o700);
  const socketPath = join(dir, SIDECAR_STATS_SOCKET);
  rmSync(socketPath, { force: true });
  return socketPath;
}

/** Where nginx serves its counts, and which zone holds which family. */
export interface SidecarMetricsOptions {
  /** nginx's stats socket (prepareStatsSocket). */
  readonly socketPath: string;
  readonly path: string;
  readonly httpZone: string;
  readonly tcpZone: string;
  /** Between scrapes; TAKE_INTERVAL_MS unless given (0: only before scrapes). */
  readonly takeIntervalMs?: number;
}

/** The running pipeline. */
export interface SidecarMetrics {
  /** HTTP requests, and the count of unreadable series. */
  readonly registry: RequestRegistry;
  /** TCP connections. */
  readonly tcpRegistry: RequestRegistry;
  /** Resolves peers with this snapshot from now on. */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** Takes nginx's counts now; resolves false when nginx did not answer. */
  take(): Promise<boolean>;
  /** After a take, the Prometheus text exposition of every series. */
  exposition(): Promise<string>;
  close(): Promise<void>;
}

/** POSTs to nginx's stats location; the body, or undefined when it did not answer 200. */
function postTake(options: SidecarMetricsOptions): Promise<string | undefined> {
  return takeFromNginx(options.socketPath, options.path);
}

/**
 * POSTs to one of nginx's locations on the stats socket (a take: it empties what it prints); the
 * body, or undefined when nginx did not answer 200 within TAKE_TIMEOUT_MS or sent too much.
 */
export function takeFromNginx(socketPath: string, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        agent: false,
        timeout: TAKE_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_TAKE_BYTES) chunks.push(chunk);
        });
        res.on('end', () =>
          resolve(
            res.statusCode === 200 && size <= MAX_TAKE_BYTES
              ? Buffer.concat(chunks).toString('utf8')
              : undefined,
          ),
        );
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function renderLost(lost: number): string {
  return [
    `# HELP ${STATS_LOST_METRIC} Requests and connections nginx could not count: its counter zone was full.`,
    `# TYPE ${STATS_LOST_METRIC} counter`,
    `${STATS_LOST_METRIC} ${lost}`,
    '',
  ].join('\n');
}

const sameBounds = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((value, index) => value === b[index]);

/** Starts taking nginx's counts; nothing is bound, so it never fails to start. */
export function startSidecarMetrics(options: SidecarMetricsOptions): SidecarMetrics {
  const registry = createRequestRegistry(overflowLabels);
  const tcpRegistry = createTcpRegistry(overflowLabels);
  let peers: PeerIndex = new Map();
  let lost = 0;
  let running: Promise<boolean> | undefined;

  /** Adds a zone's series to the registry of its family; unknown zones are unreadable. */
  const addZone = (zone: StatsZone): void => {
    lost += zone.lost;
    const target =
      zone.name === options.httpZone
        ? registry
        : zone.name === options.tcpZone
          ? tcpRegistry
          : undefined;
    if (target === undefined || !sameBounds(zone.boundsMs, target.bounds())) {
      registry.drop(zone.series.length);
      return;
    }
    for (const series of zone.series) {
      const key = parseStatsKey(series.key);
      if (key === undefined || key.tcp !== (target === tcpRegistry)) {
        registry.drop();
        continue;
      }
      target.add(labelsOf(key, peers), series);
    }
  };

  const takeOnce = async (): Promise<boolean> => {
    const text = await postTake(options);
    if (text === undefined) return false;
    const take = parseStatsTake(text);
    registry.drop(take.unreadable);
    for (const zone of take.zones) addZone(zone);
    return true;
  };
  /** One take at a time: a caller during one waits for it. */
  const take = (): Promise<boolean> =>
    (running ??= takeOnce().finally(() => {
      running = undefined;
    }));

  const interval = options.takeIntervalMs ?? TAKE_INTERVAL_MS;
  const timer = interval > 0 ? setInterval(() => void take(), interval) : undefined;
  timer?.unref();

  return {
    registry,
    tcpRegistry,
    applySnapshot(snapshot) {
      peers = buildPeerIndex(snapshot);
    },
    take,
    async exposition() {
      await take();
      return registry.render() + tcpRegistry.render() + renderLost(lost);
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      await running;
    },
  };
}

/** The longest nginx may take to read its members file again (a parse, in milliseconds). */
const MEMBERS_TIMEOUT_MS = 5_000;

/**
 * PUTs to nginx's members location on the stats socket (ngx_mesh's mesh_members_update), so that
 * its workers read the members file again. Rejects unless nginx answers 204, with nginx's words
 * for a file it could not read.
 */
export function updateNginxMembers(socketPath: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method: 'PUT', agent: false, timeout: MEMBERS_TIMEOUT_MS },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 1024) body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode === 204) resolve();
          else
            reject(
              new Error(
                `nginx answered ${res.statusCode ?? 0} to the members update${body.trim() === '' ? '' : `: ${body.trim()}`}`,
              ),
            );
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`nginx did not answer the members update in ${MEMBERS_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * The members file of the sidecar nginx running in runDir, and how to make it read the file
 * again: the config applier's members option.
 */
export function sidecarMembers(runDir: string): {
  readonly path: string;
  readonly update: () => Promise<void>;
} {
  const socketPath = join(runDir, SIDECAR_STATS_DIR, SIDECAR_STATS_SOCKET);
  return {
    path: membersPath(runDir),
    update: () => updateNginxMembers(socketPath, SIDECAR_MEMBERS_PATH),
  };
}
