// A process hosting mesh agents for the propagation benchmark, each as the sidecar runs it: its
// own TLS connection to NATS with the workload's SVID, the agent's bus (agent-bus.ts), and the
// agent's snapshot applier (snapshot-applier.ts), which renders the pod's nginx configuration
// from the snapshot the deltas built. With nginx, the applier hands the text to the agent's
// config applier and supervisor (write, `nginx -t`, rename, reload and wait for the new workers),
// as start-agent.ts wires them; without, the rendered text is taken as applied, and the apply is
// the render alone. An ack leaves only once the apply finished.
//
// The parent talks over the IPC channel: the host says "ready" once every agent subscribed,
// answers "stats" with each apply's duration so far, and on "stop" (or when the
// parent goes away) stops nginx and exits.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
} from '../../src/manifests/constants';
import type { BusIdentity } from '../../src/manifests/install/nats-config';
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
} from '../../src/manifests/install/nats-config';
import { buildTransparentModel, printNginxConfig } from '../../src/render/agent-nginx';
import type { SidecarContext } from '../../src/render/sidecar';
import type { ConfigApplier } from '../../src/runtime/agent/config-applier';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import type { AgentBus } from '../../src/runtime/bus/agent-bus';
import { startAgentBus } from '../../src/runtime/bus/agent-bus';
import { startBusLink } from '../../src/runtime/bus/connect';
import type { Logger } from '../../src/runtime/role/log';
import { createJsonLogger } from '../../src/runtime/role/log';

/** What one host process runs: agents first..first+count-1, all of one identity. */
export interface AgentHostSpec {
  readonly first: number;
  readonly count: number;
  /** host:port of nats-server. */
  readonly server: string;
  readonly expectedServerId: string;
  readonly identity: BusIdentity;
  /** The identity's SVID (chain, then key) and the trust bundle. */
  readonly svidFile: string;
  readonly bundleFile: string;
  /** The stream module, then ngx_mesh. */
  readonly modules: readonly string[];
  /** Set: every agent runs nginx with its run directory under this directory. */
  readonly nginxRunRoot?: string;
}

/** The host's answer to "stats". */
export interface AgentHostStats {
  readonly kind: 'stats';
  /** Milliseconds of every apply (render, and with nginx `nginx -t` and reload), in order. */
  readonly applyMs: readonly number[];
  /** Of those with nginx: the config applier's part (write, `nginx -t`, rename, reload). */
  readonly applierMs: readonly number[];
  /** Of that: the supervisor's reload (SIGHUP until the new workers replaced the old). */
  readonly reloadMs: readonly number[];
}

export type HostToParent = { readonly kind: 'ready' } | AgentHostStats;
export type ParentToHost = { readonly kind: 'stats' } | { readonly kind: 'stop' };

/** TLS connections opened at once: a thousand handshakes at a time would miss the timeout. */
const CONNECT_BATCH = 25;
const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

/** The pod of bench agent number. */
export function benchPod(identity: BusIdentity, number: number): string {
  return `${identity.namespace}/agent-${number}`;
}

/** A pod address per agent in the benchmarking range, as the renderer sees its own pod. */
function podIpOf(number: number): string {
  return `198.18.${200 + Math.floor(number / 250)}.${(number % 250) + 1}`;
}

/** Where each apply's durations go, in milliseconds. */
interface Timings {
  readonly applyMs: number[];
  readonly applierMs: number[];
  readonly reloadMs: number[];
}

async function timed<T>(into: number[], work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    into.push(performance.now() - started);
  }
}

interface RunningAgent {
  readonly stop: () => Promise<void>;
}

/** nginx under the agent's supervisor and config applier, first on the transparent configuration. */
async function startNginxApplier(
  spec: AgentHostSpec,
  runDir: string,
  logger: Logger,
  timings: Timings,
): Promise<{ applier: ConfigApplier; stop: () => Promise<void> }> {
  for (const dir of TEMP_DIRS) mkdirSync(join(runDir, dir), { recursive: true });
  const paths = { nginx: '/usr/sbin/nginx', prefix: runDir, config: join(runDir, 'nginx.conf') };
  const supervisor = new Supervisor({
    paths,
    logger,
    readyPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
    beforeStart: () => void prepareStatsSocket(runDir),
  });
  // Timed from the first reload of a running nginx on: the transparent apply has none.
  let running = false;
  const applier = createConfigApplier({
    paths,
    supervisor: {
      reload: () =>
        running ? timed(timings.reloadMs, () => supervisor.reload()) : supervisor.reload(),
    },
    logger,
  });
  const transparent = printNginxConfig(
    buildTransparentModel({
      closed: false,
      runDir,
      modules: spec.modules,
      errorLogLevel: 'warn',
      ipv6: false,
      outboundPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
      inboundPort: SIDECAR_INBOUND_REDIRECT_PORT,
      healthHttpPort: SIDECAR_HEALTH_HTTP_PORT,
      healthHttpsPort: SIDECAR_HEALTH_HTTPS_PORT,
      healthRedirects: {},
    }),
  );
  const outcome = await applier.apply(transparent, 'transparent');
  if (!outcome.applied) throw new Error(`transparent configuration: ${outcome.error ?? '?'}`);
  await supervisor.start();
  running = true;
  return {
    applier,
    stop: async () => {
      applier.close();
      await supervisor.stop();
    },
  };
}

async function startAgent(
  spec: AgentHostSpec,
  number: number,
  logger: Logger,
  timings: Timings,
): Promise<RunningAgent> {
  const pod = benchPod(spec.identity, number);
  const runDir = join(spec.nginxRunRoot ?? '/nonexistent', `agent-${number}`);
  const context: SidecarContext = {
    pod,
    serviceAccount: spec.identity.serviceAccount,
    podIPs: [podIpOf(number)],
    containerPorts: [8080],
    mtlsMode: 'strict',
    healthRedirects: {},
    ipv6: false,
    modules: spec.modules,
    runDir,
    svidFile: spec.svidFile,
    bundleFile: spec.bundleFile,
  };
  const nginx =
    spec.nginxRunRoot === undefined
      ? undefined
      : await startNginxApplier(spec, runDir, logger, timings);
  const snapshots = createSnapshotApplier({
    context,
    logger,
    apply: (text, label) =>
      nginx === undefined
        ? Promise.resolve({ applied: true })
        : timed(timings.applierMs, () => nginx.applier.apply(text, label)),
    check: (text) =>
      nginx === undefined ? Promise.resolve({ accepted: true }) : nginx.applier.check(text),
    onApplied: () => undefined,
  });
  // As the agent does: dialled until a connection is made (a handshake that misses the server's
  // TLS timeout on a busy machine is dialled again), subscribing anew on every new connection.
  let bus: Promise<AgentBus | undefined> = Promise.resolve(undefined);
  let subscribed: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (subscribed = resolve));
  const link = startBusLink({
    servers: [spec.server],
    name: `agent ${pod}`,
    svidFile: spec.svidFile,
    bundleFile: spec.bundleFile,
    expectedServerId: spec.expectedServerId,
    inboxPrefix: agentInboxPrefix(spec.identity),
    logger,
    onConnection: (connection) => {
      const previous = bus;
      bus = (async () => {
        await (await previous)?.close();
        const started = await startAgentBus(connection, {
          pod,
          subject: agentSubscriptionSubject(spec.identity),
          version: 'bench',
          logger,
          apply: (snapshot, generation, unrendered) =>
            timed(timings.applyMs, () => snapshots.apply(snapshot, generation, unrendered)),
        });
        subscribed();
        return started;
      })().catch((error: unknown) => {
        logger.error('cannot subscribe', { error: String(error) });
        return undefined;
      });
    },
  });
  await first;
  return {
    stop: async () => {
      await (await bus)?.close();
      await link.close();
      await nginx?.stop();
    },
  };
}
/** The host process's child mode: runs the agents of spec (JSON) until told to stop. */
export async function runAgentHost(arg: string): Promise<void> {
  const spec = JSON.parse(arg) as AgentHostSpec;
  const send = (message: HostToParent): void => void process.send?.(message);
  const logger = createJsonLogger({
    level: 'error',
    out: { write: (line: string) => process.stderr.write(line) },
    now: () => new Date(),
    fields: { host: spec.first },
  });
  const agents: RunningAgent[] = [];
  const timings: Timings = { applyMs: [], applierMs: [], reloadMs: [] };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.allSettled(agents.map((agent) => agent.stop()));
      process.exit(0);
    })());
  process.on('disconnect', () => void stop());
  process.on('message', (message: ParentToHost) => {
    if (message.kind === 'stop') void stop();
    else send({ kind: 'stats', ...timings });
  });
  for (let next = spec.first; next < spec.first + spec.count; next += CONNECT_BATCH) {
    const batch = Array.from(
      { length: Math.min(CONNECT_BATCH, spec.first + spec.count - next) },
      (_, index) => next + index,
    );
    agents.push(
      ...(await Promise.all(batch.map((number) => startAgent(spec, number, logger, timings)))),
    );
  }
  send({ kind: 'ready' });
}
