// Configuration propagation: the controller's real bus and agents' real buses over a real
// nats-server (its own process, plain TCP on loopback: TLS is not what is measured), a
// snapshot of 1,000 services, and one service changed per round. A round lasts from publish()
// until the controller has every agent's ack of that generation. Agents apply instantly (nginx
// is not measured), and share connections as they cannot in a cluster: 50 connections at most,
// each carrying its agents' own subscriptions, so the server still sends one copy per agent.
// The baseline in the same run sends the whole snapshot to every agent once, as a delta that
// upserts every entry, which is what a change would cost without deltas (up to 100 agents: the
// bytes per agent do not depend on the count). Agents apply in one process here, one after
// another, where in a cluster each pod applies on its own CPU: at 1,000 agents the latency is
// mostly the agents' summed applying time, not the bus.
// Target: p99 under 1 s with 1,000 agents.
import { agentInboxPrefix, agentSubscriptionSubject } from '../src/manifests/install/nats-config';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { NATS_CONFIG_SUBJECT } from '../src/manifests/constants';
import type { DeltaMessage } from '../src/manifests/snapshot/messages';
import type { MeshSnapshot } from '../src/manifests/snapshot/types';
import { SNAPSHOT_COLLECTIONS } from '../src/manifests/snapshot/types';
import type { AgentBus } from '../src/runtime/bus/agent-bus';
import { startAgentBus } from '../src/runtime/bus/agent-bus';
import { connectBus } from '../src/runtime/bus/connect';
import type { ControllerBus } from '../src/runtime/bus/controller-bus';
import { startControllerBus } from '../src/runtime/bus/controller-bus';
import { createJsonLogger } from '../src/runtime/role/log';
import { syntheticSnapshot } from './support/synthetic-snapshot';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

const SERVICES = 1_000;
const AGENT_COUNTS = [1, 100, 1_000];
const MAX_CONNECTIONS = 50;
/** Agents that join at once and fetch the whole snapshot. */
const JOIN_BATCH = 50;
const WARMUP_ROUNDS = 3;
const ROUNDS = 25;
const ROUND_TIMEOUT_MS = 60_000;
const TARGET_P99_MS: Target = { how: '<', limit: 1_000 };
/**
 * The full-snapshot baseline runs up to this many agents: beyond it, one process parsing a
 * 1.2 MB message per agent measures its own garbage collector, not the bus. Bytes per agent do
 * not depend on the count.
 */
const FULL_BASELINE_MAX_AGENTS = 100;

const logger = createJsonLogger({
  level: 'error',
  out: { write: (line: string) => process.stderr.write(line) },
  now: () => new Date(),
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface NatsServer {
  readonly url: string;
  /** Bytes the server has sent to clients so far. */
  outBytes(): Promise<number>;
  stop(): void;
}

async function startNatsServer(): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
  const port = await freePort();
  const monitor = await freePort();
  const config = join(dir, 'nats.conf');
  writeFileSync(
    config,
    [
      'host: "127.0.0.1"',
      `port: ${port}`,
      `http_port: ${monitor}`,
      'max_payload: 8MB',
      // One process drains the copies for every in-process agent: the full-snapshot baseline
      // would otherwise exceed the default 10 s and be cut off as a slow consumer.
      'write_deadline: "120s"',
      'max_pending: 512MB',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('/usr/sbin/nats-server', ['--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    url: `127.0.0.1:${port}`,
    outBytes: async () => {
      const response = await fetch(`http://127.0.0.1:${monitor}/varz`);
      return ((await response.json()) as { out_bytes: number }).out_bytes;
    },
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once every one of count agents has acked generation. */
async function untilAcked(bus: ControllerBus, generation: number, count: number): Promise<void> {
  const deadline = performance.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const acked = bus.agents().filter((agent) => agent.generation === generation).length;
    if (acked === count) return;
    if (performance.now() > deadline) {
      throw new Error(`only ${acked} of ${count} agents acked generation ${generation}`);
    }
    // Polling shares the process with the agents: the more agents, the less often.
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, count / 100)));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

interface Result {
  readonly agents: number;
  readonly connections: number;
  readonly initialSyncMs: number;
  readonly p50: number;
  readonly p99: number;
  readonly deltaBytes: number;
  /** The whole snapshot to every agent once: bytes the server sent and ms until all acked. */
  readonly full?: { readonly bytes: number; readonly ms: number };
}

/** The baseline: the whole snapshot to every agent, as a delta that upserts every entry. */
async function measureFull(
  server: NatsServer,
  bus: ControllerBus,
  controllerConnection: NatsConnection,
  whole: MeshSnapshot,
  agentCount: number,
): Promise<{ bytes: number; ms: number }> {
  const base = bus.generation();
  const full: DeltaMessage = {
    kind: 'delta',
    generation: base + 1,
    base,
    mesh: whole.mesh,
    upserts: Object.fromEntries(
      SNAPSHOT_COLLECTIONS.map((collection) => [collection, { ...whole[collection] }]),
    ),
    deletes: {},
  };
  const before = await server.outBytes();
  const started = performance.now();
  controllerConnection.publish(NATS_CONFIG_SUBJECT, new TextEncoder().encode(JSON.stringify(full)));
  await untilAcked(bus, base + 1, agentCount);
  const ms = performance.now() - started;
  return { bytes: (await server.outBytes()) - before, ms };
}

/** The identity every agent of the bench speaks as. */
const BENCH_IDENTITY = { namespace: 'bench', serviceAccount: 'agents' };

async function measure(server: NatsServer, agentCount: number): Promise<Result> {
  const connectionCount = Math.min(agentCount, MAX_CONNECTIONS);
  const opened: NatsConnection[] = [];
  const connection = async (name: string): Promise<NatsConnection> => {
    const nc = await connectBus({
      servers: [server.url],
      name,
      inboxPrefix: agentInboxPrefix(BENCH_IDENTITY),
      logger,
    });
    opened.push(nc);
    return nc;
  };
  const agentConnections = await Promise.all(
    Array.from({ length: connectionCount }, (_, index) => connection(`agents-${index}`)),
  );
  const controllerConnection = await connection('controller');
  const bus = await startControllerBus(controllerConnection, {
    logger,
    now: Date.now,
    version: 'bench',
    // Every agent runs as one ServiceAccount, so that they can share connections.
    accountOf: (pod) => (pod.startsWith('bench/') ? 'bench/agents' : undefined),
  });
  const agents: AgentBus[] = [];
  try {
    // Agents join in batches, as pods roll out, each batch fetching the whole snapshot.
    let started = performance.now();
    bus.publish(syntheticSnapshot(SERVICES, 0));
    while (agents.length < agentCount) {
      const batch = Math.min(JOIN_BATCH, agentCount - agents.length);
      for (let index = 0; index < batch; index += 1) {
        const number = agents.length;
        const nc = agentConnections[number % connectionCount] as NatsConnection;
        agents.push(
          await startAgentBus(nc, {
            pod: `bench/agent-${number}`,
            subject: agentSubscriptionSubject(BENCH_IDENTITY),
            version: 'bench',
            logger,
            apply: () => Promise.resolve(undefined),
          }),
        );
      }
      await untilAcked(bus, bus.generation(), agents.length);
    }
    const initialSyncMs = performance.now() - started;

    let round = 1;
    for (; round <= WARMUP_ROUNDS; round += 1) {
      await untilAcked(bus, bus.publish(syntheticSnapshot(SERVICES, round)), agentCount);
    }
    const latencies: number[] = [];
    const bytesBefore = await server.outBytes();
    for (let measured = 0; measured < ROUNDS; measured += 1, round += 1) {
      const snapshot = syntheticSnapshot(SERVICES, round);
      started = performance.now();
      await untilAcked(bus, bus.publish(snapshot), agentCount);
      latencies.push(performance.now() - started);
    }
    const deltaBytes = ((await server.outBytes()) - bytesBefore) / ROUNDS;

    const baseline =
      agentCount <= FULL_BASELINE_MAX_AGENTS
        ? await measureFull(
            server,
            bus,
            controllerConnection,
            syntheticSnapshot(SERVICES, round),
            agentCount,
          )
        : undefined;

    latencies.sort((a, b) => a - b);
    return {
      agents: agentCount,
      connections: connectionCount,
      initialSyncMs,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      deltaBytes,
      ...(baseline === undefined ? {} : { full: baseline }),
    };
  } finally {
    await Promise.all(agents.map((agent) => agent.close()));
    await bus.close();
    await Promise.all(opened.map((nc) => nc.close()));
  }
}

async function main(): Promise<void> {
  const snapshotBytes = JSON.stringify(syntheticSnapshot(SERVICES, 0)).length;
  const server = await startNatsServer();
  console.log(
    `propagation: ${SERVICES}-service snapshot (${(snapshotBytes / 1024).toFixed(0)} KiB of JSON), one service changed per round, ${ROUNDS} rounds after ${WARMUP_ROUNDS} warm-up, nats-server 2.9 on loopback, Node ${process.versions.node}`,
  );
  const results: Result[] = [];
  try {
    for (const count of AGENT_COUNTS) {
      const result = await measure(server, count);
      results.push(result);
      console.log(
        `  ${String(result.agents).padStart(5)} agents on ${String(result.connections).padStart(2)} connections: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms; all joined and synced in ${result.initialSyncMs.toFixed(0)} ms; bytes sent per change ${result.deltaBytes.toFixed(0)} (deltas)${result.full === undefined ? '' : ` vs ${result.full.bytes.toFixed(0)} (full snapshot, ${result.full.ms.toFixed(0)} ms)`}`,
      );
    }
  } finally {
    server.stop();
  }
  const largest = results[results.length - 1] as Result;
  for (const result of results) {
    console.log(`propagation_p50_ms_${result.agents}_agents ${result.p50.toFixed(1)} ms`);
    console.log(`propagation_p99_ms_${result.agents}_agents ${result.p99.toFixed(1)} ms`);
  }
  const compared = results.filter((result) => result.full !== undefined).at(-1) as Result;
  const fullBytes = compared.full?.bytes ?? NaN;
  console.log(
    `  bytes per change compared at ${compared.agents} agents: the full snapshot costs ${(fullBytes / compared.deltaBytes).toFixed(0)}x the delta`,
  );
  console.log(`propagation_delta_bytes_per_change ${compared.deltaBytes.toFixed(0)} bytes`);
  console.log(`propagation_full_bytes_per_change ${fullBytes.toFixed(0)} bytes`);
  console.log(
    `propagation_full_to_delta_bytes_ratio ${(fullBytes / compared.deltaBytes).toFixed(1)} x`,
  );
  console.log(
    targetLine(`propagation_p99_ms_${largest.agents}_agents`, largest.p99, TARGET_P99_MS, 1),
  );
}

// A thousand agents in one process hold a thousand copies of the snapshot, where a cluster
// has one per pod: the process runs itself again with a heap sized for that.
const HEAP_FLAGS = ['--max-old-space-size=12288', '--max-semi-space-size=64'];
if (HEAP_FLAGS.every((flag) => process.execArgv.includes(flag))) {
  void main();
} else {
  const child = spawnSync(process.execPath, [...HEAP_FLAGS, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exitCode = child.status ?? 1;
}
