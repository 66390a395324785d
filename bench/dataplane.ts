// Cost of the mesh's data plane between two pods, measured in one run against two baselines:
//   direct  client → app (nginx answering 1 KB);
//   chain   client → hand-written nginx outbound proxy → mTLS → hand-written inbound proxy → app
//           (keep-alive upstreams, one worker each, iptables REDIRECT as the mesh does);
//   mesh    the init role's iptables rules in both pods, and nginx running what
//           renderSidecarConfig renders for each pod (our module, mTLS strict, one worker),
//           counting requests in shared memory, with the agent's metrics pipeline taking
//           the counts as it would in the pod.
// The pods are two network namespaces joined by a veth pair in 198.19.250.0/30; the paths take
// turns over rounds (rules swapped between them), and the figures are medians of the rounds.
// Load comes from bench/support/load.ts inside the client namespace on CPU 1; every server runs
// on CPU 0. Then: nginx reloads (SIGHUP, once a second) under paced load, and the memory of ten
// sidecars side by side (PSS), with and without the agent's own process.
// Needs root (namespaces, iptables). Everything is removed at the end, also on failure.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SIDECAR_STATS_DIR,
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
  SIDECAR_UID,
} from '../src/manifests/constants';
import { DEFAULT_SNAPSHOT_MESH } from '../src/manifests/snapshot/mesh-base';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { buildRedirectModel, printRestoreInput } from '../src/render/iptables-rules';
import { renderSidecarConfig } from '../src/render/sidecar';
import type { SidecarContext } from '../src/render/sidecar';
import {
  prepareStatsSocket,
  startSidecarMetrics,
} from '../src/runtime/agent/metrics/sidecar-metrics';
import { createAuthority } from '../src/runtime/registrar/authority';
import { endpoint, httpPort, service } from '../test/support/sidecar-snapshots';
import { issueTestSvid } from '../test/support/svid';
import type { LoadResult, LoadSpec } from './support/load';
import { runLoad } from './support/load';
import { cpuSeconds, memoryOf, processTree } from './support/proc-stats';

// npm runs benchmarks from the checkout's root; the bundle itself lives under node_modules.
const ROOT = process.cwd();
const ID = process.pid.toString(36);
const CLIENT_NS = `nmb-${ID}-c`;
const SERVER_NS = `nmb-${ID}-s`;
const CLIENT_LINK = `nmb${ID}c`;
const SERVER_LINK = `nmb${ID}s`;
const CLIENT_IP = '198.19.250.1';
const SERVER_IP = '198.19.250.2';
const SERVICE_IP = '198.19.251.10';
const APP_PORT = 8080;
const CHAIN_OUT_PORT = 15001;
const CHAIN_IN_PORT = 15006;
const SERVER_CPU = '0';
const CLIENT_CPU = '1';
const ROUNDS = 3;
const WARMUP_MS = 1_000;
const PHASE_MS = 5_000;
const PACED_RATE = 1_000;
const PACED_CONNECTIONS = 16;
const SATURATION_CONNECTIONS = 32;
const RELOAD_PHASE_MS = 8_000;
const SIDE_BY_SIDE = 10;
const BODY = 'x'.repeat(1024);

type Path = 'direct' | 'chain' | 'mesh';
const PATHS: readonly Path[] = ['direct', 'chain', 'mesh'];

/** Every process this run started, stopped by pid at the end. */
const started: ChildProcess[] = [];
const namespaces: string[] = [];

// ---------------------------------------------------------------------------------------------
// Child modes: the load generator and the agent's metrics pipeline run as this script's children.

async function child(mode: string, arg: string): Promise<void> {
  if (mode === '--load') {
    const result = await runLoad(JSON.parse(arg) as LoadSpec);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  if (mode === '--receiver') {
    // Takes every second, more often than the agent (every 5 s and per scrape) does.
    startSidecarMetrics({
      socketPath: arg,
      path: SIDECAR_STATS_PATH,
      httpZone: SIDECAR_STATS_HTTP_ZONE,
      tcpZone: SIDECAR_STATS_TCP_ZONE,
      takeIntervalMs: 1_000,
    });
    process.stdout.write('ready\n');
    // The pipeline's timer does not hold the process open; the run ends it by pid.
    setInterval(() => undefined, 60_000);
    return;
  }
  throw new Error(`unknown child mode "${mode}": expected --load or --receiver`);
}

// ---------------------------------------------------------------------------------------------
// Namespaces, processes and rules.

function run(file: string, args: readonly string[], input?: string): string {
  return execFileSync(file, args, {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 30_000,
  });
}

const inNs = (ns: string, file: string, args: readonly string[], input?: string): string =>
  run('ip', ['netns', 'exec', ns, file, ...args], input);

function addNamespace(ns: string): void {
  run('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

function createPods(): void {
  addNamespace(CLIENT_NS);
  addNamespace(SERVER_NS);
  run('ip', ['link', 'add', CLIENT_LINK, 'type', 'veth', 'peer', 'name', SERVER_LINK]);
  run('ip', ['link', 'set', CLIENT_LINK, 'netns', CLIENT_NS]);
  run('ip', ['link', 'set', SERVER_LINK, 'netns', SERVER_NS]);
  for (const [ns, link, address] of [
    [CLIENT_NS, CLIENT_LINK, CLIENT_IP],
    [SERVER_NS, SERVER_LINK, SERVER_IP],
  ] as const) {
    run('ip', ['-n', ns, 'addr', 'add', `${address}/30`, 'dev', link]);
    run('ip', ['-n', ns, 'link', 'set', link, 'up']);
  }
}

/** Starts file in ns on cpu (as uid when given); its pid is the program's own (ip and taskset exec). */
function startIn(
  ns: string,
  cpu: string,
  command: readonly string[],
  uid?: number,
): { child: ChildProcess; output: () => string } {
  const asUid =
    uid === undefined
      ? []
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all'];
  const proc = spawn('ip', ['netns', 'exec', ns, 'taskset', '-c', cpu, ...asUid, ...command], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  let output = '';
  proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child: proc, output: () => output };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until every port listens (TCP) in ns, for at most timeoutMs. */
async function waitListening(ns: string, ports: readonly number[], what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const listening = inNs(ns, 'ss', ['-Hltn']);
    if (ports.every((port) => new RegExp(`:${port}\\s`).test(listening))) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${ports.join(', ')}`);
    await sleep(50);
  }
}

/** Starts nginx in ns on CPU 0 with the configuration file; returns its master's pid. */
async function startNginx(
  ns: string,
  prefix: string,
  config: string,
  ports: readonly number[],
  uid: number | undefined,
): Promise<number> {
  const { child: proc, output } = startIn(
    ns,
    SERVER_CPU,
    ['nginx', '-e', 'stderr', '-p', prefix, '-c', config, '-g', 'daemon off;'],
    uid,
  );
  await waitListening(ns, ports, `nginx ${config}`).catch((error: Error) => {
    throw new Error(`${error.message}: ${output()}`);
  });
  return proc.pid ?? 0;
}

/** Replaces the nat table of ns with the given iptables-restore input (none: empty). */
function setRules(ns: string, input: string | undefined): void {
  inNs(ns, 'iptables', ['-t', 'nat', '-F']);
  inNs(ns, 'iptables', ['-t', 'nat', '-X']);
  if (input !== undefined) inNs(ns, 'iptables-restore', ['--noflush'], input);
}

function chainRules(): { client: string; server: string } {
  return {
    client: [
      '*nat',
      `-A OUTPUT -p tcp -d ${SERVER_IP} --dport ${APP_PORT} -m owner ! --uid-owner ${SIDECAR_UID} -j REDIRECT --to-ports ${CHAIN_OUT_PORT}`,
      'COMMIT',
      '',
    ].join('\n'),
    server: [
      '*nat',
      `-A PREROUTING -p tcp --dport ${APP_PORT} -j REDIRECT --to-ports ${CHAIN_IN_PORT}`,
      'COMMIT',
      '',
    ].join('\n'),
  };
}

function usePath(path: Path): void {
  if (path === 'direct') {
    setRules(CLIENT_NS, undefined);
    setRules(SERVER_NS, undefined);
  } else if (path === 'chain') {
    const rules = chainRules();
    setRules(CLIENT_NS, rules.client);
    setRules(SERVER_NS, rules.server);
  } else {
    // What `run --role init` installs in every injected pod, with its default flags.
    const init = printRestoreInput(
      buildRedirectModel({ ignoreIncomingPorts: [], ignoreOutgoingPorts: [] }).ipv4,
    );
    setRules(CLIENT_NS, init);
    setRules(SERVER_NS, init);
  }
}

/** Packets the REDIRECT rules of ns matched: the first packet of each redirected connection. */
function redirectedConnections(ns: string): number {
  return inNs(ns, 'iptables-save', ['-c', '-t', 'nat'])
    .split('\n')
    .filter((line) => line.includes('-j REDIRECT'))
    .reduce((sum, line) => sum + Number(/^\[(\d+):/.exec(line)?.[1] ?? 0), 0);
}

function cleanup(dir: string | undefined): void {
  for (const ns of namespaces) {
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
  for (const proc of started) if (proc.exitCode === null) proc.kill('SIGKILL');
  for (const ns of namespaces) {
    try {
      run('ip', ['netns', 'delete', ns]);
    } catch {
      // already gone
    }
  }
  namespaces.length = 0;
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Configurations.

function appConfig(dir: string): string {
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

/** The hand-written outbound proxy: mTLS to the server pod over a keep-alive pool. */
function chainOutConfig(dir: string): string {
  return `worker_processes 1;
pid ${dir}/chain-out.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream server_pod {
        server ${SERVER_IP}:${APP_PORT};
        keepalive 32;
    }
    server {
        listen ${CHAIN_OUT_PORT};
        location / {
            proxy_pass https://server_pod;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_certificate ${dir}/client.pem;
            proxy_ssl_certificate_key ${dir}/client.pem;
            proxy_ssl_trusted_certificate ${dir}/bundle.crt;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 3;
            proxy_ssl_name server.bench.svc;
            proxy_ssl_session_reuse on;
        }
    }
}
`;
}

/** The hand-written inbound proxy: terminates mTLS, keep-alive pool to the app. */
function chainInConfig(dir: string): string {
  return `worker_processes 1;
pid ${dir}/chain-in.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app {
        server 127.0.0.1:${APP_PORT};
        keepalive 32;
    }
    server {
        listen ${CHAIN_IN_PORT} ssl;
        ssl_certificate ${dir}/server.pem;
        ssl_certificate_key ${dir}/server.pem;
        ssl_client_certificate ${dir}/bundle.crt;
        ssl_verify_client on;
        ssl_verify_depth 3;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`;
}

/** One Service, bench/server, backed by the server pod; mTLS strict. */
function benchSnapshot(): MeshSnapshot {
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
    peers: {},
  };
}

function podContext(
  dir: string,
  meshModule: string,
  pod: 'client' | 'server',
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
function makeRunDir(path: string): string {
  mkdirSync(path, { recursive: true });
  for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs'])
    mkdirSync(join(path, temp), { recursive: true });
  execFileSync('chown', ['-R', `${SIDECAR_UID}:${SIDECAR_UID}`, path]);
  return path;
}

function writeConfig(path: string, text: string): string {
  writeFileSync(path, text);
  chownSync(path, SIDECAR_UID, SIDECAR_UID);
  return path;
}

// ---------------------------------------------------------------------------------------------
// Load.

async function load(spec: Omit<LoadSpec, 'host' | 'port'>): Promise<LoadResult> {
  const full: LoadSpec = { host: SERVER_IP, port: APP_PORT, ...spec };
  const { child: proc, output } = startIn(CLIENT_NS, CLIENT_CPU, [
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

interface RoundResult {
  readonly c1: LoadResult;
  readonly paced: LoadResult;
  readonly saturation: LoadResult;
  /** Connections the rules redirected in the client and the server pod during the round. */
  readonly redirected: { readonly client: number; readonly server: number };
}

interface MeshSidecars {
  readonly clientMaster: number;
  readonly serverMaster: number;
  readonly receivers: readonly number[];
}

const sidecarPids = (mesh: MeshSidecars): number[] => [
  ...processTree(mesh.clientMaster),
  ...processTree(mesh.serverMaster),
];

/** The three phases on the current path; for the mesh, CPU during paced and RSS under load. */
async function measurePath(
  path: Path,
  mesh: MeshSidecars,
  sink: { cpu: number[]; receiverCpu: number[]; rssLoad: number[] },
): Promise<RoundResult> {
  usePath(path);
  const c1 = await load({
    mode: 'closed',
    connections: 1,
    warmupMs: WARMUP_MS,
    durationMs: PHASE_MS,
    retry: false,
  });
  const cpuBefore = cpuSeconds(sidecarPids(mesh));
  const receiverBefore = cpuSeconds(mesh.receivers);
  const paced = await load({
    mode: 'paced',
    connections: PACED_CONNECTIONS,
    rate: PACED_RATE,
    warmupMs: WARMUP_MS,
    durationMs: PHASE_MS,
    retry: false,
  });
  if (path === 'mesh') {
    // Warm-up included: the whole phase ran at the paced rate.
    const seconds = (WARMUP_MS + PHASE_MS) / 1000;
    const perThousand = (cpu: number): number => cpu / seconds / (paced.rps / 1000);
    sink.cpu.push(perThousand(cpuSeconds(sidecarPids(mesh)) - cpuBefore));
    sink.receiverCpu.push(perThousand(cpuSeconds(mesh.receivers) - receiverBefore));
  }
  const saturationRun = load({
    mode: 'closed',
    connections: SATURATION_CONNECTIONS,
    warmupMs: WARMUP_MS,
    durationMs: PHASE_MS,
    retry: false,
  });
  if (path === 'mesh') {
    await sleep(WARMUP_MS + PHASE_MS / 2);
    const both =
      memoryOf(processTree(mesh.clientMaster)).rssMib +
      memoryOf(processTree(mesh.serverMaster)).rssMib;
    sink.rssLoad.push(both / 2);
  }
  const saturation = await saturationRun;
  // Rules are rewritten for each path, so the counters cover this path's three phases.
  const redirected = {
    client: redirectedConnections(CLIENT_NS),
    server: redirectedConnections(SERVER_NS),
  };
  return { c1, paced, saturation, redirected };
}

// ---------------------------------------------------------------------------------------------
// Reloads and memory.

async function measureReloads(
  mesh: MeshSidecars,
): Promise<{ result: LoadResult; reloads: number }> {
  usePath('mesh');
  const running = load({
    mode: 'paced',
    connections: PACED_CONNECTIONS,
    rate: PACED_RATE,
    warmupMs: WARMUP_MS,
    durationMs: RELOAD_PHASE_MS,
    retry: true,
  });
  let reloads = 0;
  await sleep(WARMUP_MS);
  for (let second = 0; second < RELOAD_PHASE_MS / 1000; second += 1) {
    await sleep(500);
    process.kill(mesh.clientMaster, 'SIGHUP');
    process.kill(mesh.serverMaster, 'SIGHUP');
    reloads += 1;
    await sleep(500);
  }
  return { result: await running, reloads };
}

interface SideBySide {
  readonly nginxPss: number;
  readonly nginxRss: number;
  readonly agentPss: number | undefined;
  readonly agentRss: number | undefined;
  readonly agentNginxPss: number | undefined;
}

/** PSS per sidecar with SIDE_BY_SIDE of them running: nginx with the rendered config, then agents. */
async function measureSideBySide(dir: string, meshModule: string): Promise<SideBySide> {
  const pods = Array.from({ length: SIDE_BY_SIDE }, (_, index) => `nmb-${ID}-p${index}`);
  for (const ns of pods) addNamespace(ns);
  const masters: number[] = [];
  for (const [index, ns] of pods.entries()) {
    const runDir = makeRunDir(join(dir, `side-${index}`));
    const { text } = renderSidecarConfig(
      benchSnapshot(),
      podContext(dir, meshModule, 'server', runDir),
    );
    const config = writeConfig(join(runDir, 'nginx.conf'), text);
    masters.push(await startNginx(ns, runDir, config, [8900, 8901], SIDECAR_UID));
  }
  await sleep(1_000);
  const nginx = memoryOf(masters.flatMap(processTree));
  for (const pid of masters) process.kill(pid, 'SIGQUIT');
  await sleep(500);

  const binary = join(ROOT, 'dist', 'nginx-meshctl');
  if (!existsSync(binary)) {
    return {
      nginxPss: nginx.pssMib / SIDE_BY_SIDE,
      nginxRss: nginx.rssMib / SIDE_BY_SIDE,
      agentPss: undefined,
      agentRss: undefined,
      agentNginxPss: undefined,
    };
  }
  const agents = pods.map((ns, index) => {
    const runDir = makeRunDir(join(dir, `agent-${index}`));
    return startIn(ns, SERVER_CPU, [
      binary,
      'run',
      '--role',
      'agent',
      '--run-dir',
      runDir,
      '--status-bind-address',
      '127.0.0.1:8887',
      // No registrar or controller: the agent serves its transparent configuration.
      '--registrar-url',
      'https://127.0.0.1:1',
      '--token-path',
      join(dir, 'no-token'),
      '--nginx-modules',
      `/usr/lib/nginx/modules/ngx_stream_module.so,${meshModule}`,
    ]).child;
  });
  for (const ns of pods) await waitListening(ns, [8887, 8900], 'agent');
  await sleep(2_000);
  const agentPids = agents.map((agent) => agent.pid ?? 0);
  const agentOnly = memoryOf(agentPids);
  const agentNginx = memoryOf(
    agentPids.flatMap((pid) => processTree(pid).slice(1).flatMap(processTree)),
  );
  return {
    nginxPss: nginx.pssMib / SIDE_BY_SIDE,
    nginxRss: nginx.rssMib / SIDE_BY_SIDE,
    agentPss: agentOnly.pssMib / SIDE_BY_SIDE,
    agentRss: agentOnly.rssMib / SIDE_BY_SIDE,
    agentNginxPss: agentNginx.pssMib / SIDE_BY_SIDE,
  };
}

// ---------------------------------------------------------------------------------------------
// Report.

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
};

const ms = (us: number): string => (us / 1000).toFixed(3);

function describe(path: Path, rounds: readonly RoundResult[]): string {
  const pick = (f: (round: RoundResult) => number): number => median(rounds.map(f));
  const errors = rounds.reduce(
    (sum, round) => sum + round.c1.errors + round.paced.errors + round.saturation.errors,
    0,
  );
  return [
    `${path.padEnd(7)} c=1 p50/p99 ${ms(pick((r) => r.c1.p50Us))}/${ms(pick((r) => r.c1.p99Us))} ms`,
    `paced p50/p90/p99 ${ms(pick((r) => r.paced.p50Us))}/${ms(pick((r) => r.paced.p90Us))}/${ms(pick((r) => r.paced.p99Us))} ms`,
    `(timer lag p50 ${ms(pick((r) => r.paced.sendLagP50Us))})`,
    `c=${SATURATION_CONNECTIONS} ${pick((r) => r.saturation.rps).toFixed(0)} req/s`,
    `(spread ${rounds.map((r) => r.saturation.rps.toFixed(0)).join('/')})`,
    `errors ${errors}`,
    ...(path === 'direct'
      ? []
      : [
          `connections redirected per round: client pod ${pick((r) => r.redirected.client)}, server pod ${pick((r) => r.redirected.server)}`,
          `for ${pick((r) => r.c1.completed + r.paced.completed + r.saturation.completed)} requests`,
        ]),
  ].join('  ');
}

function versions(): string {
  // nginx prints its version and build to stderr.
  const nginx = spawnSync('nginx', ['-V'], { encoding: 'utf8' }).stderr;
  const nginxVersion = nginx.split('\n')[0] ?? 'nginx';
  return [
    `node ${process.version} (OpenSSL ${process.versions.openssl}), kernel ${release()}, ${cpus()[0]?.model ?? '?'} x${cpus().length}`,
    `${nginxVersion} ${/built with (OpenSSL [^ ]+)/.exec(nginx)?.[1] ?? ''}`.trim(),
    `load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('dataplane: needs root (network namespaces and iptables)\n');
    process.exitCode = 2;
    return;
  }
  const meshModule =
    run('bash', [join(ROOT, 'scripts', 'build-ngx-mesh.sh')])
      .trim()
      .split('\n')
      .at(-1) ?? '';
  const dir = mkdtempSync(join(tmpdir(), 'bench-dataplane-'));
  const stop = (): void => {
    cleanup(dir);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await benchmark(dir, meshModule);
  } finally {
    cleanup(dir);
  }
}

async function writeCertificates(dir: string): Promise<void> {
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

/** The metrics pipeline of the sidecar whose nginx serves its counts on socketPath. */
async function startReceiver(ns: string, socketPath: string): Promise<number> {
  const { child: proc, output } = startIn(ns, SERVER_CPU, [
    process.execPath,
    process.argv[1] ?? '',
    '--receiver',
    socketPath,
  ]);
  const deadline = Date.now() + 10_000;
  while (!output().includes('ready')) {
    if (Date.now() > deadline || proc.exitCode !== null)
      throw new Error(`metrics pipeline did not start: ${output()}`);
    await sleep(50);
  }
  return proc.pid ?? 0;
}

async function benchmark(dir: string, meshModule: string): Promise<void> {
  await writeCertificates(dir);
  createPods();
  const app = makeRunDir(join(dir, 'app'));
  await startNginx(
    SERVER_NS,
    app,
    writeConfig(join(app, 'app.conf'), appConfig(app)),
    [APP_PORT],
    undefined,
  );
  const out = makeRunDir(join(dir, 'chain-out'));
  await startNginx(
    CLIENT_NS,
    out,
    writeConfig(join(out, 'nginx.conf'), chainOutConfig(dir)),
    [CHAIN_OUT_PORT],
    SIDECAR_UID,
  );
  const inbound = makeRunDir(join(dir, 'chain-in'));
  await startNginx(
    SERVER_NS,
    inbound,
    writeConfig(join(inbound, 'nginx.conf'), chainInConfig(dir)),
    [CHAIN_IN_PORT],
    SIDECAR_UID,
  );
  const meshMasters: number[] = [];
  const sockets: string[] = [];
  for (const [pod, ns] of [
    ['client', CLIENT_NS],
    ['server', SERVER_NS],
  ] as const) {
    const runDir = makeRunDir(join(dir, `mesh-${pod}`));
    // nginx runs as the sidecar's uid, as in the pod, where the agent makes this directory.
    sockets.push(prepareStatsSocket(runDir));
    chownSync(join(runDir, SIDECAR_STATS_DIR), SIDECAR_UID, SIDECAR_UID);
    const { text } = renderSidecarConfig(benchSnapshot(), podContext(dir, meshModule, pod, runDir));
    const config = writeConfig(join(runDir, 'nginx.conf'), text);
    meshMasters.push(await startNginx(ns, runDir, config, [8900, 8901], SIDECAR_UID));
  }
  const mesh: MeshSidecars = {
    clientMaster: meshMasters[0] ?? 0,
    serverMaster: meshMasters[1] ?? 0,
    receivers: [
      await startReceiver(CLIENT_NS, sockets[0] ?? ''),
      await startReceiver(SERVER_NS, sockets[1] ?? ''),
    ],
  };
  await sleep(500);
  const rssIdle =
    (memoryOf(processTree(mesh.clientMaster)).rssMib +
      memoryOf(processTree(mesh.serverMaster)).rssMib) /
    2;

  process.stdout.write(
    [
      'dataplane: 1 KB GET between two network namespaces (veth 198.19.250.0/30)',
      versions(),
      'mesh sidecars: nginx started directly with the configuration renderSidecarConfig renders',
      `(no agent process in the request path), mTLS strict, init-role iptables rules; servers on CPU ${SERVER_CPU}, client on CPU ${CLIENT_CPU}`,
      `${ROUNDS} rounds x (c=1, paced ${PACED_RATE} rps over ${PACED_CONNECTIONS} connections, c=${SATURATION_CONNECTIONS}), ${PHASE_MS / 1000} s each after ${WARMUP_MS / 1000} s warm-up`,
      '',
    ].join('\n'),
  );

  const results: Record<Path, RoundResult[]> = { direct: [], chain: [], mesh: [] };
  const sink = { cpu: [] as number[], receiverCpu: [] as number[], rssLoad: [] as number[] };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const path of PATHS) results[path].push(await measurePath(path, mesh, sink));
    process.stdout.write(
      `round ${round + 1}/${ROUNDS} done (load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})\n`,
    );
  }
  const reload = await measureReloads(mesh);
  const sideBySide = await measureSideBySide(dir, meshModule);
  report(results, sink, rssIdle, reload, sideBySide);
}

function report(
  results: Record<Path, RoundResult[]>,
  sink: { cpu: number[]; receiverCpu: number[]; rssLoad: number[] },
  rssIdle: number,
  reload: { result: LoadResult; reloads: number },
  side: SideBySide,
): void {
  const pick = (path: Path, f: (round: RoundResult) => number): number =>
    median(results[path].map(f));
  const added = (f: (round: RoundResult) => number): number =>
    (pick('mesh', f) - pick('direct', f)) / 1000;
  const figures: [string, number, string, string][] = [
    ['added_p50_ms_c1', added((r) => r.c1.p50Us), 'ms', 'target <= 0.2'],
    ['added_p99_ms_c1', added((r) => r.c1.p99Us), 'ms', ''],
    ['added_p50_ms_paced', added((r) => r.paced.p50Us), 'ms', ''],
    ['added_p99_ms_paced', added((r) => r.paced.p99Us), 'ms', ''],
    [
      'throughput_ratio_mesh_vs_direct',
      pick('mesh', (r) => r.saturation.rps) / pick('direct', (r) => r.saturation.rps),
      'x',
      '',
    ],
    [
      'throughput_ratio_mesh_vs_nginx_chain',
      pick('mesh', (r) => r.saturation.rps) / pick('chain', (r) => r.saturation.rps),
      'x',
      'target >= 0.9',
    ],
    [
      'p99_ratio_mesh_vs_nginx_chain',
      pick('mesh', (r) => r.paced.p99Us) / pick('chain', (r) => r.paced.p99Us),
      'x',
      'target <= 1.1',
    ],
    ['sidecar_rss_mib_idle', rssIdle, 'MiB', ''],
    ['sidecar_rss_mib_load', median(sink.rssLoad), 'MiB', ''],
    ['sidecar_pss_mib_per_pod_10', side.nginxPss + (side.agentPss ?? 0), 'MiB', 'target <= 30'],
    ['vcpu_per_1000_rps', median(sink.cpu), 'vCPU', ''],
    ['errors_per_reload', reload.result.errors / reload.reloads, 'requests', ''],
    [
      'failed_after_retry_per_reload',
      reload.result.failedAfterRetry / reload.reloads,
      'requests',
      'target 0',
    ],
  ];
  const lines = [
    '',
    ...PATHS.map((path) => describe(path, results[path])),
    '',
    `mesh sidecar CPU during paced load: ${median(sink.cpu).toFixed(4)} vCPU per 1,000 rps for both nginx (master + worker), plus ${median(sink.receiverCpu).toFixed(4)} for both agents' metrics pipelines`,
    `sidecar RSS (nginx master + worker, mean of the two pods): idle ${rssIdle.toFixed(1)} MiB, under c=${SATURATION_CONNECTIONS} load ${median(sink.rssLoad).toFixed(1)} MiB`,
    `${SIDE_BY_SIDE} sidecars side by side, per pod: nginx with the rendered config PSS ${side.nginxPss.toFixed(1)} MiB (RSS ${side.nginxRss.toFixed(1)})` +
      (side.agentPss === undefined
        ? '; agent not measured (dist/nginx-meshctl missing: npm run build:binary)'
        : `; agent process (Node SEA, no controller) PSS ${side.agentPss.toFixed(1)} MiB (RSS ${side.agentRss?.toFixed(1) ?? '?'}), its own transparent nginx PSS ${side.agentNginxPss?.toFixed(1) ?? '?'}; the figure is nginx + agent`),
    `reloads: ${reload.reloads} SIGHUPs of both sidecars during ${RELOAD_PHASE_MS / 1000} s at ${PACED_RATE} rps: ${reload.result.errors} requests failed (first: ${reload.result.firstError || 'none'}), ${reload.result.failedAfterRetry} still failed after one retry; ${reload.result.connectionsOpened} connections opened; p99 ${ms(reload.result.p99Us)} ms, max ${ms(reload.result.maxUs)} ms`,
    `load now: ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
    '',
    ...figures
      .filter(([, , , target]) => target !== '')
      .map(([name, value, , target]) => `${name} ${value.toFixed(3)} (${target})`),
    '',
    ...figures.map(([name, value, unit]) => `${name} ${value.toFixed(3)} ${unit}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

const [mode, arg] = process.argv.slice(2);
(mode === undefined ? main() : child(mode, arg ?? '')).catch((error: unknown) => {
  process.stderr.write(`dataplane: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
