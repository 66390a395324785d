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
// on CPU 0. Then: nginx reloads (SIGHUP, once a second) under paced load, with the rendered
// configuration and, as the baseline, without its mesh_keepalive_drain line; and the memory of ten
// sidecars side by side (PSS), with and without the agent's own process.
// The pods, their sidecars and the load are bench/support/netns-pods.ts's, shared with tracing.ts.
// Needs root (namespaces, iptables). Everything is removed at the end, also on failure.
//
//   BENCH_ONLY=memory npm run bench -- dataplane   only the ten sidecars side by side (PSS),
//                                                  without the pods, rounds and reloads
//   BENCH_ONLY=path npm run bench -- dataplane     only the pods and the rounds, without the
//                                                  reloads and the ten sidecars
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SIDECAR_AGENT_ENV,
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
  SIDECAR_UID,
} from '../src/manifests/constants';
import { renderSidecarConfig } from '../src/render/sidecar';
import { startSidecarMetrics } from '../src/runtime/agent/metrics/sidecar-metrics';
import type { LoadResult } from './support/load';
import {
  APP_PORT,
  benchSnapshot,
  CLIENT_CPU,
  loadAverage,
  loadChild,
  makeRunDir,
  makeSidecarRunDir,
  median,
  ms,
  PodNet,
  podContext,
  runPodBench,
  SERVER_CPU,
  SERVER_IP,
  SIDECAR_PORTS,
  sleep,
  versions,
  writeCertificates,
  writeConfig,
  writeSidecarFiles,
} from './support/netns-pods';
import { cpuSeconds, memoryOf, processTree } from './support/proc-stats';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

// npm runs benchmarks from the checkout's root; the bundle itself lives under node_modules.
const ROOT = process.cwd();
const net = new PodNet('nmb');
const CHAIN_OUT_PORT = 15001;
const CHAIN_IN_PORT = 15006;
const ROUNDS = 5;
const WARMUP_MS = 1_000;
const PHASE_MS = 5_000;
const PACED_RATE = 1_000;
const PACED_CONNECTIONS = 16;
const SATURATION_CONNECTIONS = 32;
const RELOAD_PHASE_MS = 8_000;
const SIDE_BY_SIDE = 10;

type Path = 'direct' | 'chain' | 'mesh';
const PATHS: readonly Path[] = ['direct', 'chain', 'mesh'];

// ---------------------------------------------------------------------------------------------
// Child modes: the load generator and the agent's metrics pipeline run as this script's children.

async function child(mode: string, arg: string): Promise<void> {
  if (mode === '--load') {
    await loadChild(arg);
    return;
  }
  if (mode === '--receiver') {
    // Takes as the agent does in the pod: on its own interval (no scrape comes here).
    startSidecarMetrics({
      socketPath: arg,
      path: SIDECAR_STATS_PATH,
      httpZone: SIDECAR_STATS_HTTP_ZONE,
      tcpZone: SIDECAR_STATS_TCP_ZONE,
    });
    process.stdout.write('ready\n');
    // The pipeline's timer does not hold the process open; the run ends it by pid.
    setInterval(() => undefined, 60_000);
    return;
  }
  throw new Error(`unknown child mode "${mode}": expected --load or --receiver`);
}

// ---------------------------------------------------------------------------------------------
// Rules.

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
    net.setRules(net.clientNs, undefined);
    net.setRules(net.serverNs, undefined);
  } else if (path === 'chain') {
    const rules = chainRules();
    net.setRules(net.clientNs, rules.client);
    net.setRules(net.serverNs, rules.server);
  } else {
    net.useInitRules();
  }
}

// ---------------------------------------------------------------------------------------------
// Configurations.

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

// ---------------------------------------------------------------------------------------------
// Rounds.

interface RoundResult {
  readonly c1: LoadResult;
  readonly paced: LoadResult;
  readonly saturation: LoadResult;
  /** Connections the rules redirected in the client and the server pod during the round. */
  readonly redirected: { readonly client: number; readonly server: number };
  /** CPU time of the path's proxies (nginx masters and workers) per request at saturation. */
  readonly proxyCpuPerRequestUs: number;
}

interface MeshSidecars {
  readonly clientMaster: number;
  readonly serverMaster: number;
  readonly receivers: readonly number[];
  /** The two sidecars' nginx.conf files, client's first. */
  readonly configs: readonly string[];
}

interface ReloadResult {
  readonly result: LoadResult;
  readonly reloads: number;
}

const sidecarPids = (mesh: MeshSidecars): number[] => [
  ...processTree(mesh.clientMaster),
  ...processTree(mesh.serverMaster),
];

/**
 * The three phases on the current path; for the mesh, CPU during paced and RSS under load; for
 * the chain and the mesh, their proxies' CPU at saturation (chainPids: the chain's processes).
 */
async function measurePath(
  path: Path,
  mesh: MeshSidecars,
  chainPids: () => number[],
  sink: { cpu: number[]; receiverCpu: number[]; rssLoad: number[] },
): Promise<RoundResult> {
  usePath(path);
  const c1 = await net.load({
    mode: 'closed',
    connections: 1,
    warmupMs: WARMUP_MS,
    durationMs: PHASE_MS,
    retry: false,
  });
  const cpuBefore = cpuSeconds(sidecarPids(mesh));
  const receiverBefore = cpuSeconds(mesh.receivers);
  const paced = await net.load({
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
  const proxies = path === 'mesh' ? sidecarPids(mesh) : path === 'chain' ? chainPids() : [];
  const proxyCpuBefore = cpuSeconds(proxies);
  const saturationRun = net.load({
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
  const proxyCpu = cpuSeconds(proxies) - proxyCpuBefore;
  // Rules are rewritten for each path, so the counters cover this path's three phases.
  const redirected = {
    client: net.redirectedConnections(net.clientNs),
    server: net.redirectedConnections(net.serverNs),
  };
  return {
    c1,
    paced,
    saturation,
    redirected,
    proxyCpuPerRequestUs:
      // Warm-up included in both: the whole phase ran at the saturation rate.
      (proxyCpu * 1e6) / ((saturation.rps * (WARMUP_MS + PHASE_MS)) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// Reloads and memory.

/** The rendered line that keeps keep-alive connections through reloads (ngx_mesh_drain.c). */
const DRAIN_DIRECTIVE = 'mesh_keepalive_drain on;';

/**
 * Reloads of both sidecars under paced load: first with the rendered configuration, then, as the
 * baseline in the same run, with its mesh_keepalive_drain line removed (nginx's own behaviour:
 * idle keep-alive connections closed at each reload). The rendered configuration is back at the end.
 */
async function measureReloads(
  mesh: MeshSidecars,
): Promise<{ drain: ReloadResult; withoutDrain: ReloadResult }> {
  const rendered = mesh.configs.map((config) => readFileSync(config, 'utf8'));
  if (!rendered.every((text) => text.includes(DRAIN_DIRECTIVE)))
    throw new Error(`the rendered sidecar configuration has no "${DRAIN_DIRECTIVE}"`);
  const drain = await reloadPhase(mesh);
  mesh.configs.forEach((config, index) =>
    writeFileSync(config, (rendered[index] ?? '').replace(DRAIN_DIRECTIVE, '')),
  );
  const withoutDrain = await reloadPhase(mesh);
  mesh.configs.forEach((config, index) => writeFileSync(config, rendered[index] ?? ''));
  process.kill(mesh.clientMaster, 'SIGHUP');
  process.kill(mesh.serverMaster, 'SIGHUP');
  await sleep(1_000);
  return { drain, withoutDrain };
}

async function reloadPhase(mesh: MeshSidecars): Promise<ReloadResult> {
  usePath('mesh');
  const running = net.load({
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

/** Waits until the processes together use under 5% of a CPU over a second, for at most 10 s. */
async function settle(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  let before = cpuSeconds(pids);
  while (Date.now() < deadline) {
    await sleep(1_000);
    const now = cpuSeconds(pids);
    if (now - before < 0.05) return;
    before = now;
  }
}

/** PSS per sidecar with SIDE_BY_SIDE of them running: nginx with the rendered config, then agents. */
async function measureSideBySide(dir: string, meshModule: string): Promise<SideBySide> {
  const pods = Array.from(
    { length: SIDE_BY_SIDE },
    (_, index) => `${net.prefix}-${net.id}-p${index}`,
  );
  for (const ns of pods) net.addNamespace(ns);
  const masters: number[] = [];
  for (const [index, ns] of pods.entries()) {
    // The rendered config listens on the stats socket, whose directory the agent makes.
    const { runDir } = makeSidecarRunDir(join(dir, `side-${index}`));
    const config = writeSidecarFiles(
      runDir,
      renderSidecarConfig(benchSnapshot(), podContext(dir, meshModule, 'server', runDir)),
    );
    masters.push(await net.startNginx(ns, runDir, config, SIDECAR_PORTS, SIDECAR_UID));
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
  // The executable's pages leave the page cache first. Just built, the whole file is cached, and
  // every page an agent faults in then maps its cached neighbours too (fault-around): about 1.7
  // MiB more per agent than on a node, where the cache holds only what processes read.
  spawnSync('dd', [`if=${binary}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  const agents = pods.map((ns, index) => {
    const runDir = makeRunDir(join(dir, `agent-${index}`));
    return net.startIn(ns, SERVER_CPU, [
      // The environment the injected sidecar container gives the agent.
      'env',
      ...Object.entries(SIDECAR_AGENT_ENV).map(([name, value]) => `${name}=${value}`),
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
  for (const ns of pods) await net.waitListening(ns, [8887, 8900], 'agent');
  await sleep(2_000);
  const agentPids = agents.map((agent) => agent.pid ?? 0);
  // Ten agents start at once on one CPU; on a busy machine some are still at their start-up
  // work two seconds later. The figure is what an agent keeps once started.
  await settle(agentPids);
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

/** Target of sidecar_pss_mib_per_pod_10: nginx + agent PSS per pod with ten side by side. */
const PSS_TARGET: Target = { how: '<=', limit: 24 };

const pssPerPod = (side: SideBySide): number => side.nginxPss + (side.agentPss ?? 0);

function pssFigure(side: SideBySide): string {
  return targetLine('sidecar_pss_mib_per_pod_10', pssPerPod(side), PSS_TARGET);
}

function sideBySideLine(side: SideBySide): string {
  return (
    `${SIDE_BY_SIDE} sidecars side by side, per pod: nginx with the rendered config PSS ${side.nginxPss.toFixed(1)} MiB (RSS ${side.nginxRss.toFixed(1)})` +
    (side.agentPss === undefined
      ? '; agent not measured (dist/nginx-meshctl missing: npm run build:binary)'
      : `; agent process (Node SEA, no controller) PSS ${side.agentPss.toFixed(1)} MiB (RSS ${side.agentRss?.toFixed(1) ?? '?'}), its own transparent nginx PSS ${side.agentNginxPss?.toFixed(1) ?? '?'}; the figure is nginx + agent`)
  );
}

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
    ...(path === 'direct'
      ? []
      : [`proxies' CPU ${pick((r) => r.proxyCpuPerRequestUs).toFixed(1)} us per request`]),
    `errors ${errors}`,
    ...(path === 'direct'
      ? []
      : [
          `connections redirected per round: client pod ${pick((r) => r.redirected.client)}, server pod ${pick((r) => r.redirected.server)}`,
          `for ${pick((r) => r.c1.completed + r.paced.completed + r.saturation.completed)} requests`,
        ]),
  ].join('  ');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const only = process.env['BENCH_ONLY'];
  if (only !== undefined && only !== 'memory' && only !== 'path') {
    throw new Error(`unknown BENCH_ONLY "${only}": expected memory or path`);
  }
  await runPodBench(
    'dataplane',
    net,
    ROOT,
    only === 'memory'
      ? memoryOnly
      : (dir, meshModule) => benchmark(dir, meshModule, only === 'path'),
  );
}

/** The side-by-side memory figure alone. */
async function memoryOnly(dir: string, meshModule: string): Promise<void> {
  await writeCertificates(dir);
  const side = await measureSideBySide(dir, meshModule);
  const lines = [sideBySideLine(side), '', pssFigure(side), ''];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The metrics pipeline of the sidecar whose nginx serves its counts on socketPath. */
async function startReceiver(ns: string, socketPath: string): Promise<number> {
  const { child: proc, output } = net.startIn(ns, SERVER_CPU, [
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

async function benchmark(dir: string, meshModule: string, pathOnly: boolean): Promise<void> {
  await writeCertificates(dir);
  net.createPods();
  await net.startApp(dir);
  const out = makeRunDir(join(dir, 'chain-out'));
  const chainOut = await net.startNginx(
    net.clientNs,
    out,
    writeConfig(join(out, 'nginx.conf'), chainOutConfig(dir)),
    [CHAIN_OUT_PORT],
    SIDECAR_UID,
  );
  const inbound = makeRunDir(join(dir, 'chain-in'));
  const chainIn = await net.startNginx(
    net.serverNs,
    inbound,
    writeConfig(join(inbound, 'nginx.conf'), chainInConfig(dir)),
    [CHAIN_IN_PORT],
    SIDECAR_UID,
  );
  const chainPids = (): number[] => [...processTree(chainOut), ...processTree(chainIn)];
  const meshMasters: number[] = [];
  const sockets: string[] = [];
  const configs: string[] = [];
  for (const [pod, ns] of [
    ['client', net.clientNs],
    ['server', net.serverNs],
  ] as const) {
    const { runDir, socket } = makeSidecarRunDir(join(dir, `mesh-${pod}`));
    sockets.push(socket);
    const config = writeSidecarFiles(
      runDir,
      renderSidecarConfig(benchSnapshot(), podContext(dir, meshModule, pod, runDir)),
    );
    configs.push(config);
    meshMasters.push(await net.startNginx(ns, runDir, config, SIDECAR_PORTS, SIDECAR_UID));
  }
  const mesh: MeshSidecars = {
    clientMaster: meshMasters[0] ?? 0,
    serverMaster: meshMasters[1] ?? 0,
    configs,
    receivers: [
      await startReceiver(net.clientNs, sockets[0] ?? ''),
      await startReceiver(net.serverNs, sockets[1] ?? ''),
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
    for (const path of PATHS) results[path].push(await measurePath(path, mesh, chainPids, sink));
    process.stdout.write(
      `round ${round + 1}/${ROUNDS} done (load ${loadAverage().split(' ').slice(0, 3).join(' ')})\n`,
    );
  }
  if (pathOnly) {
    report(results, sink, rssIdle);
    return;
  }
  const reload = await measureReloads(mesh);
  const sideBySide = await measureSideBySide(dir, meshModule);
  report(results, sink, rssIdle, { reload, side: sideBySide });
}

function report(
  results: Record<Path, RoundResult[]>,
  sink: { cpu: number[]; receiverCpu: number[]; rssLoad: number[] },
  rssIdle: number,
  rest?: { reload: { drain: ReloadResult; withoutDrain: ReloadResult }; side: SideBySide },
): void {
  const pick = (path: Path, f: (round: RoundResult) => number): number =>
    median(results[path].map(f));
  const added = (f: (round: RoundResult) => number): number =>
    (pick('mesh', f) - pick('direct', f)) / 1000;
  const figures: [string, number, string, Target | undefined][] = [
    ['added_p50_ms_c1', added((r) => r.c1.p50Us), 'ms', { how: '<=', limit: 0.15 }],
    ['added_p99_ms_c1', added((r) => r.c1.p99Us), 'ms', undefined],
    ['added_p50_ms_paced', added((r) => r.paced.p50Us), 'ms', undefined],
    ['added_p99_ms_paced', added((r) => r.paced.p99Us), 'ms', undefined],
    [
      'throughput_ratio_mesh_vs_direct',
      pick('mesh', (r) => r.saturation.rps) / pick('direct', (r) => r.saturation.rps),
      'x',
      undefined,
    ],
    [
      'throughput_ratio_mesh_vs_nginx_chain',
      pick('mesh', (r) => r.saturation.rps) / pick('chain', (r) => r.saturation.rps),
      'x',
      { how: '>=', limit: 0.9 },
    ],
    [
      'p99_ratio_mesh_vs_nginx_chain',
      pick('mesh', (r) => r.paced.p99Us) / pick('chain', (r) => r.paced.p99Us),
      'x',
      { how: '<=', limit: 1.1 },
    ],
    ['sidecar_rss_mib_idle', rssIdle, 'MiB', undefined],
    ['sidecar_rss_mib_load', median(sink.rssLoad), 'MiB', undefined],
    ['vcpu_per_1000_rps', median(sink.cpu), 'vCPU', undefined],
  ];
  if (rest !== undefined) {
    const { reload, side } = rest;
    figures.push(
      ['sidecar_pss_mib_per_pod_10', pssPerPod(side), 'MiB', PSS_TARGET],
      [
        'failed_requests_per_reload',
        reload.drain.result.errors / reload.drain.reloads,
        'requests',
        { how: '=', limit: 0 },
      ],
      [
        'failed_requests_per_reload_without_drain',
        reload.withoutDrain.result.errors / reload.withoutDrain.reloads,
        'requests',
        undefined,
      ],
      [
        'failed_after_retry_per_reload',
        reload.drain.result.failedAfterRetry / reload.drain.reloads,
        'requests',
        { how: '=', limit: 0 },
      ],
    );
  }
  const lines = [
    '',
    ...PATHS.map((path) => describe(path, results[path])),
    '',
    `mesh sidecar CPU during paced load: ${median(sink.cpu).toFixed(4)} vCPU per 1,000 rps for both nginx (master + worker), plus ${median(sink.receiverCpu).toFixed(4)} for both agents' metrics pipelines`,
    `sidecar RSS (nginx master + worker, mean of the two pods): idle ${rssIdle.toFixed(1)} MiB, under c=${SATURATION_CONNECTIONS} load ${median(sink.rssLoad).toFixed(1)} MiB`,
    ...(rest === undefined
      ? []
      : [
          sideBySideLine(rest.side),
          describeReloads('reloads', rest.reload.drain),
          describeReloads(
            'reloads without mesh_keepalive_drain (baseline)',
            rest.reload.withoutDrain,
          ),
        ]),
    `load now: ${loadAverage()}`,
    '',
    ...figures.flatMap(([name, value, , target]) =>
      target === undefined ? [] : [targetLine(name, value, target)],
    ),
    '',
    ...figures.map(([name, value, unit]) => `${name} ${value.toFixed(3)} ${unit}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describeReloads(label: string, { result, reloads }: ReloadResult): string {
  return `${label}: ${reloads} SIGHUPs of both sidecars during ${RELOAD_PHASE_MS / 1000} s at ${PACED_RATE} rps: ${result.errors} requests failed (first: ${result.firstError || 'none'}), ${result.failedAfterRetry} still failed after one retry; ${result.connectionsOpened} connections opened; p99 ${ms(result.p99Us)} ms, max ${ms(result.maxUs)} ms`;
}

const [mode, arg] = process.argv.slice(2);
(mode === undefined ? main() : child(mode, arg ?? '')).catch((error: unknown) => {
  process.stderr.write(`dataplane: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
