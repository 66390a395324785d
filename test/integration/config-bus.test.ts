// The configuration bus end to end over a real nats-server with deploy's TLS and permissions:
// the controller's generations reach every agent as deltas, late agents and agents that lost
// their connection catch up with the whole snapshot, a restarted controller never sends an
// agent backwards, failures come back in acks, and malformed messages are ignored.
import type { NatsConnection } from 'nats';
import { Events } from 'nats';
import { emptySnapshot } from '../../src/manifests/snapshot/delta';
import type {
  MeshSnapshot,
  SnapshotMesh,
  SnapshotService,
} from '../../src/manifests/snapshot/types';
import type { AgentBus } from '../../src/runtime/bus/agent-bus';
import { startAgentBus } from '../../src/runtime/bus/agent-bus';
import { connectBus, startBusLink } from '../../src/runtime/bus/connect';
import type { ControllerBus } from '../../src/runtime/bus/controller-bus';
import { startControllerBus } from '../../src/runtime/bus/controller-bus';
import type { Logger } from '../../src/runtime/role/log';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { MeshNats } from '../support/mesh-nats';
import {
  connectController,
  controllerDial,
  NATS_SERVER_ID,
  startMeshNats,
  testAccountOf,
  testIdentityOf,
} from '../support/mesh-nats';
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
} from '../../src/manifests/install/nats-config';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

const MESH: SnapshotMesh = DEFAULT_SNAPSHOT_MESH;

/** A snapshot of count services whose endpoints carry round, so each round changes them. */
function snapshotOf(round: number, names = ['api', 'cart', 'web']): MeshSnapshot {
  const services: Record<string, SnapshotService> = {};
  for (const name of names) {
    services[`shop/${name}`] = {
      namespace: 'shop',
      name,
      clusterIPs: ['198.18.0.10'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', kind: 'http' }],
      endpoints: [{ address: `198.18.1.${round % 250}`, ports: { http: 8080 } }],
    };
  }
  return { ...emptySnapshot(MESH), services };
}

let nats: MeshNats;
const logLines: string[] = [];
const logger: Logger = createJsonLogger({
  level: 'debug',
  out: {
    write: (line: string) => {
      logLines.push(line);
      return true;
    },
  },
  now: () => new Date(),
});
const cleanups: (() => Promise<unknown>)[] = [];

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function controllerConnection(): Promise<NatsConnection> {
  const nc = await connectController(nats, logger);
  cleanups.push(() => nc.close());
  return nc;
}

async function startController(
  now: () => number = Date.now,
  recordedGeneration = 0,
): Promise<{ nc: NatsConnection; bus: ControllerBus }> {
  const nc = await controllerConnection();
  const bus = await startControllerBus(nc, {
    logger,
    now,
    version: '2.0.0',
    accountOf: testAccountOf,
    ...(recordedGeneration === 0
      ? {}
      : { firstGeneration: recordedGeneration + 1, recordedGeneration: () => recordedGeneration }),
  });
  cleanups.push(() => bus.close());
  return { nc, bus };
}

interface TestAgent {
  readonly pod: string;
  readonly nc: NatsConnection;
  readonly bus: AgentBus;
  /** Every generation handed to apply, in order. */
  readonly applied: number[];
  /** JSON of the last snapshot handed to apply. */
  last(): string | undefined;
}

async function startAgent(
  pod: string,
  fail: (snapshot: MeshSnapshot) => string | undefined = () => undefined,
): Promise<TestAgent> {
  const identity = testIdentityOf(pod);
  await nats.allow(identity);
  const nc = await connectBus({
    servers: [nats.server],
    name: pod,
    svidFile: await nats.issueSvidFile(
      pod.replace('/', '-'),
      identity.namespace,
      identity.serviceAccount,
    ),
    bundleFile: nats.bundleFile,
    expectedServerId: NATS_SERVER_ID,
    inboxPrefix: agentInboxPrefix(identity),
    logger,
  });
  cleanups.push(() => nc.close());
  const applied: number[] = [];
  let last: string | undefined;
  const bus = await startAgentBus(nc, {
    pod,
    subject: agentSubscriptionSubject(identity),
    version: '2.0.0',
    logger,
    apply: (snapshot, generation) => {
      applied.push(generation);
      last = JSON.stringify(snapshot);
      return Promise.resolve(fail(snapshot));
    },
  });
  cleanups.push(() => bus.close());
  return { pod, nc, bus, applied, last: () => last };
}

function current(agents: readonly TestAgent[], controller: ControllerBus): () => boolean {
  return () => agents.every((agent) => agent.bus.generation() === controller.generation());
}

function strictlyIncreasing(values: readonly number[]): boolean {
  return values.every((value, index) => index === 0 || value > (values[index - 1] ?? Infinity));
}

beforeAll(async () => {
  nats = await startMeshNats();
  await nats.allow({ namespace: 'shop', serviceAccount: 'web' });
});

afterEach(async () => {
  const pending = cleanups.splice(0).reverse();
  for (const cleanup of pending) await cleanup().catch(() => undefined);
});

afterAll(async () => {
  await nats?.dispose();
});

describe('the configuration bus', () => {
  it('brings every generation to three agents, and a late agent to the current one', async () => {
    const agents = await Promise.all(
      ['shop/a-1', 'shop/b-1', 'shop/c-1'].map((pod) => startAgent(pod)),
    );
    const { bus } = await startController();
    const generations = [bus.publish(snapshotOf(1))];
    await waitFor('the first snapshot', current(agents, bus));
    for (const round of [2, 3, 4]) {
      generations.push(bus.publish(snapshotOf(round)));
      await waitFor(
        `generation ${round}`,
        () => bus.behind().length === 0 && current(agents, bus)(),
      );
    }
    expect(strictlyIncreasing(generations)).toBe(true);
    for (const agent of agents) {
      expect(agent.applied).toEqual(generations);
      expect(agent.last()).toBe(JSON.stringify(snapshotOf(4)));
    }
    expect(bus.agents().map((agent) => [agent.pod, agent.generation])).toEqual(
      agents.map((agent) => [agent.pod, generations[3]]),
    );

    expect(bus.publish(snapshotOf(4))).toBe(generations[3]);

    const late = await startAgent('shop/late-1');
    await waitFor('the late agent', current([late], bus));
    expect(late.applied).toEqual([generations[3]]);
    expect(late.last()).toBe(JSON.stringify(snapshotOf(4)));
  });

  it('resynchronises every agent across a NATS restart without losing a generation', async () => {
    const { bus } = await startController();
    const agents = await Promise.all(['shop/a-1', 'shop/b-1'].map((pod) => startAgent(pod)));
    bus.publish(snapshotOf(10));
    await waitFor('the first snapshot', current(agents, bus));

    await nats.kill();
    const reconnected = agents.map((agent) => waitForStatus(agent.nc, Events.Reconnect));
    bus.publish(snapshotOf(11));
    await nats.start();
    await Promise.all(reconnected);
    bus.publish(snapshotOf(12, ['api', 'web']));
    await waitFor(
      'every agent after the restart',
      () => bus.behind().length === 0 && current(agents, bus)(),
      15_000,
    );

    for (const agent of agents) {
      expect(agent.last()).toBe(JSON.stringify(snapshotOf(12, ['api', 'web'])));
      expect(strictlyIncreasing(agent.applied)).toBe(true);
      expect(agent.applied.at(-1)).toBe(bus.generation());
    }
  });

  it('moves agents to a restarted controller, never backwards', async () => {
    const first = await startController();
    const agents = await Promise.all(['shop/a-1', 'shop/b-1'].map((pod) => startAgent(pod)));
    first.bus.publish(snapshotOf(20));
    first.bus.publish(snapshotOf(21));
    await waitFor('the first controller', current(agents, first.bus));
    const before = first.bus.generation();
    await first.bus.close();
    await first.nc.close();

    const second = await startController();
    await waitFor('subscriptions to the new controller', () => second.bus.agents().length === 2);
    second.bus.publish(snapshotOf(22));
    await waitFor(
      'the new controller',
      () => second.bus.behind().length === 0 && current(agents, second.bus)(),
    );
    second.bus.publish(snapshotOf(23));
    await waitFor('a delta from the new controller', current(agents, second.bus));

    expect(second.bus.generation()).toBeGreaterThan(before);
    for (const agent of agents) {
      expect(strictlyIncreasing(agent.applied)).toBe(true);
      expect(agent.last()).toBe(JSON.stringify(snapshotOf(23)));
    }
  });

  it('moves past what agents hold when the new controller’s clock went back', async () => {
    const first = await startController();
    const agent = await startAgent('shop/a-1');
    first.bus.publish(snapshotOf(30));
    await waitFor('the first controller', current([agent], first.bus));
    const before = first.bus.generation();
    await first.bus.close();
    await first.nc.close();

    // The leader Lease records the generation the first controller had at its last renewal.
    const second = await startController(() => 1_000, before - 5_000);
    second.bus.publish(snapshotOf(31));
    await waitFor(
      'the agent on the new controller',
      () => second.bus.behind().length === 0 && current([agent], second.bus)(),
    );
    expect(second.bus.generation()).toBeGreaterThan(before);
    expect(strictlyIncreasing(agent.applied)).toBe(true);
    expect(agent.last()).toBe(JSON.stringify(snapshotOf(31)));
  });

  it('reports a failed apply in the ack, until a later generation applies', async () => {
    const { bus } = await startController();
    const good = await startAgent('shop/good-1');
    const bad = await startAgent('shop/bad-1', (snapshot) =>
      'shop/broken' in snapshot.services ? 'nginx -t: unknown directive "brokn"' : undefined,
    );
    bus.publish(snapshotOf(40));
    await waitFor('the first snapshot', current([good, bad], bus));

    const failed = bus.publish(snapshotOf(41, ['api', 'broken']));
    await waitFor('the failure', () => bus.agents().some((agent) => agent.error !== undefined));
    expect(bus.behind()).toEqual([
      expect.objectContaining({
        pod: 'shop/bad-1',
        generation: failed,
        error: 'nginx -t: unknown directive "brokn"',
      }),
    ]);
    await waitFor(
      'the good agent',
      () => bus.agents().find((agent) => agent.pod === 'shop/good-1')?.generation === failed,
    );

    bus.publish(snapshotOf(42));
    await waitFor('the repair', () => bus.behind().length === 0 && current([good, bad], bus)());
    expect(bus.agents().every((agent) => agent.error === undefined)).toBe(true);
  });

  it('forgets the sidecars of pods that are gone, which would stay behind for good', async () => {
    const { bus } = await startController();
    const kept = await startAgent('shop/kept-1');
    const gone = await startAgent('shop/gone-1');
    bus.publish(snapshotOf(50));
    await waitFor('both agents', current([kept, gone], bus));
    await gone.bus.close();
    bus.publish(snapshotOf(51));
    await waitFor('the kept agent', current([kept], bus));
    expect(bus.behind().map((agent) => agent.pod)).toEqual(['shop/gone-1']);
    bus.retain(new Set(['shop/kept-1']));
    expect(bus.agents().map((agent) => agent.pod)).toEqual(['shop/kept-1']);
    expect(bus.behind()).toEqual([]);
  });

  it('ignores malformed messages on both sides and keeps working', async () => {
    const { nc, bus } = await startController();
    const agent = await startAgent('shop/a-1');
    bus.publish(snapshotOf(50));
    await waitFor('the first snapshot', current([agent], bus));
    const seen = logLines.length;

    nc.publish(
      'nginx.nsm.agent.config',
      new TextEncoder().encode('{"kind":"delta","generation":"soon"}'),
    );
    agent.nc.publish(
      agentSubscriptionSubject(testIdentityOf(agent.pod)),
      new TextEncoder().encode('not json'),
    );
    await nc.flush();
    await agent.nc.flush();
    const next = bus.publish(snapshotOf(51));
    await waitFor('the next generation', current([agent], bus));
    expect(agent.applied.at(-1)).toBe(next);

    const warnings = logLines
      .slice(seen)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: 'ignored a malformed bus message',
        component: 'agent-bus',
        reason: 'field "generation" is "soon": expected an integer >= 0',
      }),
    );
    expect(warnings).toContainEqual(
      expect.objectContaining({
        msg: "ignored an agent's message: malformed",
        component: 'controller-bus',
        reason: 'not JSON: not json',
      }),
    );
  });
});

describe('a hostile agent', () => {
  const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
  /** Errors the server sent this connection (permission violations arrive this way). */
  const serverErrors = (nc: NatsConnection): string[] => {
    const errors: string[] = [];
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === Events.Error) errors.push(JSON.stringify(status.data));
      }
    })();
    return errors;
  };
  const refusals = (from: number, reason: string): number =>
    logLines.slice(from).filter((line) => line.includes(`ignored an agent's message: ${reason}`))
      .length;

  it("cannot speak on another identity's subject, nor read other inboxes or acks", async () => {
    const { bus } = await startController();
    const victim = await startAgent('shop/victim-1');
    const generation = bus.publish(snapshotOf(60));
    await waitFor('the victim on the first generation', current([victim], bus));
    const mallory = await startAgent('shop/mallory-1');
    const errors = serverErrors(mallory.nc);
    // An ack for the victim, on the victim's subject: NATS refuses to carry it.
    mallory.nc.publish(
      agentSubscriptionSubject(testIdentityOf(victim.pod)),
      encode({ kind: 'ack', pod: victim.pod, generation, error: 'forged' }),
    );
    mallory.nc.subscribe('_INBOX.>');
    mallory.nc.subscribe('nginx.nsm.agent.subscription.>');
    await waitFor('three permission violations', () => errors.length >= 3);
    const user = 'User "spiffe://example.org/ns/shop/sa/mallory-1"';
    expect(nats.log()).toContain(
      `Publish Violation - ${user}, Subject "nginx.nsm.agent.subscription.shop.victim-1"`,
    );
    expect(nats.log()).toContain(`Subscription Violation - ${user}, Subject "_INBOX.>"`);
    expect(nats.log()).toContain(
      `Subscription Violation - ${user}, Subject "nginx.nsm.agent.subscription.>"`,
    );
    expect(bus.agents().find((agent) => agent.pod === victim.pod)?.error).toBeUndefined();
  });

  it('cannot speak for a pod of another namespace or account from its own subject', async () => {
    const { bus } = await startController();
    const victim = await startAgent('shop/victim-1');
    const generation = bus.publish(snapshotOf(61));
    await waitFor('the victim on the first generation', current([victim], bus));
    const mallory = await startAgent('shop/mallory-1');
    const seen = logLines.length;
    const own = agentSubscriptionSubject(testIdentityOf(mallory.pod));
    for (const pod of ['shop/victim-1', 'other/victim-1']) {
      mallory.nc.publish(own, encode({ kind: 'ack', pod, generation, error: 'forged' }));
    }
    await mallory.nc.flush();
    await waitFor(
      'both refusals',
      () =>
        refusals(seen, 'a pod of another') >= 1 &&
        refusals(seen, 'a pod of another namespace') >= 1,
    );
    expect(bus.agents().find((agent) => agent.pod === victim.pod)?.error).toBeUndefined();
    expect(bus.agents().map((agent) => agent.pod)).not.toContain('other/victim-1');
  });

  it('cannot move the generation out of reach, nor ack one never issued', async () => {
    const { bus } = await startController();
    const agent = await startAgent('shop/a-1');
    bus.publish(snapshotOf(62));
    await waitFor('the first snapshot', current([agent], bus));
    const mallory = await startAgent('shop/mallory-1');
    const before = bus.generation();
    const own = agentSubscriptionSubject(testIdentityOf(mallory.pod));
    await expect(
      mallory.nc.request(
        own,
        encode({ kind: 'subscribe', pod: mallory.pod, version: 'x', generation: 2 ** 53 - 1 }),
        { timeout: 1_000 },
      ),
    ).rejects.toThrow();
    mallory.nc.publish(own, encode({ kind: 'ack', pod: mallory.pod, generation: before + 10 }));
    await mallory.nc.flush();
    await waitFor('the refused ack', () =>
      logLines.some((line) => line.includes('an ack of a generation not issued')),
    );
    expect(bus.generation()).toBe(before);
    // Nor a little past what any controller can have issued by now.
    await expect(
      mallory.nc.request(
        own,
        encode({
          kind: 'subscribe',
          pod: mallory.pod,
          version: 'x',
          generation: Date.now() + 11 * 60_000,
        }),
        { timeout: 1_000 },
      ),
    ).rejects.toThrow();
    expect(bus.generation()).toBe(before);
    // The mesh still moves on: the next change reaches the honest agent.
    const next = bus.publish(snapshotOf(63));
    expect(next).toBeGreaterThan(before);
    expect(next).toBeLessThan(Date.now() + 60_000);
    await waitFor('the next generation', current([agent], bus));
  });

  it('gets no answer on a reply subject outside its inbox', async () => {
    const { bus } = await startController();
    const agent = await startAgent('shop/a-1');
    bus.publish(snapshotOf(64));
    await waitFor('the first snapshot', current([agent], bus));
    const mallory = await startAgent('shop/mallory-1');
    const seen = logLines.length;
    mallory.nc.publish(
      agentSubscriptionSubject(testIdentityOf(mallory.pod)),
      encode({ kind: 'subscribe', pod: mallory.pod, version: 'x' }),
      { reply: 'nginx.nsm.agent.config' },
    );
    await mallory.nc.flush();
    await waitFor('the refusal', () => refusals(seen, 'a reply subject outside') >= 1);
    // Nothing reached the agents' config subject: no agent logged a malformed message.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(logLines.slice(seen).join('\n')).not.toContain('ignored a malformed bus message');
  });

  it('keeps the table of agents to pods the controller knows, whatever it sends', async () => {
    const known = new Set(['shop/a-1']);
    const nc = await controllerConnection();
    const bus = await startControllerBus(nc, {
      logger,
      now: Date.now,
      version: '2.0.0',
      accountOf: (pod) => (known.has(pod) || pod === 'shop/mallory-1' ? pod : undefined),
    });
    cleanups.push(() => bus.close());
    const agent = await startAgent('shop/a-1');
    const generation = bus.publish(snapshotOf(65));
    await waitFor('the first snapshot', current([agent], bus));
    const mallory = await startAgent('shop/mallory-1');
    // Its own agent acks first: the ack that ends the flood must be the last word.
    await waitFor('the agents on the first snapshot', current([agent, mallory], bus));
    const own = agentSubscriptionSubject(testIdentityOf(mallory.pod));
    const started = Date.now();
    for (let index = 0; index < 20_000; index += 1) {
      mallory.nc.publish(own, encode({ kind: 'ack', pod: `shop/fake-${index}`, generation }));
    }
    // An ack of its own pod last: NATS keeps one publisher's order, so once the controller has
    // it, it has seen every fake one.
    mallory.nc.publish(own, encode({ kind: 'ack', pod: mallory.pod, generation, error: 'last' }));
    await mallory.nc.flush();
    await waitFor(
      'the last ack',
      () => bus.agents().some((each) => each.pod === mallory.pod && each.error === 'last'),
      30_000,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(bus.agents().map((each) => each.pod)).toEqual(['shop/a-1', 'shop/mallory-1']);
  });
});

describe('connectBus', () => {
  it('is refused by NATS with a certificate whose SPIFFE ID is no user', async () => {
    await expect(
      connectBus({
        servers: [nats.server],
        name: 'stranger',
        svidFile: await nats.issueSvidFile('stranger', 'elsewhere', 'nobody'),
        bundleFile: nats.bundleFile,
        expectedServerId: NATS_SERVER_ID,
        logger,
      }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  it('refuses a server that presents another SPIFFE ID', async () => {
    await expect(
      connectBus({
        servers: [nats.server],
        name: 'suspicious',
        svidFile: await nats.issueSvidFile('suspicious', 'shop', 'web'),
        bundleFile: nats.bundleFile,
        expectedServerId: 'spiffe://example.org/ns/nginx-mesh/sa/impostor',
        logger,
      }),
    ).rejects.toThrow();
  });

  it('presents the renewed SVID when it reconnects', async () => {
    const svidFile = await nats.issueSvidFile('renewed', 'shop', 'web', 2_500);
    const nc = await connectBus({
      servers: [nats.server],
      name: 'renewed',
      svidFile,
      bundleFile: nats.bundleFile,
      expectedServerId: NATS_SERVER_ID,
      logger,
    });
    cleanups.push(() => nc.close());
    await nats.issueSvidFile('renewed', 'shop', 'web');
    // The first SVID expires: only the renewed one can get back in.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await nats.kill();
    const reconnected = waitForStatus(nc, Events.Reconnect);
    await nats.start();
    await reconnected;
    await expect(nc.flush()).resolves.toBeUndefined();
  });
});

describe('startBusLink', () => {
  const controllerLink = async (onConnection: (nc: NatsConnection) => void) => {
    const link = startBusLink({
      ...(await controllerDial(nats, logger)),
      onConnection,
      firstRetryMs: 100,
      lastRetryMs: 400,
    });
    cleanups.push(() => link.close());
    return link;
  };

  it('dials NATS that is down at start until it answers, saying what it waits for', async () => {
    await nats.kill();
    let started = false;
    try {
      const connections: NatsConnection[] = [];
      const link = await controllerLink((nc) => connections.push(nc));
      await waitFor('a refused dial', () =>
        logLines.some((line) => line.includes('cannot connect to NATS; retrying')),
      );
      const waiting = link.readiness();
      expect(waiting.ready).toBe(false);
      expect(waiting.ready ? '' : waiting.reason).toContain(`connecting to NATS at ${nats.server}`);
      expect(link.connection()).toBeUndefined();
      await nats.start();
      started = true;
      await waitFor('the first connection', () => connections.length === 1, 15_000);
      expect(link.readiness()).toEqual({ ready: true });
      expect(link.connection()).toBe(connections[0]);
      // The connection works: the server answers a round trip on it.
      await expect((connections[0] as NatsConnection).flush()).resolves.toBeUndefined();
    } finally {
      if (!started) await nats.start();
    }
  });

  it('says it is reconnecting while NATS is away, and is ready again once it is back', async () => {
    const connections: NatsConnection[] = [];
    const link = await controllerLink((nc) => connections.push(nc));
    await waitFor('the first connection', () => connections.length === 1);
    const nc = connections[0] as NatsConnection;
    const disconnected = waitForStatus(nc, Events.Disconnect);
    await nats.kill();
    try {
      await disconnected;
      const away = link.readiness();
      expect(away.ready ? '' : away.reason).toContain('reconnecting to NATS');
    } finally {
      await nats.start();
    }
    await waitFor('the reconnect', () => link.readiness().ready, 15_000);
    // nats.js reconnected the same connection: no new one was needed.
    expect(connections).toHaveLength(1);
  });

  it('dials anew when a connection is given up for good', async () => {
    const connections: NatsConnection[] = [];
    const link = await controllerLink((nc) => connections.push(nc));
    await waitFor('the first connection', () => connections.length === 1);
    await (connections[0] as NatsConnection).close();
    await waitFor('a second connection', () => connections.length === 2, 15_000);
    expect(connections[1]).not.toBe(connections[0]);
    expect(connections[1]?.isClosed()).toBe(false);
    expect(link.readiness()).toEqual({ ready: true });
    expect(logLines.some((line) => line.includes('NATS connection given up; dialling anew'))).toBe(
      true,
    );
  });
});

/** Resolves on the first status of type; rejects after a bound. */
function waitForStatus(nc: NatsConnection, type: Events, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${type} within ${timeoutMs}ms`)),
      timeoutMs,
    );
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type !== type) continue;
        clearTimeout(timer);
        resolve();
        return;
      }
    })();
  });
}
