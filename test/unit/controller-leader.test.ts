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
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    annotations?: Record<string, string>;
  };
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
    /** Writes (and reads) get no answer until answerHung(). */
    hangWrites: false,
    hangReads: false,
    hung: [] as (() => void)[],
    /** Answers every request held back so far, as the API server would have. */
    answerHung(): void {
      for (const release of server.hung.splice(0)) release();
    },
    /** Another writer changes the Lease. */
    write(spec: LeaseJson['spec'], annotations?: Record<string, string>): void {
      version += 1;
      server.lease = {
        metadata: {
          name: 'nginx-mesh-controller',
          namespace: 'nginx-mesh',
          resourceVersion: `${version}`,
          ...(annotations === undefined ? {} : { annotations }),
        },
        spec,
      };
    },
  };
  const answerNow = (request: SeenRequest): RawResponse => {
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
    server.write(body.spec, body.metadata.annotations);
    return okJson(server.lease);
  };
  const answer = (request: SeenRequest): RawResponse | Promise<RawResponse> => {
    const hang = request.method === 'GET' ? server.hangReads : server.hangWrites;
    if (!hang) return answerNow(request);
    return new Promise<RawResponse>((resolve) =>
      server.hung.push(() => resolve(answerNow(request))),
    );
  };
  return { server, fake: kubeScripted(answer) };
}

/** Lets every promise chain that waits on no timer run to its end. */
async function settle(): Promise<void> {
  for (let round = 0; round < 5; round += 1) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** A clock that moves only when the test advances it; due sleeps end in order of due time. */
function manualClock() {
  let now = Date.parse('2026-01-02T03:04:05.000Z');
  let sequence = 0;
  const sleepers: { due: number; order: number; wake: () => void }[] = [];
  const clock: Clock = {
    now: () => new Date(now),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted === true) {
          reject(signal.reason as Error);
          return;
        }
        const sleeper = { due: now + ms, order: (sequence += 1), wake: resolve };
        sleepers.push(sleeper);
        signal?.addEventListener(
          'abort',
          () => {
            sleepers.splice(sleepers.indexOf(sleeper), 1);
            reject(signal.reason as Error);
          },
          { once: true },
        );
      }),
  };
  return {
    clock,
    settle,
    /** Moves time on by ms, ending each sleep due meanwhile and letting what it starts run. */
    async advance(ms: number): Promise<void> {
      const target = now + ms;
      await settle();
      for (let woken = 0; woken < 1000; woken += 1) {
        const next = sleepers
          .filter((sleeper) => sleeper.due <= target)
          .sort((a, b) => a.due - b.due || a.order - b.order)[0];
        if (next === undefined) break;
        sleepers.splice(sleepers.indexOf(next), 1);
        now = next.due;
        next.wake();
        await settle();
      }
      now = target;
      await settle();
    },
  };
}

const quietLogger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});

function candidate(
  fake: ReturnType<typeof kubeScripted>,
  clock: Clock,
  identity = 'ctrl-a',
  generation?: () => number,
) {
  const calls: string[] = [];
  const elector: LeaderElector = startLeaderElection(new KubeClient(fake.connection), {
    namespace: 'nginx-mesh',
    identity,
    clock,
    ...(generation === undefined ? {} : { generation }),
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
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
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

  it('records its generation in the Lease at every renewal, and a successor reads it', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    let generation = 0;
    const first = candidate(fake, time.clock, 'ctrl-a', () => generation);
    await time.settle();
    expect(server.lease?.metadata.annotations).toBeUndefined();
    generation = 1_767_000_000_000;
    await time.advance(5000);
    expect(server.lease?.metadata.annotations).toEqual({
      'nsm.nginx.com/generation': '1767000000000',
    });
    await first.elector.stop();
    // A successor whose own generation is lower (its clock went back) keeps the record.
    const second = candidate(fake, time.clock, 'ctrl-b', () => 5);
    await time.settle();
    expect(second.elector.isLeader()).toBe(true);
    expect(second.elector.recordedGeneration()).toBe(1_767_000_000_000);
    await time.advance(5000);
    expect(server.lease?.metadata.annotations?.['nsm.nginx.com/generation']).toBe('1767000000000');
    await second.elector.stop();
  });

  it('renews every 5 s with the version it read', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const { elector } = candidate(fake, time.clock);
    await time.settle();
    await time.advance(5000);
    await time.advance(5000);
    expect(server.lease?.spec.renewTime).toBe('2026-01-02T03:04:15.000000Z');
    const puts = fake.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect((puts[1]?.body as LeaseJson).metadata.resourceVersion).toBe('2');
    expect(elector.isLeader()).toBe(true);
    await elector.stop();
  });

  it('reads again after 409 Conflict and keeps leading when the Lease is still its own', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    server.conflictNextWrite = true;
    await time.advance(5000);
    const methods = fake.requests.map((r) => r.method);
    expect(methods.slice(-4)).toEqual(['GET', 'PUT', 'GET', 'PUT']);
    expect(elector.isLeader()).toBe(true);
    expect(calls).toEqual(['started']);
    await elector.stop();
  });

  it('stops leading when another candidate holds the Lease it meant to renew', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 1 });
    await time.advance(5000);
    expect(elector.isLeader()).toBe(false);
    expect(elector.leaseTransitions()).toBeUndefined();
    expect(calls).toEqual(['started', 'stopped']);
    await elector.stop();
    expect(server.lease?.spec.holderIdentity).toBe('ctrl-b');
  });

  it('takes over a Lease whose holder stopped renewing once it is 15 s unchanged', async () => {
    const { server, fake } = leaseServer();
    server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 4 });
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    expect(elector.isLeader()).toBe(false);
    await time.advance(5000); // 5 s unchanged
    await time.advance(5000); // 10 s
    expect(elector.isLeader()).toBe(false);
    await time.advance(5000); // 15 s: expired
    expect(elector.isLeader()).toBe(true);
    expect(elector.leaseTransitions()).toBe(5);
    expect(calls).toEqual(['started']);
    expect(server.lease?.spec).toMatchObject({ holderIdentity: 'ctrl-a', leaseTransitions: 5 });
    await elector.stop();
  });

  it('does not take a Lease its holder keeps renewing', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const renew = () =>
      server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 0 });
    renew();
    const { elector } = candidate(fake, time.clock);
    await time.settle();
    for (let i = 0; i < 6; i += 1) {
      renew();
      await time.advance(5000);
    }
    expect(elector.isLeader()).toBe(false);
    expect(fake.requests.some((r) => r.method === 'PUT')).toBe(false);
    await elector.stop();
  });

  it('tells a holder that renews from one that stopped, only once it has seen a renewal', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const renew = () =>
      server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 0 });
    renew();
    const { elector } = candidate(fake, time.clock);
    await time.settle();
    // One read cannot tell whether ctrl-b is alive.
    expect(elector.observed()).toEqual({ holder: 'ctrl-b', unchangedMs: 0, changesSeen: 0 });
    renew();
    await time.advance(5000);
    expect(elector.observed()).toMatchObject({ holder: 'ctrl-b', changesSeen: 1 });
    // ctrl-b is gone: its record stops changing while this candidate keeps reading it.
    await time.advance(5000);
    await time.advance(5000);
    expect(elector.observed()?.unchangedMs).toBeGreaterThanOrEqual(10_000);
    expect(elector.isLeader()).toBe(false);
    await elector.stop();
  });

  it('steps down when it cannot renew for 10 s, before its Lease expires', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    server.failWrites = true;
    await time.advance(5000); // 5 s without a renewal
    await time.advance(4999);
    expect(elector.isLeader()).toBe(true);
    await time.advance(1); // 10 s: the renew deadline
    expect(elector.isLeader()).toBe(false);
    expect(calls).toEqual(['started', 'stopped']);
    await elector.stop();
  });

  it('steps down at the renew deadline while a renewal hangs, and ignores its late answer', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    server.hangWrites = true;
    await time.advance(5000); // the renewal is sent and never answered
    expect(server.hung).toHaveLength(1);
    await time.advance(4999);
    expect(elector.isLeader()).toBe(true);
    await time.advance(1); // 10 s after the last successful renewal
    expect(elector.isLeader()).toBe(false);
    expect(calls).toEqual(['started', 'stopped']);
    server.hangWrites = false;
    server.answerHung(); // the renewal succeeds after all, but too late
    await time.settle();
    expect(elector.isLeader()).toBe(false);
    expect(calls).toEqual(['started', 'stopped']);
    await time.advance(5000); // the next attempt reads the Lease and takes it again
    expect(elector.isLeader()).toBe(true);
    expect(calls).toEqual(['started', 'stopped', 'started']);
    await elector.stop();
  });

  it('gives up a hanging request of a candidate and tries again', async () => {
    const { server, fake } = leaseServer();
    server.write({ holderIdentity: 'ctrl-b', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const time = manualClock();
    server.hangReads = true;
    const { elector } = candidate(fake, time.clock);
    await time.advance(10_000); // the read is abandoned at 10 s
    server.hangReads = false;
    await time.advance(5000); // retried 5 s later: ctrl-b's record has not changed since
    await time.advance(15_000);
    expect(elector.isLeader()).toBe(true);
    expect(server.lease?.spec.holderIdentity).toBe('ctrl-a');
    await elector.stop();
  });

  it('stops at once while a request hangs', async () => {
    const { server, fake } = leaseServer();
    const time = manualClock();
    server.hangReads = true;
    const { elector, calls } = candidate(fake, time.clock);
    await time.settle();
    await elector.stop();
    expect(elector.isLeader()).toBe(false);
    expect(calls).toEqual([]);
  });

  it('clears the holder when it stops, so a successor takes over at once', async () => {
    const { server, fake } = leaseServer();
    const timeA = manualClock();
    const a = candidate(fake, timeA.clock, 'ctrl-a');
    await timeA.settle();
    const timeB = manualClock();
    const b = candidate(fake, timeB.clock, 'ctrl-b');
    await timeB.settle();
    expect(b.elector.isLeader()).toBe(false);
    await a.elector.stop();
    expect(a.calls).toEqual(['started', 'stopped']);
    expect(server.lease?.spec.holderIdentity).toBe('');
    await timeB.advance(5000);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.elector.leaseTransitions()).toBe(1);
    await b.elector.stop();
  });
});
