import type { Clock } from '../../src/runtime/clock';
import type { RawResponse } from '../../src/runtime/kube/access';
import { KubeClient } from '../../src/runtime/kube/client';
import type { LeaderElector } from '../../src/runtime/controller/leader';
import { microTime, podIdentity, startLeaderElection } from '../../src/runtime/controller/leader';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { SeenRequest } from '../support/fake-kube';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/nginx-mesh/leases';
const LEASE = `${LEASES}/nginx-mesh-controller`;

interface LeaseJson {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** The Lease API with resourceVersion checks; `conflictNextWrite` answers one write with 409. */
function leaseServer() {
  let version = 0;
  const server = {
    lease: undefined as LeaseJson | undefined,
    conflictNextWrite: false,
    failWrites: false,
    /** Another writer changes the Lease. */
    write(spec: LeaseJson['spec']): void {
      version += 1;
      server.lease = {
        metadata: {
          name: 'nginx-mesh-controller',
          namespace: 'nginx-mesh',
          resourceVersion: `${version}`,
        },
        spec,
      };
    },
  };
  const answer = (request: SeenRequest): RawResponse => {
    const conflict = statusAnswer(409, 'Conflict', 'the object has been modified');
    if (request.method === 'GET') {
      return server.lease === undefined
        ? statusAnswer(404, 'NotFound', 'leases "nginx-mesh-controller" not found')
        : okJson(server.lease);
    }
    if (server.failWrites)
      return statusAnswer(500, 'InternalError', 'etcdserver: request timed out');
    if (server.conflictNextWrite) {
      server.conflictNextWrite = false;
      return conflict;
    }
    const body = request.body as LeaseJson;
    if (request.method === 'POST' && request.path === LEASES) {
      if (server.lease !== undefined) return conflict;
    } else if (request.method === 'PUT' && request.path === LEASE) {
      if (body.metadata.resourceVersion !== server.lease?.metadata.resourceVersion) return conflict;
    } else {
      throw new Error(`unexpected ${request.method} ${request.path}`);
    }
    server.write(body.spec);
    return okJson(server.lease);
  };
  return { server, fake: kubeScripted(answer) };
}

/** A clock that moves only when the candidate sleeps, and only when the test says so. */
function steppedClock() {
  let now = Date.parse('2026-01-02T03:04:05.000Z');
  let wake: (() => void) | undefined;
  let sleeping: (() => void) | undefined;
  let slept = new Promise<void>((resolve) => (sleeping = resolve));
  const clock: Clock = {
    now: () => new Date(now),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        wake = () => {
          now += ms;
          resolve();
        };
        signal?.addEventListener('abort', () => reject(signal.reason as Error));
        sleeping?.();
      }),
  };
  return {
    clock,
    /** Resolves once the candidate has finished its attempt and sleeps. */
    async asleep(): Promise<void> {
      await slept;
      slept = new Promise<void>((resolve) => (sleeping = resolve));
    },
    /** Ends the current sleep and waits for the next. */
    async step(): Promise<void> {
      const current = wake;
      wake = undefined;
      current?.();
      await this.asleep();
    },
    advance: (ms: number) => void (now += ms),
  };
}

const quietLogger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});

function candidate(fake: ReturnType<typeof kubeScripted>, clock: Clock, identity = 'ctrl-a') {
  const calls: string[] = [];
  const elector: LeaderElector = startLeaderElection(new KubeClient(fake.connection), {
    namespace: 'nginx-mesh',
    identity,
    clock,
    random: () => 0,
    logger: quietLogger,
    onStartedLeading: () => calls.push('started'),
    onStoppedLeading: () => calls.push('stopped'),
  });
  return { elector, calls };
}

describe('microTime', () => {
  it('writes microseconds, as the Lease API stores them', () => {
    expect(microTime(new Date('2026-01-02T03:04:05.123Z'))).toBe('2026-01-02T03:04:05.123000Z');
  });
});

describe('podIdentity', () => {
  it('is POD_NAME when set, else the host name', () => {
    expect(podIdentity({ POD_NAME: 'nginx-mesh-controller-7c9d-x2' }, 'host')).toBe(
      'nginx-mesh-controller-7c9d-x2',
    );
    expect(podIdentity({ POD_NAME: ' ' }, 'nginx-mesh-controller-7c9d-x3')).toBe(
      'nginx-mesh-controller-7c9d-x3',
    );
    expect(podIdentity({}, 'h')).toBe('h');
  });
});

describe('startLeaderElection', () => {
  it('creates a missing Lease and leads with 0 transitions', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.asleep();
    expect(elector.isLeader()).toBe(true);
    expect(elector.leaseTransitions()).toBe(0);
    expect(calls).toEqual(['started']);
    expect(server.lease?.spec).toMatchObject({
      holderIdentity: 'ctrl-a',
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
      renewTime: '2026-01-02T03:04:05.000000Z',
    });
    await elector.stop();
  });

  it('renews every 5 s with the version it read', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const { elector } = candidate(fake, time.clock);
    await time.asleep();
    await time.step();
    await time.step();
    expect(server.lease?.spec.renewTime).toBe('2026-01-02T03:04:15.000000Z');
    const puts = fake.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect((puts[1]?.body as LeaseJson).metadata.resourceVersion).toBe('2');
    expect(elector.isLeader()).toBe(true);
    await elector.stop();
  });

  it('reads again after 409 Conflict and keeps leading when the Lease is still its own', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.asleep();
    server.conflictNextWrite = true;
    await time.step();
    const methods = fake.requests.map((r) => r.method);
    expect(methods.slice(-4)).toEqual(['GET', 'PUT', 'GET', 'PUT']);
    expect(elector.isLeader()).toBe(true);
    expect(calls).toEqual(['started']);
    await elector.stop();
  });

  it('stops leading when another candidate holds the Lease it meant to renew', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.asleep();
    server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 1 });
    await time.step();
    expect(elector.isLeader()).toBe(false);
    expect(elector.leaseTransitions()).toBeUndefined();
    expect(calls).toEqual(['started', 'stopped']);
    await elector.stop();
    expect(server.lease?.spec.holderIdentity).toBe('ctrl-b');
  });

  it('takes over a Lease whose holder stopped renewing once it is 15 s unchanged', async () => {
    const { server, fake } = leaseServer();
    server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 4 });
    const time = steppedClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.asleep();
    expect(elector.isLeader()).toBe(false);
    await time.step(); // 5 s unchanged
    await time.step(); // 10 s
    expect(elector.isLeader()).toBe(false);
    await time.step(); // 15 s: expired
    expect(elector.isLeader()).toBe(true);
    expect(elector.leaseTransitions()).toBe(5);
    expect(calls).toEqual(['started']);
    expect(server.lease?.spec).toMatchObject({ holderIdentity: 'ctrl-a', leaseTransitions: 5 });
    await elector.stop();
  });

  it('does not take a Lease its holder keeps renewing', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const renew = () =>
      server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 0 });
    renew();
    const { elector } = candidate(fake, time.clock);
    await time.asleep();
    for (let i = 0; i < 6; i += 1) {
      renew();
      await time.step();
    }
    expect(elector.isLeader()).toBe(false);
    expect(fake.requests.some((r) => r.method === 'PUT')).toBe(false);
    await elector.stop();
  });

  it('steps down when it cannot renew for 10 s, before its Lease expires', async () => {
    const { server, fake } = leaseServer();
    const time = steppedClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.asleep();
    server.failWrites = true;
    await time.step(); // 5 s without a renewal
    await time.step(); // 10 s
    expect(elector.isLeader()).toBe(true);
    await time.step(); // 15 s
    expect(elector.isLeader()).toBe(false);
    expect(calls).toEqual(['started', 'stopped']);
    await elector.stop();
  });

  it('clears the holder when it stops, so a successor takes over at once', async () => {
    const { server, fake } = leaseServer();
    const timeA = steppedClock();
    const a = candidate(fake, timeA.clock, 'ctrl-a');
    await timeA.asleep();
    const timeB = steppedClock();
    const b = candidate(fake, timeB.clock, 'ctrl-b');
    await timeB.asleep();
    expect(b.elector.isLeader()).toBe(false);
    await a.elector.stop();
    expect(a.calls).toEqual(['started', 'stopped']);
    expect(server.lease?.spec.holderIdentity).toBe('');
    await timeB.step();
    expect(b.elector.isLeader()).toBe(true);
    expect(b.elector.leaseTransitions()).toBe(1);
    await b.elector.stop();
  });
});
