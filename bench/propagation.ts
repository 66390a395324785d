// Configuration propagation: how long a change takes to run in 1,000 sidecars. The controller's
// real bus publishes to a real nats-server configured as in the mesh (renderNatsConfig: TLS with
// SVIDs from the registrar's own code, client certificates verified and mapped to NATS users by
// their SPIFFE ID, the server's identity checked by every client). Every agent dials its own TLS
// connection as the agent does (startBusLink), runs its own agent bus, and renders its own pod's
// configuration from the snapshot its deltas built, through the agent's snapshot applier.
// NGINX_AGENTS of them also run nginx (one worker, ngx_mesh loaded) under the agent's supervisor
// and config applier: for a new text write, `nginx -t`, rename, reload, wait until the new workers
// run; for new members alone, write the members file and PUT it to nginx's stats socket. Each of
// those is a process of its own in network and process namespaces of its own, as in a pod (every
// sidecar listens on the same ports, and the supervisor reads /proc); a bridge in the benchmarking
// range joins them to nats-server. The other agents take the rendered text as applied, spread
// over HOST_PROCESSES processes. A round lasts from publish() until the controller holds the ack
// of that generation from every agent, and an agent acks only once its apply finished.
//
// One change per round: a service's endpoints move, as in a rollout, which every sidecar renders.
// Its upstreams keep their slots, so the text stays and nginx takes the new members without a
// reload. One sidecar with nginx is measured alone first, then all of them.
//
// Endpoint churn against policy changes: rounds in which one Service gains or loses an endpoint
// (4 and 5 by turns, within its 8 slots), then rounds in which its circuit breaker changes, each
// a reload. The lone sidecar takes both kinds, for the time each takes to be applied in a pod with
// its own CPU; all of them then take CHURN_ROUNDS endpoint changes, and the reloads of the
// sidecars with nginx (their config appliers' counts) per 1,000 endpoint changes they applied are
// the figure (target 0). Beside it, from the same rounds: how many applies would have reloaded
// had the endpoints been in the text (those whose text or members differ), and how many rounds'
// texts differ when each render sizes its slots afresh instead of keeping the previous ones.
//
// What this machine cannot be: a cluster gives each pod its own CPU; here every render, every
// `nginx -t` and every reload of 1,000 sidecars shares two cores (and whatever else runs), so a
// round costs at least the summed CPU of its applies divided by the cores. The report prints
// that CPU per round, split by part, beside the latency and beside the lone sidecar's figures,
// so that the reader sees what dominates; nothing is subtracted from the figure. For 100 rounds
// of 1,000 renders and 50 nginx updates to take minutes, the mesh has SERVICES services (a render
// costs about 0.2 ms per service plus a fixed part; `nginx -t` and a reload cost tens of ms
// whatever the size).
//
// Targets (reported as met/missed, never enforced): p99 <= 500 ms with 1,000 agents; no reload
// for endpoint changes.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SVID_BUNDLE_FILE_NAME, SVID_FILE_NAME } from '../src/manifests/constants';
import type { BusIdentity } from '../src/manifests/install/nats-config';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { renderNatsConfig } from '../src/manifests/install/nats-config';
import type { SidecarContext } from '../src/render/sidecar';
import { renderSidecarConfig } from '../src/render/sidecar';
import type { ControllerBus } from '../src/runtime/bus/controller-bus';
import { startControllerBus } from '../src/runtime/bus/controller-bus';
import { connectBus } from '../src/runtime/bus/connect';
import { createAuthority } from '../src/runtime/registrar/authority';
import { createJsonLogger } from '../src/runtime/role/log';
import { issueTestSvid } from '../test/support/svid';
import type { AgentHostSpec, AgentHostStats, HostToParent, NginxApply } from './support/agent-host';
import { agentContext, runAgentHost } from './support/agent-host';
import type { LatencySummary } from './support/summary';
import { summarize } from './support/summary';
import type { Target } from './support/targets.mjs';
import { targetLine, verdictOf } from './support/targets.mjs';
import type { SnapshotChurn } from './support/synthetic-snapshot';
import { syntheticSnapshot } from './support/synthetic-snapshot';
import { cpuTimesOf, descendantsOf } from './support/proc-stats';

const AGENTS = 1_000;
const NGINX_AGENTS = 50;
const HOST_PROCESSES = 4;
const SERVICES = 20;
const WARMUP_ROUNDS = 2;
const ROUNDS = 100;
/** Endpoint changes of the churn phase with every agent; a round costs about a main round. */
const CHURN_ROUNDS = 12;
/** Endpoint changes, then policy changes (reloads), of the lone sidecar's churn phase. */
const ALONE_CHURN_ROUNDS = 20;
const ALONE_POLICY_ROUNDS = 10;
const ROUND_TIMEOUT_MS = 60_000;
/** The whole run, set-up included: past it the bench stops, cleans up and fails. */
const RUN_DEADLINE_MS = 9.5 * 60_000;
const TARGET: Target = { how: '<=', limit: 500 };
const RELOADS_TARGET: Target = { how: '=', limit: 0 };
const TRUST_DOMAIN = 'example.org';
const MESH_NAMESPACE = 'nginx-mesh';
const IDENTITY: BusIdentity = { namespace: 'bench', serviceAccount: 'agents' };
const NATS_ID = `spiffe://${TRUST_DOMAIN}/ns/${MESH_NAMESPACE}/sa/nats`;

const logger = createJsonLogger({
  level: 'error',
  out: { write: (line: string) => process.stderr.write(line) },
  now: () => new Date(),
});

const runStarted = performance.now();
/** Progress on stderr, so that a slow phase shows where the time goes. */
function progress(message: string): void {
  process.stderr.write(
    `propagation: ${((performance.now() - runStarted) / 1000).toFixed(1)} s: ${message}\n`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Builds ngx_mesh if it is stale; its path. The checkout is the working directory (npm runs
 * benchmarks from it), not where the bundle of this file lies, which may be another checkout's.
 */
function buildMeshModule(): string {
  const output = execFileSync('bash', [join(process.cwd(), 'scripts', 'build-ngx-mesh.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return output.trim().split('\n').at(-1) ?? '';
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Everything the run made, undone in reverse order by cleanup(), also after a failure. */
class Run {
  readonly id = process.pid.toString(36);
  /** A /24 in the benchmarking range, per run. */
  readonly subnet = `198.19.${200 + (process.pid % 40)}`;
  readonly bridgeIp = `${this.subnet}.1`;
  readonly dir = mkdtempSync(join(tmpdir(), 'bench-propagation-'));
  private readonly undo: (() => void)[] = [
    () => rmSync(this.dir, { recursive: true, force: true }),
  ];

  /** Runs an undo step at cleanup. */
  later(step: () => void): void {
    this.undo.push(step);
  }

  cleanup(): void {
    for (const step of this.undo.splice(0).reverse()) {
      try {
        step();
      } catch (error) {
        process.stderr.write(`propagation: cleanup: ${String(error)}\n`);
      }
    }
  }

  /** The bridge nats-server listens on, in the host's network namespace. */
  makeBridge(): void {
    const bridge = `pb${this.id}`;
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    this.later(() => execFileSync('ip', ['link', 'del', bridge]));
    execFileSync('ip', ['addr', 'add', `${this.bridgeIp}/24`, 'dev', bridge]);
    execFileSync('ip', ['link', 'set', bridge, 'up']);
  }

  /** A network namespace for nginx agent index, joined to the bridge; its name. */
  makeNamespace(index: number): string {
    const ns = `pp${this.id}-${index}`;
    const veth = `pv${this.id}-${index}`;
    execFileSync('ip', ['netns', 'add', ns]);
    this.later(() => {
      // nginx masters outlive a host killed outright: every process in the namespace goes first.
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .split('\n')
        .filter((pid) => pid !== '');
      for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
      execFileSync('ip', ['netns', 'del', ns]);
    });
    execFileSync('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    execFileSync('ip', ['link', 'set', veth, 'master', `pb${this.id}`, 'up']);
    const inNs = (...args: string[]): void => void execFileSync('ip', ['-n', ns, ...args]);
    inNs('addr', 'add', `${this.subnet}.${10 + index}/24`, 'dev', 'eth0');
    inNs('link', 'set', 'eth0', 'up');
    inNs('link', 'set', 'lo', 'up');
    return ns;
  }

  /** Kills a child at cleanup unless it exited. */
  track(child: ChildProcess): ChildProcess {
    this.later(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return child;
  }
}

interface Pki {
  readonly bundleFile: string;
  readonly controllerSvid: string;
  readonly agentSvid: string;
  readonly tlsDir: string;
}

async function writePki(dir: string): Promise<Pki> {
  const authority = await createAuthority(
    { keyType: 'ec-p256', trustDomain: TRUST_DOMAIN, ttlMs: 720 * 3_600_000, upstream: undefined },
    new Date(),
  );
  const tlsDir = join(dir, 'nats-tls');
  mkdirSync(tlsDir);
  const write = async (path: string, namespace: string, account: string): Promise<string> => {
    const svid = await issueTestSvid(authority, namespace, account);
    writeFileSync(path, svid.chain + svid.keyPem, { mode: 0o600 });
    return path;
  };
  const bundleFile = join(dir, 'bundle.crt');
  writeFileSync(bundleFile, authority.stored.certificate);
  writeFileSync(join(tlsDir, SVID_BUNDLE_FILE_NAME), authority.stored.certificate);
  await write(join(tlsDir, SVID_FILE_NAME), MESH_NAMESPACE, 'nats');
  return {
    bundleFile,
    tlsDir,
    controllerSvid: await write(
      join(dir, 'controller.pem'),
      MESH_NAMESPACE,
      'nginx-mesh-controller',
    ),
    agentSvid: await write(join(dir, 'agents.pem'), IDENTITY.namespace, IDENTITY.serviceAccount),
  };
}

interface NatsServer {
  readonly server: string;
  readonly pid: number;
  /** Bytes the server has sent to clients so far. */
  outBytes(): Promise<number>;
}

async function startNatsServer(run: Run, pki: Pki): Promise<NatsServer> {
  const port = await freePort();
  const monitorPort = await freePort();
  const config = join(run.dir, 'nats.conf');
  writeFileSync(
    config,
    renderNatsConfig(
      {
        host: run.bridgeIp,
        clientPort: port,
        monitorPort,
        pidFile: join(run.dir, 'nats.pid'),
        tlsDir: pki.tlsDir,
      },
      { trustDomain: TRUST_DOMAIN, meshNamespace: MESH_NAMESPACE, identities: [IDENTITY] },
    ),
  );
  const child = run.track(
    spawn('/usr/sbin/nats-server', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`nats-server not ready: ${output}`)), 10_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`nats-server exited ${code}: ${output}`)));
  });
  return {
    server: `${run.bridgeIp}:${port}`,
    pid: child.pid ?? 0,
    outBytes: async () => {
      const response = await fetch(`http://127.0.0.1:${monitorPort}/varz`);
      return ((await response.json()) as { out_bytes: number }).out_bytes;
    },
  };
}

/** One host process: its agents, the messages it sent, and a way to ask it things. */
interface Host {
  readonly child: ChildProcess;
  readonly nginx: boolean;
  /** The next message from the host. */
  next(): Promise<HostToParent>;
}

function startHost(run: Run, spec: AgentHostSpec, namespace: string | undefined): Host {
  const node = [process.execPath, process.argv[1] ?? '', '--host', JSON.stringify(spec)];
  const [file, ...args] =
    namespace === undefined
      ? node
      : // A pod of its own: network and process namespaces (the supervisor reads /proc).
        [
          'ip',
          'netns',
          'exec',
          namespace,
          'unshare',
          '--pid',
          '--fork',
          '--mount-proc',
          '--kill-child',
          ...node,
        ];
  const child = run.track(
    spawn(file ?? '', args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const inbox: HostToParent[] = [];
  let waiting: ((message: HostToParent) => void) | undefined;
  let exited: string | undefined;
  child.on('message', (message: HostToParent) => {
    if (waiting === undefined) inbox.push(message);
    else waiting(message);
    waiting = undefined;
  });
  child.once(
    'exit',
    (code, signal) => (exited = `agents ${spec.first}.. exited ${code ?? signal}`),
  );
  return {
    child,
    nginx: spec.nginxRunRoot !== undefined,
    next: async () => {
      const queued = inbox.shift();
      if (queued !== undefined) return queued;
      return new Promise<HostToParent>((resolve, reject) => {
        waiting = resolve;
        const check = setInterval(() => {
          if (exited === undefined) return;
          clearInterval(check);
          reject(new Error(exited));
        }, 100);
        child.once('message', () => clearInterval(check));
      });
    },
  };
}

/** Resolves once count agents acked generation; rejects after the round timeout. */
async function untilAcked(bus: ControllerBus, generation: number, count: number): Promise<void> {
  const deadline = performance.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const acked = bus.agents().filter((agent) => agent.generation === generation).length;
    if (acked >= count) return;
    if (performance.now() > deadline)
      throw new Error(`only ${acked} of ${count} agents acked generation ${generation}`);
    // Polling shares the machine with the agents: at 1,000 of them, every 5 ms.
    await sleep(Math.max(1, count / 200));
  }
}

/** Busy and total core-seconds of the whole machine so far, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

/** Where this run's CPU goes. */
const CPU_PARTS = [
  'controller',
  'nats-server',
  'rendering agents',
  'nginx agents (node)',
  'nginx (nginx -t, masters, workers)',
] as const;
type CpuSplit = Record<(typeof CPU_PARTS)[number], number>;

const sumOf = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0);

/** CPU seconds so far of this process, nats-server and the hosts, and of nginx under them. */
function cpuSplit(natsPid: number, hosts: readonly Host[]): CpuSplit {
  const agentHosts = (nginx: boolean): number[] =>
    hosts.filter((host) => host.nginx === nginx).map((host) => host.child.pid ?? 0);
  const withReaped = (pid: number): number => {
    const times = cpuTimesOf(pid);
    return times.own + times.reaped;
  };
  // Below each nginx agent's unshare: the agent (its reaped children are its `nginx -t` runs),
  // nginx's master and workers (a master's reaped children are its replaced workers).
  const tree = descendantsOf(agentHosts(true));
  const isNginx = (pid: number): boolean => commandOf(pid) === 'nginx';
  const agents = tree.filter((pid) => !isNginx(pid));
  return {
    controller: cpuTimesOf(process.pid).own,
    'nats-server': withReaped(natsPid),
    'rendering agents': sumOf(agentHosts(false).map(withReaped)),
    'nginx agents (node)': sumOf(agents.map((pid) => cpuTimesOf(pid).own)),
    'nginx (nginx -t, masters, workers)':
      sumOf(agents.map((pid) => cpuTimesOf(pid).reaped)) +
      sumOf(tree.filter(isNginx).map(withReaped)),
  };
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

interface Phase {
  readonly agents: number;
  readonly latency: LatencySummary;
  /** Machine CPU busy per round (core-seconds), everything on it included. */
  readonly busyPerRound: number;
  /** CPU per round (core-seconds) of this run's processes, by part. */
  readonly ownPerRound: CpuSplit;
  readonly deltaBytesPerRound: number;
  readonly applies: Applies;
}

/** The agents' applies in a phase's measured rounds. */
interface Applies {
  /** Whole applies of the agents with nginx: the render, then the config applier's part. */
  readonly nginx: LatencySummary;
  /** The render's median. */
  readonly renderP50: number;
  /** Applies nginx took by a reload, and their parts' medians: write and `nginx -t`, reload. */
  readonly reloads: number;
  readonly checkP50: number;
  readonly reloadP50: number;
  /** Applies nginx took as new members without a reload, and the median of write and PUT. */
  readonly memberUpdates: number;
  readonly updateP50: number;
  /** Whole applies of the agents that only render. */
  readonly renderOnly: LatencySummary;
}

/** The applies of the agents with nginx between two answers to "stats". */
function nginxAppliesBetween(
  before: readonly AgentHostStats[],
  after: readonly AgentHostStats[],
): NginxApply[] {
  return after.flatMap((stats, index) =>
    stats.nginxApplies.slice(before[index]?.nginxApplies.length ?? 0),
  );
}

/** The reloads and member updates of every nginx between two answers to "stats". */
function countsBetween(
  before: readonly AgentHostStats[],
  after: readonly AgentHostStats[],
): { reloads: number; memberUpdates: number } {
  const total = (stats: readonly AgentHostStats[], key: 'reloads' | 'memberUpdates'): number =>
    sumOf(stats.map((host) => host[key]));
  return {
    reloads: total(after, 'reloads') - total(before, 'reloads'),
    memberUpdates: total(after, 'memberUpdates') - total(before, 'memberUpdates'),
  };
}

const medianOf = (values: readonly number[]): number => summarize(values).p50;

/** The applies the hosts made between two answers to "stats". */
function appliesBetween(
  hosts: readonly Host[],
  before: readonly AgentHostStats[],
  after: readonly AgentHostStats[],
): Applies {
  const nginx = nginxAppliesBetween(before, after);
  const reloaded = nginx.filter((apply) => apply.took === 'reload');
  const updated = nginx.filter((apply) => apply.took === 'members');
  return {
    nginx: summarize(nginx.map((apply) => apply.ms)),
    renderP50: medianOf(nginx.map((apply) => apply.ms - apply.applierMs)),
    reloads: reloaded.length,
    checkP50: medianOf(reloaded.map((apply) => apply.applierMs - apply.reloadMs)),
    reloadP50: medianOf(reloaded.map((apply) => apply.reloadMs)),
    memberUpdates: updated.length,
    updateP50: medianOf(updated.map((apply) => apply.applierMs)),
    renderOnly: summarize(
      after.flatMap((stats, index) =>
        hosts[index]?.nginx === false
          ? stats.applyMs.slice(before[index]?.applyMs.length ?? 0)
          : [],
      ),
    ),
  };
}

interface Measurement {
  readonly bus: ControllerBus;
  readonly nats: NatsServer;
  /** The next round's number, counted on across phases. */
  readonly round: { next: number };
  readonly ownCpu: () => CpuSplit;
  /** The hosts running so far. */
  readonly hosts: readonly Host[];
}

/** Warm-up rounds, then ROUNDS rounds of one changed service each, with agents acking each. */
async function measureRounds(
  { bus, nats, round, ownCpu, hosts }: Measurement,
  agents: number,
): Promise<Phase> {
  for (let warm = 0; warm < WARMUP_ROUNDS; warm += 1) {
    await untilAcked(bus, bus.publish(syntheticSnapshot(SERVICES, round.next++)), agents);
  }
  const statsBefore = await collectStats(hosts);
  const latencies: number[] = [];
  const bytesBefore = await nats.outBytes();
  const cpuBefore = machineCpu();
  const ownBefore = ownCpu();
  for (let measured = 0; measured < ROUNDS; measured += 1) {
    const snapshot = syntheticSnapshot(SERVICES, round.next++);
    const started = performance.now();
    await untilAcked(bus, bus.publish(snapshot), agents);
    latencies.push(performance.now() - started);
    if ((measured + 1) % 25 === 0 && agents > 1) progress(`${measured + 1} rounds measured`);
  }
  const cpuAfter = machineCpu();
  const ownAfter = ownCpu();
  return {
    agents,
    latency: summarize(latencies),
    busyPerRound: (cpuAfter.busy - cpuBefore.busy) / ROUNDS,
    ownPerRound: Object.fromEntries(
      CPU_PARTS.map((part) => [part, (ownAfter[part] - ownBefore[part]) / ROUNDS]),
    ) as CpuSplit,
    deltaBytesPerRound: ((await nats.outBytes()) - bytesBefore) / ROUNDS,
    applies: appliesBetween(hosts, statsBefore, await collectStats(hosts)),
  };
}

async function collectStats(hosts: readonly Host[]): Promise<AgentHostStats[]> {
  return Promise.all(
    hosts.map(async (host) => {
      host.child.send({ kind: 'stats' });
      const message = await host.next();
      if (message.kind !== 'stats') throw new Error(`expected stats, got ${message.kind}`);
      return message;
    }),
  );
}

/** Publishes each snapshot in turn, waiting for every agent's ack; each round's milliseconds. */
async function publishRounds(
  bus: ControllerBus,
  agents: number,
  snapshots: readonly MeshSnapshot[],
): Promise<number[]> {
  const latencies: number[] = [];
  for (const snapshot of snapshots) {
    const started = performance.now();
    await untilAcked(bus, bus.publish(snapshot), agents);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

/** A churn phase: endpoint changes, then policy changes, every agent acking each. */
interface Churn {
  /** The applies of the agents with nginx: endpoint changes, policy changes. */
  readonly endpoint: Applies;
  readonly policy: Applies;
  /** The rounds, from publish until every agent acked. */
  readonly endpointRounds: LatencySummary;
  readonly policyRounds: LatencySummary;
  /** nginx reloads and member updates (the config appliers' counts) during the endpoint changes. */
  readonly reloads: number;
  readonly memberUpdates: number;
  /** Of the endpoint changes' applies, those whose text differed from the agent's previous one. */
  readonly textChanges: number;
  /** Of those applies, those whose text or members differed: reloads with endpoints in the text. */
  readonly anyChanges: number;
  /** Endpoint rounds whose text, rendered for one agent without carried slots, differed. */
  readonly uncarriedChanges: number;
  /** nginx reloads during the policy changes. */
  readonly policyReloads: number;
  /** The load average (1, 5, 15 min) as the phase began and as it ended. */
  readonly load: readonly [string, string];
}

/**
 * Changes the first Service alone, from the last round published on: rounds.endpoint endpoint
 * changes, then rounds.policy changes of its circuit breaker, which is then removed again.
 */
async function measureChurn(
  { bus, round, hosts }: Measurement,
  agents: number,
  context: SidecarContext,
  rounds: { readonly endpoint: number; readonly policy: number },
): Promise<Churn> {
  const loadBefore = loadAverage();
  const churned = (churn: SnapshotChurn): MeshSnapshot =>
    syntheticSnapshot(SERVICES, round.next - 1, churn);
  // From 3 to 4 endpoints, in the 8 slots that 3 got.
  const warm: SnapshotChurn = { addedEndpoints: 1 };
  await untilAcked(bus, bus.publish(churned(warm)), agents);
  const endpointChurn = Array.from({ length: rounds.endpoint }, (_, index): SnapshotChurn => ({
    addedEndpoints: index % 2 === 0 ? 2 : 1,
  }));
  const policyChurn = Array.from({ length: rounds.policy }, (_, index): SnapshotChurn => ({
    addedEndpoints: endpointChurn.at(-1)?.addedEndpoints ?? 1,
    breakerErrors: 5 + index,
  }));
  const start = await collectStats(hosts);
  const endpointRounds = await publishRounds(bus, agents, endpointChurn.map(churned));
  const middle = await collectStats(hosts);
  const policyRounds = await publishRounds(bus, agents, policyChurn.map(churned));
  const end = await collectStats(hosts);
  // Back to the main rounds' snapshot, so that agents joining later start without the breaker.
  if (rounds.policy > 0) await untilAcked(bus, bus.publish(churned({ addedEndpoints: 0 })), agents);
  const applies = nginxAppliesBetween(start, middle);
  const counts = countsBetween(start, middle);
  // The renderer as it was before slots were carried: each render sizes its slots afresh.
  const uncarried = [warm, ...endpointChurn].map(
    (churn) => renderSidecarConfig(churned(churn), context).text,
  );
  return {
    endpoint: appliesBetween(hosts, start, middle),
    policy: appliesBetween(hosts, middle, end),
    endpointRounds: summarize(endpointRounds),
    policyRounds: summarize(policyRounds),
    reloads: counts.reloads,
    memberUpdates: counts.memberUpdates,
    textChanges: applies.filter((apply) => apply.textChanged).length,
    anyChanges: applies.filter((apply) => apply.textChanged || apply.membersChanged).length,
    uncarriedChanges: uncarried.filter((text, index) => index > 0 && text !== uncarried[index - 1])
      .length,
    policyReloads: countsBetween(middle, end).reloads,
    load: [loadBefore, loadAverage()],
  };
}

async function stopHosts(hosts: readonly Host[]): Promise<void> {
  await Promise.all(
    hosts.map(
      (host) =>
        new Promise<void>((resolve) => {
          if (host.child.exitCode !== null || host.child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            host.child.kill('SIGKILL');
            resolve();
          }, 10_000);
          host.child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          host.child.send({ kind: 'stop' });
        }),
    ),
  );
}

const ms = (value: number): string => value.toFixed(1);

/** The load average over 1, 5 and 15 minutes. */
const loadAverage = (): string =>
  readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function measure(run: Run): Promise<void> {
  const meshModule = buildMeshModule();
  const modules = ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule];
  run.makeBridge();
  const pki = await writePki(run.dir);
  const nats = await startNatsServer(run, pki);
  const controllerConnection = await connectBus({
    servers: [nats.server],
    name: 'controller',
    svidFile: pki.controllerSvid,
    bundleFile: pki.bundleFile,
    expectedServerId: NATS_ID,
    logger,
  });
  run.later(() => void controllerConnection.close());
  const bus = await startControllerBus(controllerConnection, {
    logger,
    now: Date.now,
    version: 'bench',
    accountOf: (pod) => (pod.startsWith(`${IDENTITY.namespace}/`) ? 'bench/agents' : undefined),
  });
  run.later(() => void bus.close());
  bus.publish(syntheticSnapshot(SERVICES, 0));
  const round = { next: 1 };
  const base = {
    server: nats.server,
    expectedServerId: NATS_ID,
    identity: IDENTITY,
    svidFile: pki.agentSvid,
    bundleFile: pki.bundleFile,
    modules,
  };
  const nginxRoot = join(run.dir, 'sidecars');
  // nginx's workers run as another user (the master is root) and open each members file.
  chmodSync(run.dir, 0o711);
  mkdirSync(nginxRoot, { mode: 0o755 });
  const hosts: Host[] = [];
  const measurement: Measurement = {
    bus,
    nats,
    round,
    ownCpu: () => cpuSplit(nats.pid, hosts),
    hosts,
  };
  const join_ = async (started: Host[]): Promise<void> => {
    for (const host of started) {
      const message = await host.next();
      if (message.kind !== 'ready') throw new Error(`expected ready, got ${message.kind}`);
    }
    hosts.push(...started);
  };
  const nginxHost = (index: number): Host =>
    startHost(
      run,
      { ...base, first: index, count: 1, nginxRunRoot: nginxRoot },
      run.makeNamespace(index),
    );

  // One sidecar alone: what a change costs a pod that has the CPU to itself, the bus included.
  const joinStarted = performance.now();
  await join_([nginxHost(0)]);
  await untilAcked(bus, bus.generation(), 1);
  progress('one sidecar with nginx joined; measuring it alone');
  const alone = await measureRounds(measurement, 1);
  progress(`alone: p99 ${ms(alone.latency.p99)} ms; endpoint churn against policy changes`);
  const churnContext = agentContext({ ...base, nginxRunRoot: nginxRoot }, 0);
  const aloneChurn = await measureChurn(measurement, 1, churnContext, {
    endpoint: ALONE_CHURN_ROUNDS,
    policy: ALONE_POLICY_ROUNDS,
  });
  progress('starting the other agents');

  // Then all of them, joining a few at a time as pods roll out.
  for (let index = 1; index < NGINX_AGENTS; index += 5) {
    await join_(
      Array.from({ length: Math.min(5, NGINX_AGENTS - index) }, (_, offset) =>
        nginxHost(index + offset),
      ),
    );
    progress(`${hosts.length} sidecars with nginx joined`);
  }
  const renderOnly = AGENTS - NGINX_AGENTS;
  const perHost = Math.ceil(renderOnly / HOST_PROCESSES);
  await join_(
    Array.from({ length: HOST_PROCESSES }, (_, index) => {
      const first = NGINX_AGENTS + index * perHost;
      return startHost(
        run,
        { ...base, first, count: Math.min(perHost, AGENTS - first) },
        undefined,
      );
    }),
  );
  progress(`all ${AGENTS} agents subscribed`);
  await untilAcked(bus, bus.generation(), AGENTS);
  progress(`all ${AGENTS} agents run the current snapshot; measuring`);
  const joinMs = performance.now() - joinStarted;
  const all = await measureRounds(measurement, AGENTS);
  progress(`measured; endpoint churn at ${AGENTS} agents`);
  const churn = await measureChurn(measurement, AGENTS, churnContext, {
    endpoint: CHURN_ROUNDS,
    policy: 0,
  });
  await stopHosts(hosts);
  report({ alone, all, joinMs, aloneChurn, churn });
}

interface Report {
  readonly alone: Phase;
  readonly all: Phase;
  readonly joinMs: number;
  /** Endpoint and policy changes for the lone sidecar; endpoint changes for all of them. */
  readonly aloneChurn: Churn;
  readonly churn: Churn;
}

function report(r: Report): void {
  const cores = cpus().length;
  const p99 = r.all.latency.p99;
  const met = verdictOf(p99, TARGET);
  const own = (phase: Phase): number => sumOf(Object.values(phase.ownPerRound));
  // The least a round can take when this run's CPU per round is spread perfectly over the cores.
  const floorMs = (own(r.all) / cores) * 1000;
  const [largest] = Object.entries(r.all.ownPerRound).sort(([, a], [, b]) => b - a);
  const line = (phase: Phase): string =>
    `p50 ${ms(phase.latency.p50)} ms, p99 ${ms(phase.latency.p99)} ms, max ${ms(phase.latency.max)} ms over ${phase.latency.count} rounds; CPU per round ${own(phase).toFixed(2)} core-s of this run's processes (machine busy ${phase.busyPerRound.toFixed(2)}); nats-server sent ${phase.deltaBytesPerRound.toFixed(0)} bytes per change`;
  const applies = (a: Applies): string => {
    const updates = a.memberUpdates === 0 ? '' : `, write + PUT ${ms(a.updateP50)}`;
    const reloads =
      a.reloads === 0
        ? ''
        : `, write + nginx -t ${ms(a.checkP50)}, reload until the new workers run ${ms(a.reloadP50)}`;
    return `p50 ${ms(a.nginx.p50)} ms, p99 ${ms(a.nginx.p99)} ms, max ${ms(a.nginx.max)} ms (medians: render ${ms(a.renderP50)}; ${a.memberUpdates} member updates without a reload${updates}; ${a.reloads} reloads${reloads})`;
  };
  const c = r.churn;
  const a = r.aloneChurn;
  const perThousand = (count: number, of: number): number => (count / of) * 1000;
  const reloadsPerThousand = perThousand(c.reloads, c.endpoint.nginx.count);
  const rounds = (summary: LatencySummary): string =>
    `p50 ${ms(summary.p50)} ms, p99 ${ms(summary.p99)} ms over ${summary.count} rounds`;
  const split = Object.entries(r.all.ownPerRound)
    .map(([part, seconds]) => `${part} ${seconds.toFixed(2)}`)
    .join(', ');
  const why =
    met === 'met'
      ? ''
      : ` (a round takes ${own(r.all).toFixed(2)} core-s here, mostly ${largest?.[0] ?? '?'}, on ${cores} cores: no round can end before ~${floorMs.toFixed(0)} ms; one sidecar alone: p99 ${ms(r.alone.latency.p99)} ms)`;
  const lines = [
    `propagation: ${AGENTS} agents (${NGINX_AGENTS} with real nginx, one worker, ngx_mesh, each in its own network namespace; ${AGENTS - NGINX_AGENTS} rendering only, over ${HOST_PROCESSES} processes), each on its own TLS connection (SVID client certificates verified and mapped to NATS users) to nats-server; ${SERVICES}-service mesh, one service's endpoints changed per round, ${WARMUP_ROUNDS} warm-up rounds; ${cores} cores, Node ${process.versions.node}`,
    `  1 sidecar alone (nginx): ${line(r.alone)}`,
    `  ${AGENTS} sidecars: ${line(r.all)}`,
    `  all ${AGENTS} joined, connected over TLS and applied the first snapshot in ${(r.joinMs / 1000).toFixed(1)} s`,
    `  one agent's apply with nginx, alone: ${applies(r.alone.applies)}`,
    `  each agent's apply, all ${AGENTS} sharing the machine: ${applies(r.all.applies)}; rendering only p50 ${ms(r.all.applies.renderOnly.p50)} ms, p99 ${ms(r.all.applies.renderOnly.p99)} ms`,
    `  CPU per round at ${AGENTS} sidecars (core-s): ${split}`,
    `  what dominates: CPU, not the bus. A round needs ${own(r.all).toFixed(2)} core-s (${largest?.[0] ?? '?'} the most) and ${cores} cores give at best ~${floorMs.toFixed(0)} ms; a sidecar with the machine to itself is current after p99 ${ms(r.alone.latency.p99)} ms. In a cluster every pod applies on its own CPU; here all of them queue for ${cores}, and the figure below is this machine's, as measured`,
    `  endpoint churn, one Service gaining or losing an endpoint within its slots each round, against policy changes, its circuit breaker changed each round:`,
    `    1 sidecar alone (load ${a.load[0]} as it began, ${a.load[1]} as it ended): endpoint changes ${applies(a.endpoint)}, acked ${rounds(a.endpointRounds)}; policy changes ${applies(a.policy)}, acked ${rounds(a.policyRounds)}`,
    `    ${AGENTS} sidecars (load ${c.load[0]} as it began, ${c.load[1]} as it ended): ${CHURN_ROUNDS} rounds acked ${rounds(c.endpointRounds)}; the ${NGINX_AGENTS} with nginx applied ${c.endpoint.nginx.count} endpoint changes with ${c.reloads} reloads and ${c.memberUpdates} member updates (PUT, no reload), ${c.textChanges} of them changing the configuration text: ${applies(c.endpoint)}`,
    `    baselines, the same rounds: with the endpoints in the text, ${c.anyChanges} of the ${c.endpoint.nginx.count} would have reloaded (${perThousand(c.anyChanges, c.endpoint.nginx.count).toFixed(0)} per 1,000); without the slots carried from render to render, ${c.uncarriedChanges} of the ${CHURN_ROUNDS} rounds' texts differ. Alone: ${a.reloads} reloads for ${a.endpoint.nginx.count} endpoint changes, ${a.policyReloads} for ${a.policy.nginx.count} policy changes`,
    `  load now: ${loadAverage()}`,
    '',
    `${targetLine('propagation_p99_ms_1000_agents', p99, TARGET, 1)}${why}`,
    targetLine('reloads_per_1000_endpoint_changes', reloadsPerThousand, RELOADS_TARGET, 1),
    '',
    `propagation_p50_ms_1000_agents ${ms(r.all.latency.p50)} ms`,
    `propagation_p99_ms_1000_agents ${ms(p99)} ms`,
    `propagation_max_ms_1000_agents ${ms(r.all.latency.max)} ms`,
    `propagation_p50_ms_1_agent ${ms(r.alone.latency.p50)} ms`,
    `propagation_p99_ms_1_agent ${ms(r.alone.latency.p99)} ms`,
    `propagation_cpu_core_seconds_per_round_1000_agents ${own(r.all).toFixed(2)} core-s`,
    `propagation_delta_bytes_per_change_1000_agents ${r.all.deltaBytesPerRound.toFixed(0)} bytes`,
    `reloads_per_1000_endpoint_changes ${reloadsPerThousand.toFixed(1)} reloads`,
    `reloads_per_1000_endpoint_changes_endpoints_in_text ${perThousand(c.anyChanges, c.endpoint.nginx.count).toFixed(1)} reloads`,
    `reloads_per_1000_endpoint_changes_without_carried_slots ${perThousand(c.uncarriedChanges, CHURN_ROUNDS).toFixed(1)} reloads`,
    `propagation_endpoint_change_apply_p50_ms_1_agent ${ms(a.endpoint.nginx.p50)} ms`,
    `propagation_endpoint_change_apply_p99_ms_1_agent ${ms(a.endpoint.nginx.p99)} ms`,
    `propagation_policy_change_apply_p50_ms_1_agent ${ms(a.policy.nginx.p50)} ms`,
    `propagation_policy_change_apply_p99_ms_1_agent ${ms(a.policy.nginx.p99)} ms`,
    `propagation_endpoint_change_apply_p50_ms_1000_agents ${ms(c.endpoint.nginx.p50)} ms`,
    `propagation_endpoint_change_apply_p99_ms_1000_agents ${ms(c.endpoint.nginx.p99)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const run = new Run();
  const onSignal = (): void => {
    run.cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const deadline = setTimeout(() => {
    process.stderr.write(`propagation: not done within ${RUN_DEADLINE_MS / 1000} s\n`);
    run.cleanup();
    process.exit(1);
  }, RUN_DEADLINE_MS);
  try {
    await measure(run);
  } finally {
    clearTimeout(deadline);
    run.cleanup();
  }
}

const [mode, arg] = process.argv.slice(2);
// A host that fails exits, so that its parent hears of it; the parent's cleanup ends its nginx.
(mode === '--host' ? runAgentHost(arg ?? '') : main().then(() => process.exit())).catch(
  (error: unknown) => {
    process.stderr.write(`propagation: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
