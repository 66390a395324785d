// The mesh configuration from the controller's bus into a running nginx: an agent built from the
// same pieces as the agent role (bus, sidecar renderer, safe applier, supervisor) follows every
// generation across a NATS restart and a controller restart, never applies a stale one, and
// keeps the last good configuration when nginx refuses one, reporting why in its ack. A pod that
// starts without backing a Service reaches the agent's peers and does not reload nginx.
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
} from '../../src/manifests/install/nats-config';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIDECAR_OUTBOUND_REDIRECT_PORT } from '../../src/manifests/constants';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { renderSidecarConfig } from '../../src/render/sidecar';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import type { SnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { buildPeerIndex } from '../../src/runtime/agent/metrics/peers';
import { listNginxChildren } from '../../src/runtime/agent/nginx-process';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import { startAgentBus } from '../../src/runtime/bus/agent-bus';
import { connectBus } from '../../src/runtime/bus/connect';
import type { ControllerBus } from '../../src/runtime/bus/controller-bus';
import { startControllerBus } from '../../src/runtime/bus/controller-bus';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { MeshNats } from '../support/mesh-nats';
import { connectController, NATS_SERVER_ID, startMeshNats } from '../support/mesh-nats';
import {
  endpoint,
  httpPort,
  service,
  shopContext,
  shopSnapshot,
} from '../support/sidecar-snapshots';

const root = join(__dirname, '..', '..');
const logger = createJsonLogger({
  level: 'error',
  out: { write: () => true },
  now: () => new Date(),
});
let nats: MeshNats;
let dir: string;
let supervisor: Supervisor;
const cleanups: (() => Promise<unknown>)[] = [];
/** Generations the agent applied or failed, in order, with nginx's answer. */
const applied: { generation: number; error: string | undefined }[] = [];
/** The last snapshot the agent applied, as its metrics receive it. */
let lastApplied: MeshSnapshot | undefined;
let snapshots: SnapshotApplier;

/** The shop snapshot plus one Service named after the round, so every round changes nginx. */
function round(n: number, extra: Partial<MeshSnapshot> = {}): MeshSnapshot {
  const base = shopSnapshot();
  return {
    ...base,
    services: {
      ...base.services,
      ...service(
        `shop/round-${n}`,
        `10.96.1.${n}`,
        [httpPort(80)],
        [endpoint(`10.1.9.${n}`, { http: 8080 })],
      ),
    },
    ...extra,
  };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The bus identity of the agent's pod shop/web-1. */
const WEB = { namespace: 'shop', serviceAccount: 'web' };

/** The controller on the bus; starting another stops it first, as leader election ensures. */
let active: (() => Promise<void>) | undefined;

async function controller(): Promise<ControllerBus> {
  await active?.();
  const nc = await connectController(nats, logger);
  const bus = await startControllerBus(nc, {
    logger,
    now: Date.now,
    version: '1.0.0',
    accountOf: (pod) => (pod === 'shop/web-1' ? 'shop/web' : undefined),
  });
  active = async () => {
    await bus.close();
    await nc.close();
  };
  cleanups.push(active);
  return bus;
}

const live = (): string => readFileSync(join(dir, 'nginx.conf'), 'utf8');
const acked = (bus: ControllerBus, generation: number) => () =>
  bus.agents().some((agent) => agent.pod === 'shop/web-1' && agent.generation === generation);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-config-nginx-'));
  prepareStatsSocket(dir);
  for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, temp));
  const meshModule =
    execFileSync('bash', [join(root, 'scripts', 'build-ngx-mesh.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1) ?? '';
  nats = await startMeshNats();
  await nats.allow(WEB);
  const svidFile = await nats.issueSvidFile('web-1', 'shop', 'web');
  const context = shopContext({
    modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
    runDir: dir,
    svidFile,
    bundleFile: nats.bundleFile,
  });
  const paths = { nginx: '/usr/sbin/nginx', prefix: dir, config: join(dir, 'nginx.conf') };
  supervisor = new Supervisor({ paths, logger, readyPort: SIDECAR_OUTBOUND_REDIRECT_PORT });
  const applier = createConfigApplier({ paths, supervisor, logger });
  // The agent starts transparent, as the role does, before any controller is heard.
  const first = await applier.apply(
    renderSidecarConfig(round(0, { mesh: { ...round(0).mesh, transparent: true } }), context).text,
    'transparent',
  );
  if (!first.applied) throw new Error(first.error);
  await supervisor.start();
  const nc = await connectBus({
    servers: [nats.server],
    name: 'agent',
    svidFile,
    bundleFile: nats.bundleFile,
    expectedServerId: NATS_SERVER_ID,
    inboxPrefix: agentInboxPrefix(WEB),
    logger,
  });
  // The agent role's own step from snapshot to nginx, rendering only what nginx reads.
  snapshots = createSnapshotApplier({
    context,
    logger,
    apply: (text, label) => applier.apply(text, label),
    check: (text) => applier.check(text),
    onApplied: (snapshot) => (lastApplied = snapshot),
  });
  const agent = await startAgentBus(nc, {
    pod: 'shop/web-1',
    subject: agentSubscriptionSubject(WEB),
    version: '1.0.0',
    logger,
    apply: async (snapshot, generation, unrendered) => {
      const error = await snapshots.apply(snapshot, generation, unrendered);
      applied.push({ generation, error });
      return error;
    },
  });
  cleanups.push(async () => {
    await agent.close();
    await nc.close();
  });
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await supervisor?.stop();
  await nats?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

it('follows the controller into nginx across a NATS restart and a controller restart', async () => {
  const first = await controller();
  const g1 = first.publish(round(1));
  await waitFor('generation 1 in nginx', acked(first, g1));
  expect(live()).toContain('upstream mesh_shop__round_1_80');
  const masterBefore = supervisor.masterPid();

  await nats.kill();
  await nats.start();
  const g2 = first.publish(round(2));
  await waitFor('generation 2 after the NATS restart', acked(first, g2), 30_000);
  expect(live()).toContain('upstream mesh_shop__round_2_80');
  expect(live()).not.toContain('round_1');

  const second = await controller();
  const g3 = second.publish(round(3));
  expect(g3).toBeGreaterThan(g2);
  await waitFor('generation 3 from the restarted controller', acked(second, g3), 30_000);
  expect(live()).toContain('upstream mesh_shop__round_3_80');

  // Graceful reloads, never a restart, and never a generation out of order.
  expect(supervisor.masterPid()).toBe(masterBefore);
  const generations = applied.map((entry) => entry.generation);
  expect(generations).toEqual([...generations].sort((a, b) => a - b));
  expect(new Set(generations).size).toBe(generations.length);
  expect(generations).toEqual(expect.arrayContaining([g1, g2, g3]));
  expect(applied.every((entry) => entry.error === undefined)).toBe(true);
});

it('keeps the last good configuration when nginx refuses one, and says why in the ack', async () => {
  const bus = await controller();
  const good = bus.publish(round(4));
  await waitFor('a good generation', acked(bus, good));
  const before = live();
  // A client_max_body_size nginx cannot parse passes the snapshot's types but not nginx -t.
  const bad = bus.publish(round(5, { mesh: { ...round(5).mesh, clientMaxBodySize: '1x' } }));
  await waitFor('the refusal', () =>
    bus.agents().some((agent) => agent.generation === bad && agent.error !== undefined),
  );
  expect(bus.behind().map((agent) => agent.error)).toEqual([
    expect.stringContaining('client_max_body_size'),
  ]);
  expect(live()).toBe(before);
  const repaired = bus.publish(round(6));
  await waitFor('the repair', acked(bus, repaired));
  expect(bus.behind()).toEqual([]);
  expect(live()).toContain('upstream mesh_shop__round_6_80');
});

it('applies a snapshot that differs only in peers without touching nginx', async () => {
  const bus = await controller();
  const before = bus.publish(round(7));
  await waitFor('generation 7 in nginx', acked(bus, before));
  const file = statSync(join(dir, 'nginx.conf'));
  const text = live();
  const master = supervisor.masterPid() ?? 0;
  const workers = listNginxChildren(master).map((child) => child.pid);
  expect(workers.length).toBeGreaterThan(0);
  const renders = snapshots.renders();

  const loadgen = { pod: 'shop/loadgen-2', owner: 'deployment/loadgen' };
  const after = bus.publish(round(7, { peers: { ...round(7).peers, '10.1.0.40': loadgen } }));
  await waitFor('the generation with one more peer', acked(bus, after));

  expect(applied.at(-1)).toEqual({ generation: after, error: undefined });
  expect(buildPeerIndex(lastApplied ?? round(0)).get('10.1.0.40')).toEqual({
    namespace: 'shop',
    name: 'loadgen-2',
    ownerKind: 'deployment',
    ownerName: 'loadgen',
  });
  // Not even rendered: only peers changed since the configuration in force.
  expect(snapshots.renders()).toBe(renders);
  // The same text: the file was not rewritten and nginx was not reloaded.
  expect(live()).toBe(text);
  expect(statSync(join(dir, 'nginx.conf')).mtimeMs).toBe(file.mtimeMs);
  expect(statSync(join(dir, 'nginx.conf')).ino).toBe(file.ino);
  expect(supervisor.masterPid()).toBe(master);
  expect(listNginxChildren(master).map((child) => child.pid)).toEqual(workers);
});
