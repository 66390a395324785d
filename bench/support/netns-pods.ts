// Two meshed pods on one machine, for the benchmarks that measure the data plane (dataplane.ts,
// tracing.ts): two network namespaces joined by a veth pair in 198.19.250.0/30, an app (nginx
// answering 1 KB) in the server pod, each pod's sidecar nginx running what renderSidecarConfig
// renders (its configuration and members file; mTLS strict, one worker, as the sidecar's uid)
// behind the init role's iptables rules, and load from load.ts in the client pod. Servers run on CPU 0, load on CPU 1. Namespaces and
// links are named after the benchmark's pid; cleanup() removes them and every process started
// here, also on failure.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIDECAR_STATS_DIR, SIDECAR_UID } from '../../src/manifests/constants';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { buildRedirectModel, printRestoreInput } from '../../src/render/iptables-rules';
import type { RenderedSidecar, SidecarContext } from '../../src/render/sidecar';
import { membersPath } from '../../src/render/sidecar/upstream-slots';
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { NGINX_ENV } from '../../src/runtime/agent/nginx-process';
import { createAuthority } from '../../src/runtime/registrar/authority';
import { endpoint, httpPort, service } from '../../test/support/sidecar-snapshots';
import { issueTestSvid } from '../../test/support/svid';
import type { LoadResult, LoadSpec } from './load';
import { runLoad } from './load';

export const CLIENT_IP = '198.19.250.1';
export const SERVER_IP = '198.19.250.2';
export const SERVICE_IP = '198.19.251.10';
export const APP_PORT = 8080;
/** The sidecar's outbound and inbound listeners, up once nginx runs the rendered config. */
export const SIDECAR_PORTS: readonly number[] = [8900, 8901];
export const SERVER_CPU = '0';
export const CLIENT_CPU = '1';
export const BODY = 'x'.repeat(1024);

export type Pod = 'client' | 'server';

export function run(file: string, args: readonly string[], input?: string): string {
  return execFileSync(file, args, {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 30_000,
  });
}

export const inNs = (ns: string, file: string, args: readonly string[], input?: string): string =>
  run('ip', ['netns', 'exec', ns, file, ...args], input);

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** The load phase's child mode: runs the phase and prints its result as one JSON line. */
export async function loadChild(arg: string): Promise<void> {
  const result = await runLoad(JSON.parse(arg) as LoadSpec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export interface Started {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  readonly output: () => string;
}

/** The namespaces, links and processes of one benchmark run. */
export class PodNet {
  /** The run's pid in base 36, in every name. */
  readonly id = process.pid.toString(36);
  readonly clientNs: string;
  readonly serverNs: string;
  readonly clientLink: string;
  readonly serverLink: string;
  /** Every process this run started, stopped by pid at the end. */
  private readonly started: ChildProcess[] = [];
  private readonly namespaces: string[] = [];
  /** More to undo at cleanup (links outside the namespaces, processes started elsewhere). */
  private readonly undo: (() => void)[] = [];

  /** prefix: a few letters naming the benchmark (nmb: dataplane). */
  constructor(readonly prefix: string) {
    this.clientNs = `${prefix}-${this.id}-c`;
    this.serverNs = `${prefix}-${this.id}-s`;
    this.clientLink = `${prefix}${this.id}c`;
    this.serverLink = `${prefix}${this.id}s`;
  }

  nsOf(pod: Pod): string {
    return pod === 'client' ? this.clientNs : this.serverNs;
  }

  addNamespace(ns: string): void {
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  createPods(): void {
    this.addNamespace(this.clientNs);
    this.addNamespace(this.serverNs);
    run('ip', ['link', 'add', this.clientLink, 'type', 'veth', 'peer', 'name', this.serverLink]);
    run('ip', ['link', 'set', this.clientLink, 'netns', this.clientNs]);
    run('ip', ['link', 'set', this.serverLink, 'netns', this.serverNs]);
    for (const [ns, link, address] of [
      [this.clientNs, this.clientLink, CLIENT_IP],
      [this.serverNs, this.serverLink, SERVER_IP],
    ] as const) {
      run('ip', ['-n', ns, 'addr', 'add', `${address}/30`, 'dev', link]);
      run('ip', ['-n', ns, 'link', 'set', link, 'up']);
    }
  }

  /**
   * Starts command in ns on cpu (as uid when given); its pid is the program's own (ip and taskset
   * exec). With stdin, the child's standard input is a pipe.
   */
  startIn(
    ns: string,
    cpu: string,
    command: readonly string[],
    uid?: number,
    options: { readonly stdin?: boolean } = {},
  ): Started {
    const asUid =
      uid === undefined
        ? []
        : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all'];
    const proc = spawn('ip', ['netns', 'exec', ns, 'taskset', '-c', cpu, ...asUid, ...command], {
      stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    this.started.push(proc);
    let output = '';
    proc.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return { child: proc, output: () => output };
  }

  /** Waits until every port listens (TCP) in ns, for at most 10 s. */
  async waitListening(ns: string, ports: readonly number[], what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listening = inNs(ns, 'ss', ['-Hltn']);
      if (ports.every((port) => new RegExp(`:${port}\\s`).test(listening))) return;
      if (Date.now() > deadline) throw new Error(`${what} did not listen on ${ports.join(', ')}`);
      await sleep(50);
    }
  }

  /**
   * Starts nginx in ns on CPU 0 with the configuration file, in the environment the agent gives
   * it (NGINX_ENV); returns its master's pid.
   */
  async startNginx(
    ns: string,
    prefix: string,
    config: string,
    ports: readonly number[],
    uid: number | undefined,
  ): Promise<number> {
    const { child: proc, output } = this.startIn(
      ns,
      SERVER_CPU,
      [
        'env',
        ...Object.entries(NGINX_ENV).map(([name, value]) => `${name}=${value}`),
        'nginx',
        ...['-e', 'stderr', '-p', prefix, '-c', config, '-g', 'daemon off;'],
      ],
      uid,
    );
    await this.waitListening(ns, ports, `nginx ${config}`).catch((error: Error) => {
      throw new Error(`${error.message}: ${output()}`);
    });
    return proc.pid ?? 0;
  }

  /** The app of the server pod: nginx answering 1 KB on APP_PORT, as root. */
  async startApp(dir: string): Promise<number> {
    const app = makeRunDir(join(dir, 'app'));
    return this.startNginx(
      this.serverNs,
      app,
      writeConfig(join(app, 'app.conf'), appConfig(app)),
      [APP_PORT],
      undefined,
    );
  }

  /** Runs one load phase from the client pod on CPU 1 (this script's --load child mode). */
  async load(spec: Omit<LoadSpec, 'host' | 'port'>): Promise<LoadResult> {
    const full: LoadSpec = { host: SERVER_IP, port: APP_PORT, ...spec };
    const { child: proc, output } = this.startIn(this.clientNs, CLIENT_CPU, [
      process.execPath,
      process.argv[1] ?? '',
      '--load',
      JSON.stringify(full),
    ]);
    const limitMs = spec.warmupMs + spec.durationMs + 20_000;
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
      proc.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    const line = output()
      .split('\n')
      .filter((text) => text.startsWith('{'))
      .at(-1);
    if (code !== 0 || line === undefined) throw new Error(`load generator failed: ${output()}`);
    return JSON.parse(line) as LoadResult;
  }

  /** Replaces the nat table of ns with the given iptables-restore input (none: empty). */
  setRules(ns: string, input: string | undefined): void {
    inNs(ns, 'iptables', ['-t', 'nat', '-F']);
    inNs(ns, 'iptables', ['-t', 'nat', '-X']);
    if (input !== undefined) inNs(ns, 'iptables-restore', ['--noflush'], input);
  }

  /** What `run --role init` installs in every injected pod, with its default flags, in both. */
  useInitRules(): void {
    const init = printRestoreInput(
      buildRedirectModel({ ignoreIncomingPorts: [], ignoreOutgoingPorts: [] }).ipv4,
    );
    this.setRules(this.clientNs, init);
    this.setRules(this.serverNs, init);
  }

  /** Packets the REDIRECT rules of ns matched: the first packet of each redirected connection. */
  redirectedConnections(ns: string): number {
    return inNs(ns, 'iptables-save', ['-c', '-t', 'nat'])
      .split('\n')
      .filter((line) => line.includes('-j REDIRECT'))
      .reduce((sum, line) => sum + Number(/^\[(\d+):/.exec(line)?.[1] ?? 0), 0);
  }

  /** Runs fn at cleanup, before the namespaces go; what it throws is ignored. */
  atCleanup(fn: () => void): void {
    this.undo.push(fn);
  }

  /** Kills what runs in the namespaces and every process started here; deletes the namespaces. */
  cleanup(dir: string | undefined): void {
    for (const fn of this.undo.splice(0)) {
      try {
        fn();
      } catch {
        // already undone
      }
    }
    for (const ns of this.namespaces) {
      try {
        for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      } catch {
        // the namespace is already gone
      }
    }
    for (const proc of this.started) if (proc.exitCode === null) proc.kill('SIGKILL');
    for (const ns of this.namespaces) {
      try {
        run('ip', ['netns', 'delete', ns]);
      } catch {
        // already gone
      }
    }
    this.namespaces.length = 0;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The benchmark's main: checks for root, builds the mesh module, makes a temporary directory,
 * runs body and removes everything afterwards, also on failure or a signal.
 */
export async function runPodBench(
  name: string,
  net: PodNet,
  root: string,
  body: (dir: string, meshModule: string) => Promise<void>,
): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write(`${name}: needs root (network namespaces and iptables)\n`);
    process.exitCode = 2;
    return;
  }
  const meshModule =
    run('bash', [join(root, 'scripts', 'build-ngx-mesh.sh')])
      .trim()
      .split('\n')
      .at(-1) ?? '';
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const stop = (): void => {
    net.cleanup(dir);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await body(dir, meshModule);
  } finally {
    net.cleanup(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Configurations.

export function appConfig(dir: string): string {
  return `worker_processes 1;
pid ${dir}/app.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen ${APP_PORT};
        location / {
            add_header X-Remote $remote_addr always;
            return 200 "${BODY}";
        }
    }
}
`;
}

/** One Service, bench/server, backed by the server pod; mTLS strict. */
export function benchSnapshot(): MeshSnapshot {
  return {
    mesh: { ...DEFAULT_SNAPSHOT_MESH, mtlsMode: 'strict' },
    services: service(
      'bench/server',
      SERVICE_IP,
      [httpPort(APP_PORT)],
      [endpoint(SERVER_IP, { http: APP_PORT }, 'bench/server-1', 'bench/server')],
    ),
    trafficTargets: {},
    trafficSplits: {},
    rateLimits: {},
    circuitBreakers: {},
    httpRoutes: {},
    grpcRoutes: {},
    gateways: {},
    gatewayRoutes: {},
    peers: {},
  };
}

export function podContext(
  dir: string,
  meshModule: string,
  pod: Pod,
  runDir: string,
): SidecarContext {
  return {
    pod: `bench/${pod}-1`,
    serviceAccount: pod,
    podIPs: [pod === 'client' ? CLIENT_IP : SERVER_IP],
    containerPorts: pod === 'client' ? [] : [APP_PORT],
    healthRedirects: {},
    ipv6: false,
    modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
    runDir,
    svidFile: join(dir, `${pod}.pem`),
    bundleFile: join(dir, 'bundle.crt'),
  };
}

/** A run directory for one nginx, owned by the sidecar's uid, with its temp directories. */
export function makeRunDir(path: string): string {
  mkdirSync(path, { recursive: true });
  for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs'])
    mkdirSync(join(path, temp), { recursive: true });
  execFileSync('chown', ['-R', `${SIDECAR_UID}:${SIDECAR_UID}`, path]);
  return path;
}

/**
 * A sidecar's run directory with the directory of its stats socket, as the agent makes them in
 * the pod, owned by the sidecar's uid that nginx runs as; returns the socket's path too.
 */
export function makeSidecarRunDir(path: string): { runDir: string; socket: string } {
  const runDir = makeRunDir(path);
  const socket = prepareStatsSocket(runDir);
  chownSync(join(runDir, SIDECAR_STATS_DIR), SIDECAR_UID, SIDECAR_UID);
  return { runDir, socket };
}

export function writeConfig(path: string, text: string): string {
  writeFileSync(path, text);
  chownSync(path, SIDECAR_UID, SIDECAR_UID);
  return path;
}

/**
 * What the agent writes for a rendered sidecar in its run directory: nginx.conf, and the members
 * file it names (the endpoints of its Service upstreams, which have none without it); the
 * configuration's path.
 */
export function writeSidecarFiles(
  runDir: string,
  rendered: Pick<RenderedSidecar, 'text' | 'members'>,
): string {
  writeConfig(membersPath(runDir), rendered.members);
  return writeConfig(join(runDir, 'nginx.conf'), rendered.text);
}

/** A trust bundle and the client's and server's SVIDs (readable by the sidecar's uid) in dir. */
export async function writeCertificates(dir: string): Promise<void> {
  const authority = await createAuthority(
    { keyType: 'ec-p256', trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream: undefined },
    new Date(),
  );
  writeFileSync(join(dir, 'bundle.crt'), authority.stored.certificate);
  for (const pod of ['client', 'server']) {
    const svid = await issueTestSvid(authority, 'bench', pod);
    writeFileSync(join(dir, `${pod}.pem`), svid.chain + svid.keyPem, { mode: 0o600 });
    chownSync(join(dir, `${pod}.pem`), SIDECAR_UID, SIDECAR_UID);
  }
  chownSync(dir, SIDECAR_UID, SIDECAR_UID);
}

// ---------------------------------------------------------------------------------------------
// Report.

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
};

/** Microseconds as milliseconds with three decimals. */
export const ms = (us: number): string => (us / 1000).toFixed(3);

export const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').trim();

/** Node, OpenSSL, kernel, CPU, nginx and the load average, for a report's header. */
export function versions(): string {
  // nginx prints its version and build to stderr.
  const nginx = spawnSync('nginx', ['-V'], { encoding: 'utf8' }).stderr;
  const nginxVersion = nginx.split('\n')[0] ?? 'nginx';
  return [
    `node ${process.version} (OpenSSL ${process.versions.openssl}), kernel ${release()}, ${cpus()[0]?.model ?? '?'} x${cpus().length}`,
    `${nginxVersion} ${/built with (OpenSSL [^ ]+)/.exec(nginx)?.[1] ?? ''}`.trim(),
    `load: ${loadAverage()}`,
  ].join('\n');
}
