// What tracing costs the data plane, measured in one run on the mesh path between two pods
// (client → client sidecar → mTLS → server sidecar → app; bench/support/netns-pods.ts), in
// three settings that take turns over rounds (the order rotates each round), figures the
// medians of the rounds:
//   off   no telemetry in the snapshot: the sidecars render no tracing;
//   0.01  an OTLP exporter with samplerRatio 0.01;
//   1.0   the same exporter, every request sampled.
// Each setting is rendered by renderSidecarConfig and applied by a reload (SIGHUP) of both
// sidecars, then given to each pod's agent tracing pipeline (startAgentTracing, applySnapshot)
// that runs throughout as a child in the pod's namespace, as the sidecar's uid, on the servers'
// CPU, taking the spans nginx records and exporting them over OTLP/gRPC to a real Jaeger. Jaeger
// runs outside the pods, on the host, on an address of its own reached over one more veth pair
// per pod; the agent's traffic to it passes the init role's rules untouched, as in the pod,
// since they leave the sidecar's uid alone. Per setting: paced load (1,000 rps over 16
// connections) for latency, then closed-loop load at 32 connections for throughput. In the 1.0
// setting the pipeline is let drain after each load, so the agents' counters (exported, dropped
// in nginx, dropped in the agent) and their CPU time cover that load's spans. At the end, after
// a light load at 1.0, the latest traces are read back from Jaeger: each must hold the client's
// span and the server's, its child.
// Needs root (namespaces, iptables). Everything is removed at the end, also on failure.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SIDECAR_UID } from '../src/manifests/constants';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { renderSidecarConfig } from '../src/render/sidecar';
import {
  podResource,
  SPAN_EXPORT_FAILURES_METRIC,
  SPANS_DROPPED_METRIC,
  SPANS_EXPORTED_METRIC,
  startAgentTracing,
} from '../src/runtime/agent/tracing/agent-tracing';
import { createJsonLogger } from '../src/runtime/role/log';
import { buildJaeger, startJaeger } from '../test/support/jaeger';
import type { RunningJaeger } from '../test/support/jaeger';
import type { LoadResult } from './support/load';
import type { Pod, Started } from './support/netns-pods';
import {
  benchSnapshot,
  CLIENT_CPU,
  loadAverage,
  loadChild,
  makeSidecarRunDir,
  median,
  ms,
  podContext,
  PodNet,
  run,
  runPodBench,
  SERVER_CPU,
  SIDECAR_PORTS,
  sleep,
  versions,
  writeCertificates,
  writeSidecarFiles,
} from './support/netns-pods';
import { cpuSeconds, processTree } from './support/proc-stats';
import { targetLine } from './support/targets.mjs';

// npm runs benchmarks from the checkout's root; the bundle itself lives under node_modules.
const ROOT = process.cwd();
const net = new PodNet('nmt');
const ROUNDS = 4;
const WARMUP_MS = 1_000;
const PHASE_MS = 4_000;
const PACED_RATE = 1_000;
const PACED_CONNECTIONS = 16;
const SATURATION_CONNECTIONS = 32;
const OTLP_GRPC_PORT = 4317;
const OTLP_HTTP_PORT = 4318;
const QUERY_PORT = 16686;
/** Jaeger may live this long whatever happens to this process. */
const JAEGER_LIFETIME_S = 600;

/**
 * The host's side of the links to the collector: a /29 of 198.19.252.0/22 chosen by pid, so that
 * runs side by side differ. Its first /30 joins the client pod (Jaeger listens on the host's end,
 * .1), its second the server pod, which reaches .1 through the host's end of its own link (.5).
 */
const SLOT = process.pid % 128;
const COLLECTOR_NET = `198.19.${252 + Math.floor(SLOT / 32)}`;
const COLLECTOR_BASE = (SLOT % 32) * 8;
const JAEGER_IP = `${COLLECTOR_NET}.${COLLECTOR_BASE + 1}`;

const LOGGER_OPTIONS = { level: 'info', out: process.stderr, now: () => new Date() } as const;

interface Setting {
  readonly name: 'off' | '0.01' | '1.0';
  readonly ratio: number | undefined;
}
const FULL: Setting = { name: '1.0', ratio: 1 };
const SETTINGS: readonly Setting[] = [
  { name: 'off', ratio: undefined },
  { name: '0.01', ratio: 0.01 },
  FULL,
];
/** Traces read back from Jaeger at the end. */
const CHECKED_TRACES = 5;

interface JaegerCheck {
  readonly line: string;
  readonly ok: boolean;
}

/** The machine's CPU ticks (/proc/stat): all of them, and those stolen by the hypervisor. */
function cpuTicks(): { total: number; steal: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 };
}

/** The share of CPU time stolen since before. */
function stealShare(before: { total: number; steal: number }): number {
  const now = cpuTicks();
  return (now.steal - before.steal) / Math.max(1, now.total - before.total);
}

/** The bench's one Service, exporting to Jaeger at ratio (none: no telemetry). */
function snapshotFor(setting: Setting): MeshSnapshot {
  const base = benchSnapshot();
  if (setting.ratio === undefined) return base;
  return {
    ...base,
    mesh: {
      ...base.mesh,
      telemetry: {
        host: JAEGER_IP,
        port: OTLP_GRPC_PORT,
        protocol: 'grpc',
        samplerRatio: setting.ratio,
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Child modes: the load generator and each pod's agent tracing pipeline run as children.

/**
 * The agent's tracing pipeline for one pod, driven over stdin: each line is a JSON object, with a
 * snapshot to apply or without one; each is answered on stdout with the pipeline's exposition.
 */
function tracerChild(arg: string): void {
  const { socketPath, pod } = JSON.parse(arg) as { socketPath: string; pod: Pod };
  const tracing = startAgentTracing({
    socketPath,
    resource: podResource({ namespace: 'bench', name: `${pod}-1`, owner: `deployment/${pod}` }),
    version: 'bench',
    logger: createJsonLogger({ ...LOGGER_OPTIONS, fields: { pod } }),
  });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const request = JSON.parse(line) as { snapshot?: MeshSnapshot };
    if (request.snapshot !== undefined) tracing.applySnapshot(request.snapshot);
    process.stdout.write(`${JSON.stringify({ exposition: tracing.exposition() })}\n`);
  });
  // The run ended (or died): nothing drives this pipeline any more.
  lines.on('close', () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ exposition: tracing.exposition() })}\n`);
}

async function child(mode: string, arg: string): Promise<void> {
  if (mode === '--load') {
    await loadChild(arg);
    return;
  }
  if (mode === '--tracer') {
    tracerChild(arg);
    return;
  }
  throw new Error(`unknown child mode "${mode}": expected --load or --tracer`);
}

// ---------------------------------------------------------------------------------------------
// The agents' tracing pipelines, as the run sees them.

interface SpanCounters {
  readonly exported: number;
  readonly droppedNginx: number;
  readonly droppedAgent: number;
  readonly failedBatches: number;
}

const ZERO: SpanCounters = { exported: 0, droppedNginx: 0, droppedAgent: 0, failedBatches: 0 };

function parseExposition(text: string): SpanCounters {
  const value = (series: string): number => {
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
    if (line === undefined) throw new Error(`no ${series} in the exposition:\n${text}`);
    return Number(line.slice(series.length + 1));
  };
  return {
    exported: value(SPANS_EXPORTED_METRIC),
    droppedNginx: value(`${SPANS_DROPPED_METRIC}{stage="nginx"}`),
    droppedAgent: value(`${SPANS_DROPPED_METRIC}{stage="agent"}`),
    failedBatches: value(SPAN_EXPORT_FAILURES_METRIC),
  };
}

const add = (a: SpanCounters, b: SpanCounters, sign = 1): SpanCounters => ({
  exported: a.exported + sign * b.exported,
  droppedNginx: a.droppedNginx + sign * b.droppedNginx,
  droppedAgent: a.droppedAgent + sign * b.droppedAgent,
  failedBatches: a.failedBatches + sign * b.failedBatches,
});

const same = (a: SpanCounters, b: SpanCounters): boolean =>
  a.exported === b.exported &&
  a.droppedNginx === b.droppedNginx &&
  a.droppedAgent === b.droppedAgent &&
  a.failedBatches === b.failedBatches;

/** One pod's tracing pipeline: this script's --tracer child, in the pod, as the sidecar's uid. */
class Tracer {
  private readonly answers: string[] = [];
  private waiter: ((line: string) => void) | undefined;

  private constructor(
    readonly pod: Pod,
    private readonly started: Started,
  ) {
    const stdout = started.child.stdout;
    if (stdout === null) throw new Error('tracer: no stdout');
    createInterface({ input: stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const waiter = this.waiter;
      this.waiter = undefined;
      if (waiter === undefined) this.answers.push(line);
      else waiter(line);
    });
  }

  static async start(pod: Pod, socketPath: string): Promise<Tracer> {
    const started = net.startIn(
      net.nsOf(pod),
      SERVER_CPU,
      [process.execPath, process.argv[1] ?? '', '--tracer', JSON.stringify({ socketPath, pod })],
      SIDECAR_UID,
      { stdin: true },
    );
    const tracer = new Tracer(pod, started);
    await tracer.answer();
    return tracer;
  }

  get pid(): number {
    return this.started.child.pid ?? 0;
  }

  /** Applies snapshot (when given); resolves to the counters. */
  async ask(snapshot?: MeshSnapshot): Promise<SpanCounters> {
    this.started.child.stdin?.write(
      `${JSON.stringify(snapshot === undefined ? {} : { snapshot })}\n`,
    );
    return parseExposition((JSON.parse(await this.answer()) as { exposition: string }).exposition);
  }

  private answer(): Promise<string> {
    const queued = this.answers.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(
          new Error(`${this.pod}'s tracing pipeline did not answer: ${this.started.output()}`),
        );
      }, 10_000);
      this.waiter = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The collector: Jaeger on the host, reached from each pod over a link of its own.

function linkCollector(): void {
  for (const [pod, index] of [
    ['client', 0],
    ['server', 1],
  ] as const) {
    const host = `${net.prefix}${net.id}h${pod[0] ?? ''}`;
    const peer = `${net.prefix}${net.id}j${pod[0] ?? ''}`;
    const ns = net.nsOf(pod);
    const hostIp = `${COLLECTOR_NET}.${COLLECTOR_BASE + index * 4 + 1}`;
    const podIp = `${COLLECTOR_NET}.${COLLECTOR_BASE + index * 4 + 2}`;
    run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    net.atCleanup(() => run('ip', ['link', 'delete', host]));
    run('ip', ['link', 'set', peer, 'netns', ns]);
    run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', host]);
    run('ip', ['link', 'set', host, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${podIp}/30`, 'dev', peer]);
    run('ip', ['-n', ns, 'link', 'set', peer, 'up']);
    if (hostIp !== JAEGER_IP)
      run('ip', ['-n', ns, 'route', 'add', `${JAEGER_IP}/32`, 'via', hostIp]);
  }
}

/** Starts Jaeger on JAEGER_IP, pinned to the load's CPU; resolves to it and its pids. */
async function startCollector(dir: string): Promise<{ jaeger: RunningJaeger; pids: number[] }> {
  const binary = await buildJaeger(ROOT);
  const before = new Set(processTree(process.pid));
  const jaeger = await startJaeger(binary, {
    dir: join(dir, 'jaeger'),
    host: JAEGER_IP,
    otlpGrpcPort: OTLP_GRPC_PORT,
    otlpHttpPort: OTLP_HTTP_PORT,
    queryPort: QUERY_PORT,
    maxLifetimeS: JAEGER_LIFETIME_S,
  });
  // `timeout`, the leader of Jaeger's process group, and Jaeger itself.
  const leaders = processTree(process.pid).filter((pid) => !before.has(pid));
  net.atCleanup(() => {
    for (const pid of leaders) process.kill(-pid, 'SIGKILL');
  });
  const pids = leaders.flatMap(processTree);
  for (const pid of pids) run('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(pid)]);
  return { jaeger, pids };
}

// ---------------------------------------------------------------------------------------------
// The sidecars.

interface Sidecar {
  readonly pod: Pod;
  readonly runDir: string;
  readonly master: number;
  readonly output: () => string;
}

function renderFor(dir: string, meshModule: string, pod: Pod, runDir: string, setting: Setting) {
  return writeSidecarFiles(
    runDir,
    renderSidecarConfig(snapshotFor(setting), podContext(dir, meshModule, pod, runDir)),
  );
}

const workers = (master: number): number[] => processTree(master).slice(1);

/** Reloads the sidecar and waits until its one worker is a new one (the old one has exited). */
async function reload(sidecar: Sidecar): Promise<void> {
  const old = new Set(workers(sidecar.master));
  process.kill(sidecar.master, 'SIGHUP');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const now = workers(sidecar.master);
    if (now.length === 1 && !old.has(now[0] ?? 0)) return;
    if (Date.now() > deadline)
      throw new Error(`${sidecar.pod}'s sidecar did not reload: ${sidecar.output()}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// The rounds.

/** What the pipelines did over one load of the 1.0 setting, drained. */
interface PipelineUse {
  readonly spans: SpanCounters;
  /** CPU seconds of both agents' tracing pipelines, and of Jaeger. */
  readonly agentCpu: number;
  readonly jaegerCpu: number;
  /** vCPU of both agents' pipelines, and of Jaeger, while the load ran (warm-up included). */
  readonly agentVcpuUnderLoad: number;
  readonly jaegerVcpuUnderLoad: number;
}

interface SettingRound {
  readonly paced: LoadResult;
  readonly saturation: LoadResult;
  /** vCPU of both sidecars (masters and workers) per 1,000 rps during the paced load. */
  readonly sidecarCpu: number;
  /** The 1.0 setting only. */
  readonly pacedUse?: PipelineUse;
  readonly saturationUse?: PipelineUse;
}

interface Bench {
  readonly dir: string;
  readonly meshModule: string;
  readonly sidecars: readonly Sidecar[];
  readonly tracers: readonly Tracer[];
  readonly jaegerPids: readonly number[];
}

async function counters(tracers: readonly Tracer[], snapshot?: MeshSnapshot) {
  let sum = ZERO;
  for (const tracer of tracers) sum = add(sum, await tracer.ask(snapshot));
  return sum;
}

/** Waits until the pipelines have taken and sent what nginx recorded: counters still twice. */
async function drained(tracers: readonly Tracer[]): Promise<SpanCounters> {
  await sleep(1_200);
  let last = await counters(tracers);
  const deadline = Date.now() + 15_000;
  for (;;) {
    await sleep(1_100);
    const now = await counters(tracers);
    if (same(now, last) || Date.now() > deadline) return now;
    last = now;
  }
}

/**
 * Runs load, measuring the sidecars' vCPU meanwhile (warm-up included); with tracing, lets the
 * pipelines drain and measures what they did for it.
 */
async function measured(
  bench: Bench,
  spec: { connections: number; mode: 'closed' | 'paced'; rate?: number },
  tracing: boolean,
): Promise<{ result: LoadResult; sidecarVcpu: number; use?: PipelineUse }> {
  const tracerPids = bench.tracers.map((tracer) => tracer.pid);
  const sidecarPids = bench.sidecars.flatMap((sidecar) => processTree(sidecar.master));
  const before = tracing ? await counters(bench.tracers) : ZERO;
  const agentBefore = cpuSeconds(tracerPids);
  const jaegerBefore = cpuSeconds(bench.jaegerPids);
  const sidecarBefore = cpuSeconds(sidecarPids);
  const result = await net.load({
    ...spec,
    warmupMs: WARMUP_MS,
    durationMs: PHASE_MS,
    retry: false,
  });
  const seconds = (WARMUP_MS + PHASE_MS) / 1000;
  const sidecarVcpu = (cpuSeconds(sidecarPids) - sidecarBefore) / seconds;
  if (!tracing) return { result, sidecarVcpu };
  const agentVcpuUnderLoad = (cpuSeconds(tracerPids) - agentBefore) / seconds;
  const jaegerVcpuUnderLoad = (cpuSeconds(bench.jaegerPids) - jaegerBefore) / seconds;
  const after = await drained(bench.tracers);
  return {
    result,
    sidecarVcpu,
    use: {
      spans: add(after, before, -1),
      agentCpu: cpuSeconds(tracerPids) - agentBefore,
      jaegerCpu: cpuSeconds(bench.jaegerPids) - jaegerBefore,
      agentVcpuUnderLoad,
      jaegerVcpuUnderLoad,
    },
  };
}

/** Renders the setting for both sidecars, reloads them, then gives it to both agents. */
async function applySetting(bench: Bench, setting: Setting): Promise<void> {
  for (const sidecar of bench.sidecars) {
    renderFor(bench.dir, bench.meshModule, sidecar.pod, sidecar.runDir, setting);
    await reload(sidecar);
  }
  // As the agent does: the snapshot goes to tracing once nginx applied its configuration.
  await counters(bench.tracers, snapshotFor(setting));
}

async function measureSetting(bench: Bench, setting: Setting): Promise<SettingRound> {
  await applySetting(bench, setting);
  const drains = setting.ratio === 1;
  const paced = await measured(
    bench,
    { mode: 'paced', connections: PACED_CONNECTIONS, rate: PACED_RATE },
    drains,
  );
  // Warm-up included: the whole phase ran at the paced rate.
  const sidecarCpu = paced.sidecarVcpu / (paced.result.rps / 1000);
  const saturation = await measured(
    bench,
    { mode: 'closed', connections: SATURATION_CONNECTIONS },
    drains,
  );
  return {
    paced: paced.result,
    saturation: saturation.result,
    sidecarCpu,
    ...(paced.use === undefined ? {} : { pacedUse: paced.use }),
    ...(saturation.use === undefined ? {} : { saturationUse: saturation.use }),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await runPodBench('tracing', net, ROOT, benchmark);
}

async function benchmark(dir: string, meshModule: string): Promise<void> {
  await writeCertificates(dir);
  net.createPods();
  linkCollector();
  const collector = await startCollector(dir);
  await net.startApp(dir);
  const sidecars: Sidecar[] = [];
  const tracers: Tracer[] = [];
  for (const pod of ['client', 'server'] as const) {
    const { runDir, socket } = makeSidecarRunDir(join(dir, `mesh-${pod}`));
    const config = renderFor(dir, meshModule, pod, runDir, SETTINGS[0] as Setting);
    const started = net.startIn(
      net.nsOf(pod),
      SERVER_CPU,
      ['nginx', '-e', 'stderr', '-p', runDir, '-c', config, '-g', 'daemon off;'],
      SIDECAR_UID,
    );
    await net
      .waitListening(net.nsOf(pod), SIDECAR_PORTS, `${pod}'s sidecar`)
      .catch((error: Error) => {
        throw new Error(`${error.message}: ${started.output()}`);
      });
    sidecars.push({ pod, runDir, master: started.child.pid ?? 0, output: started.output });
    tracers.push(await Tracer.start(pod, socket));
  }
  net.useInitRules();
  const bench: Bench = { dir, meshModule, sidecars, tracers, jaegerPids: collector.pids };

  process.stdout.write(
    [
      'tracing: 1 KB GET on the mesh path between two network namespaces (veth 198.19.250.0/30)',
      versions(),
      'sidecars: nginx running what renderSidecarConfig renders (mTLS strict, one worker, init-role iptables rules);',
      `each pod's agent tracing pipeline (startAgentTracing) as a child in the pod as uid ${SIDECAR_UID}, exporting OTLP/gRPC to Jaeger at ${JAEGER_IP}:${OTLP_GRPC_PORT} on the host`,
      `servers and agents on CPU ${SERVER_CPU}; load and Jaeger on CPU ${CLIENT_CPU}`,
      `${ROUNDS} rounds x settings (${SETTINGS.map((setting) => setting.name).join(', ')}; order rotating) x (paced ${PACED_RATE} rps over ${PACED_CONNECTIONS} connections, c=${SATURATION_CONNECTIONS}), ${PHASE_MS / 1000} s each after ${WARMUP_MS / 1000} s warm-up`,
      '',
    ].join('\n'),
  );

  const results = new Map<Setting['name'], SettingRound[]>(
    SETTINGS.map((setting) => [setting.name, []]),
  );
  const stealBefore = cpuTicks();
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = SETTINGS.map((_, index) => SETTINGS[(index + round) % SETTINGS.length]);
    for (const setting of order) {
      if (setting === undefined) continue;
      results.get(setting.name)?.push(await measureSetting(bench, setting));
    }
    process.stdout.write(
      `round ${round + 1}/${ROUNDS} done (${order.map((setting) => setting?.name).join(', ')}; load ${loadAverage().split(' ').slice(0, 3).join(' ')})\n`,
    );
  }
  const steal = stealShare(stealBefore);
  const sanity = await checkJaeger(bench, collector.jaeger);
  await collector.jaeger.stop();
  report(results, sanity, steal);
}

/**
 * The latest traces in Jaeger, after a light load at 1.0 that the pipelines drain (so that none
 * is cut short by a drop or still on its way): do they hold the client's span and the server's,
 * its child?
 */
async function checkJaeger(bench: Bench, jaeger: RunningJaeger): Promise<JaegerCheck> {
  await applySetting(bench, FULL);
  await net.load({
    mode: 'paced',
    connections: 4,
    rate: 100,
    warmupMs: 0,
    durationMs: 1_000,
    retry: false,
  });
  await drained(bench.tracers);
  const services = await jaeger.services();
  const ids = await jaeger.findTraceIds('client', CHECKED_TRACES);
  let whole = 0;
  let example = '';
  for (const traceId of ids) {
    const spans = await jaeger.getTrace(traceId);
    const client = spans.find((span) => span.serviceName === 'client' && span.kind === 'client');
    const server = spans.find((span) => span.serviceName === 'server' && span.kind === 'server');
    const ok = client !== undefined && server?.parentSpanId === client.spanId;
    if (ok) whole += 1;
    if (example === '' || (!ok && whole === 0))
      example = `trace ${traceId}: ${spans
        .map(
          (span) =>
            `${span.serviceName}/${span.kind ?? '?'} "${span.operationName}" ${span.spanId}${span.parentSpanId === undefined ? '' : ` (parent ${span.parentSpanId})`}`,
        )
        .join(', ')}`;
  }
  const ok = ids.length > 0 && whole === ids.length;
  return {
    line: `jaeger (services ${services.join(', ')}): ${whole} of the ${ids.length} latest traces of "client" hold its client span and the server's span, its child: ${ok ? 'ok' : 'NOT ok'}; e.g. ${example || 'none'}`,
    ok,
  };
}

// ---------------------------------------------------------------------------------------------
// Report.

function report(
  results: Map<Setting['name'], SettingRound[]>,
  sanity: JaegerCheck,
  steal: number,
): void {
  const rounds = (name: Setting['name']): SettingRound[] => results.get(name) ?? [];
  const pick = (name: Setting['name'], f: (round: SettingRound) => number): number =>
    median(rounds(name).map(f));
  const rps = (name: Setting['name']): number => pick(name, (r) => r.saturation.rps);
  const full = rounds('1.0');
  const use = (f: (round: SettingRound) => PipelineUse | undefined): PipelineUse[] =>
    full.map(f).filter((entry): entry is PipelineUse => entry !== undefined);
  const total = (uses: readonly PipelineUse[]): SpanCounters =>
    uses.reduce((sum, entry) => add(sum, entry.spans), ZERO);
  const paced = use((r) => r.pacedUse);
  const saturated = use((r) => r.saturationUse);
  const all = [...paced, ...saturated];
  const spans = total(all);
  const recorded = (counts: SpanCounters): number =>
    counts.exported + counts.droppedNginx + counts.droppedAgent;
  const dropShare = (counts: SpanCounters): number =>
    recorded(counts) === 0
      ? Number.NaN
      : (counts.droppedNginx + counts.droppedAgent) / recorded(counts);
  /** ms of CPU per 1,000 spans exported, per round over the setting's two loads. */
  const perThousand = full.map((r) => {
    const p = r.pacedUse;
    const s = r.saturationUse;
    if (p === undefined || s === undefined) return Number.NaN;
    return ((p.agentCpu + s.agentCpu) * 1000) / ((p.spans.exported + s.spans.exported) / 1000);
  });
  const pacedPerThousand = paced.map((p) => (p.agentCpu * 1000) / (p.spans.exported / 1000));
  const jaegerPerThousand =
    all.length === 0
      ? Number.NaN
      : (all.reduce((sum, p) => sum + p.jaegerCpu, 0) * 1000) / (spans.exported / 1000);
  const errors = [...results.values()]
    .flat()
    .reduce((sum, r) => sum + r.paced.errors + r.saturation.errors, 0);

  const describe = (name: Setting['name']): string =>
    [
      `${name.padEnd(5)} paced p50/p99 ${ms(pick(name, (r) => r.paced.p50Us))}/${ms(pick(name, (r) => r.paced.p99Us))} ms`,
      `c=${SATURATION_CONNECTIONS} ${rps(name).toFixed(0)} req/s (spread ${rounds(name)
        .map((r) => r.saturation.rps.toFixed(0))
        .join(
          '/',
        )}) p50/p99 ${ms(pick(name, (r) => r.saturation.p50Us))}/${ms(pick(name, (r) => r.saturation.p99Us))} ms`,
      `sidecars ${pick(name, (r) => r.sidecarCpu).toFixed(4)} vCPU per 1,000 rps`,
    ].join('  ');
  const counts = (what: string, c: SpanCounters): string =>
    `${what}: ${c.exported} exported, dropped ${c.droppedNginx} in nginx + ${c.droppedAgent} in the agent (${(100 * dropShare(c)).toFixed(1)}%), ${c.failedBatches} failed batches`;

  const figures: [string, number, string, number | undefined, '>=' | '<=' | undefined][] = [
    ['tracing_throughput_ratio_sampler_1', rps('1.0') / rps('off'), 'x', 0.9, '>='],
    ['tracing_throughput_ratio_sampler_0_01', rps('0.01') / rps('off'), 'x', 0.98, '>='],
    [
      'tracing_added_p50_ms_paced_sampler_1',
      (pick('1.0', (r) => r.paced.p50Us) - pick('off', (r) => r.paced.p50Us)) / 1000,
      'ms',
      undefined,
      undefined,
    ],
    [
      'tracing_added_p99_ms_paced_sampler_1',
      (pick('1.0', (r) => r.paced.p99Us) - pick('off', (r) => r.paced.p99Us)) / 1000,
      'ms',
      undefined,
      undefined,
    ],
    [
      'tracing_p99_ratio_saturation_sampler_1',
      pick('1.0', (r) => r.saturation.p99Us) / pick('off', (r) => r.saturation.p99Us),
      'x',
      undefined,
      undefined,
    ],
    ['spans_exported_sampler_1', spans.exported, 'spans', undefined, undefined],
    [
      'spans_dropped_sampler_1',
      spans.droppedNginx + spans.droppedAgent,
      'spans',
      undefined,
      undefined,
    ],
    ['span_drop_ratio_sampler_1_paced', dropShare(total(paced)), 'x', undefined, undefined],
    [
      'span_drop_ratio_sampler_1_saturation',
      dropShare(total(saturated)),
      'x',
      undefined,
      undefined,
    ],
    ['agent_cpu_ms_per_1000_spans', median(perThousand), 'ms', undefined, undefined],
  ];
  const lines = [
    '',
    ...SETTINGS.map((setting) => describe(setting.name)),
    `c=${SATURATION_CONNECTIONS} throughput vs off in the same round: ${['0.01', '1.0']
      .map(
        (name) =>
          `${name} ${rounds(name as Setting['name'])
            .map((r, index) =>
              (r.saturation.rps / (rounds('off')[index]?.saturation.rps ?? Number.NaN)).toFixed(3),
            )
            .join('/')}`,
      )
      .join(', ')}; CPU stolen by the hypervisor during the rounds ${(100 * steal).toFixed(1)}%`,
    `errors ${errors}`,
    '',
    `spans in the 1.0 setting (both agents, all ${full.length} rounds, each load drained before counting):`,
    `  ${counts(`paced ${PACED_RATE} rps`, total(paced))}`,
    `  ${counts(`c=${SATURATION_CONNECTIONS}`, total(saturated))}`,
    `  ${counts('total', spans)}`,
    `agents' tracing CPU: ${median(perThousand).toFixed(1)} ms per 1,000 spans exported over the whole 1.0 setting (rounds ${perThousand.map((value) => value.toFixed(1)).join('/')}; the spans taken but dropped cost too), ${median(pacedPerThousand).toFixed(1)} under paced load alone; Jaeger ${jaegerPerThousand.toFixed(1)} ms per 1,000 spans`,
    `while c=${SATURATION_CONNECTIONS} ran at 1.0: both agents' pipelines ${median(saturated.map((u) => u.agentVcpuUnderLoad)).toFixed(3)} vCPU (on the servers' CPU), Jaeger ${median(saturated.map((u) => u.jaegerVcpuUnderLoad)).toFixed(3)} vCPU (on the load's); at paced ${PACED_RATE} rps: ${median(paced.map((u) => u.agentVcpuUnderLoad)).toFixed(3)} and ${median(paced.map((u) => u.jaegerVcpuUnderLoad)).toFixed(3)}`,
    sanity.line,
    `load now: ${loadAverage()}`,
    '',
    ...figures.flatMap(([name, value, , limit, how]) =>
      limit === undefined ? [] : [targetLine(name, value, { how: how ?? '>=', limit })],
    ),
    '',
    ...figures.map(([name, value, unit]) => `${name} ${value.toFixed(3)} ${unit}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  // Spans that never reached Jaeger, or a trace without both sides, fail the run.
  if (!sanity.ok || spans.exported === 0) process.exitCode = 1;
}

const [mode, arg] = process.argv.slice(2);
(mode === undefined ? main() : child(mode, arg ?? '')).catch((error: unknown) => {
  process.stderr.write(`tracing: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
