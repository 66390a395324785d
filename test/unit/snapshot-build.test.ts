import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState, KubeObject } from '../../src/manifests/snapshot/build';
import { buildPodIndex } from '../../src/manifests/snapshot/pods';
import type { SnapshotPod } from '../../src/manifests/snapshot/types';
import {
  circuitBreaker,
  endpointSlice,
  meshConfig,
  MESH_BASE,
  pod,
  rateLimit,
  routeGroup,
  service,
  SETTINGS,
  state,
  tcpRoute,
  trafficSplit,
  trafficTarget,
} from '../support/kube-objects';

/** The injected pods policies resolve to, by key in order (the mesh namespace is nginx-mesh). */
function podsOf(pods: readonly KubeObject[]): Record<string, SnapshotPod> {
  const index = buildPodIndex(pods, new Set(['kube-system', 'nginx-mesh']));
  return Object.fromEntries([...index.all()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

function build(parts: Partial<ClusterState>) {
  return buildSnapshot(state(parts), SETTINGS);
}

/** The problems as "<kind> <namespace>/<name> <reason>: <message>". */
function problemLines(parts: Partial<ClusterState>): string[] {
  return build(parts).problems.map(
    (problem) =>
      `${problem.kind} ${problem.namespace}/${problem.name} ${problem.reason}: ${problem.message}`,
  );
}

/** A small shop: web (3 pods, two injected), db (a StatefulSet), a client Deployment. */
function shop(): ClusterState {
  return state({
    services: [
      service('shop', 'web'),
      service('shop', 'web-v2'),
      service('shop', 'db', { ports: [{ name: 'postgres', port: 5432 }] }),
    ],
    endpointSlices: [
      endpointSlice('shop', 'web', [
        { address: '198.18.0.11', pod: 'web-1' },
        { address: '198.18.0.12', pod: 'web-2' },
        { address: '198.18.0.13', pod: 'web-legacy' },
      ]),
      endpointSlice('shop', 'db', [{ address: '198.18.0.21', pod: 'db-0' }], {
        ports: [{ name: 'postgres', port: 5432 }],
      }),
    ],
    pods: [
      pod('shop', 'web-1', {
        ip: '198.18.0.11',
        serviceAccount: 'web',
        labels: { 'nsm.nginx.com/deployment': 'web' },
      }),
      pod('shop', 'web-2', {
        ip: '198.18.0.12',
        serviceAccount: 'web',
        labels: { 'nsm.nginx.com/deployment': 'web' },
      }),
      pod('shop', 'web-legacy', { ip: '198.18.0.13', injected: false }),
      pod('shop', 'db-0', {
        ip: '198.18.0.21',
        serviceAccount: 'db',
        labels: { 'nsm.nginx.com/statefulset': 'db' },
      }),
      pod('shop', 'client-7d9f-abc12', {
        ip: '198.18.0.31',
        serviceAccount: 'client',
        labels: { 'pod-template-hash': '7d9f' },
        ownerReferences: [{ kind: 'ReplicaSet', name: 'client-7d9f', controller: true }],
      }),
    ],
    httpRouteGroups: [
      routeGroup('shop', 'api', [
        { name: 'read', methods: ['get', 'HEAD'], pathRegex: '/api/.*' },
        { name: 'write', methods: ['post'], headers: { 'X-Tenant': 'a.*' } },
      ]),
    ],
    tcpRoutes: [tcpRoute('shop', 'any')],
  });
}

function withShop(parts: Partial<ClusterState>): Partial<ClusterState> {
  return { ...shop(), ...parts };
}

describe('buildSnapshot: services', () => {
  it('takes clusterIPs, else clusterIP, and none for a headless Service', () => {
    const { snapshot } = build({
      services: [
        service('a', 'dual', { clusterIPs: ['198.19.0.5', 'fd00::5'], clusterIP: '198.19.0.5' }),
        service('a', 'single', { clusterIP: '198.19.0.6' }),
        service('a', 'headless', { clusterIP: 'None', clusterIPs: ['None'] }),
      ],
    });
    expect(snapshot.services['a/dual']?.clusterIPs).toEqual(['198.19.0.5', 'fd00::5']);
    expect(snapshot.services['a/single']?.clusterIPs).toEqual(['198.19.0.6']);
    expect(snapshot.services['a/headless']?.clusterIPs).toEqual([]);
  });

  it('marks HTTP and HTTP/2 ports by appProtocol or name and keeps UDP and SCTP protocols', () => {
    const { snapshot } = build({
      services: [
        service('a', 's', {
          ports: [
            { name: 'web', port: 8000, appProtocol: 'http' },
            { name: 'h2', port: 8001, appProtocol: 'kubernetes.io/h2c' },
            { name: 'grpc-api', port: 8002 },
            { name: 'http-admin', port: 8003 },
            { name: 'grpc', port: 8004 },
            { name: 'http2', port: 8005 },
            { name: 'https', port: 443 },
            { name: 'dns', port: 53, protocol: 'UDP' },
            { name: 'http', port: 54, protocol: 'UDP' },
            { name: 'sig', port: 3868, protocol: 'SCTP' },
            { name: 'broken', port: 'eighty' },
            { name: 'too-big', port: 70_000 },
          ],
        }),
      ],
    });
    expect(
      snapshot.services['a/s']?.ports.map((p) => `${p.port}/${p.protocol} ${p.name} ${p.kind}`),
    ).toEqual([
      '53/UDP dns tcp',
      '54/UDP http tcp',
      '443/TCP https tcp',
      '3868/SCTP sig tcp',
      '8000/TCP web http',
      '8001/TCP h2 http2',
      '8002/TCP grpc-api http2',
      '8003/TCP http-admin http',
      '8004/TCP grpc http2',
      '8005/TCP http2 http2',
    ]);
  });

  it('takes the lb-method annotation as an open-source method, warning on least_time', () => {
    const annotation = 'config.nsm.nginx.com/lb-method';
    const outcome = build({
      services: [
        service('a', 'random', {}, { [annotation]: 'random two' }),
        service('a', 'fast', {}, { [annotation]: 'least_time last_byte' }),
        service('a', 'typo', {}, { [annotation]: 'fastest' }),
        service('a', 'plain'),
      ],
    });
    expect(outcome.snapshot.services['a/random']?.lbMethod).toBe('random two');
    expect(outcome.snapshot.services['a/fast']?.lbMethod).toBe('least_conn');
    expect(outcome.snapshot.services['a/typo']).not.toHaveProperty('lbMethod');
    expect(outcome.snapshot.services['a/plain']).not.toHaveProperty('lbMethod');
    expect(outcome.warnings).toEqual([
      'Service a/fast annotation config.nsm.nginx.com/lb-method "least_time last_byte": least_time is only available in NGINX Plus; using "least_conn"',
      expect.stringMatching(
        /^Service a\/typo: invalid annotation config.nsm.nginx.com\/lb-method "fastest": expected one of least_conn, .*round_robin; using the mesh-wide method$/,
      ),
    ]);
  });

  it('keeps ready endpoints once per address, sorted, with pod, identity and owner of injected pods', () => {
    const { snapshot } = build({
      ...shop(),
      endpointSlices: [
        endpointSlice(
          'shop',
          'web',
          [
            { address: '198.18.0.13', pod: 'web-legacy' },
            { address: '198.18.0.12', pod: 'web-2' },
            { address: '198.18.0.99', ready: false },
          ],
          { name: 'web-a' },
        ),
        endpointSlice(
          'shop',
          'web',
          [
            { address: '198.18.0.12', pod: 'web-1' },
            { address: '198.18.0.11', pod: 'web-1' },
            { address: '198.18.0.50' },
          ],
          { name: 'web-b', ports: [{ name: 'http', port: 9090 }, { port: 7000 }, { name: 'x' }] },
        ),
        endpointSlice('shop', 'web', [{ address: 'web.example.com' }], {
          name: 'web-c',
          addressType: 'FQDN',
        }),
      ],
    });
    expect(snapshot.services['shop/web']?.endpoints).toEqual([
      {
        address: '198.18.0.11',
        ports: { '': 7000, http: 9090 },
        pod: 'shop/web-1',
        identity: 'shop/web',
        owner: 'deployment/web',
      },
      {
        address: '198.18.0.12',
        ports: { http: 8080 },
        pod: 'shop/web-2',
        identity: 'shop/web',
        owner: 'deployment/web',
      },
      { address: '198.18.0.13', ports: { http: 8080 }, pod: 'shop/web-legacy' },
      { address: '198.18.0.50', ports: { '': 7000, http: 9090 } },
    ]);
  });

  it("takes a gateway's pod for no meshed endpoint: its listeners speak plaintext or their own TLS", () => {
    const { snapshot } = build({
      services: [service('edge', 'public-nginx-mesh')],
      endpointSlices: [
        endpointSlice('edge', 'public-nginx-mesh', [{ address: '198.18.0.61', pod: 'gw-1' }]),
      ],
      pods: [
        pod('edge', 'gw-1', {
          ip: '198.18.0.61',
          serviceAccount: 'public-nginx-mesh',
          labels: { 'nsm.nginx.com/gateway': 'public' },
        }),
      ],
    });
    expect(snapshot.services['edge/public-nginx-mesh']?.endpoints).toEqual([
      { address: '198.18.0.61', ports: { http: 8080 }, pod: 'edge/gw-1' },
    ]);
    expect(snapshot.peers['198.18.0.61']).toBeUndefined();
  });

  it('names the owner of an endpoint pod from its controller when injection left no label', () => {
    const { snapshot } = build({
      ...shop(),
      services: [service('shop', 'client'), service('shop', 'batch')],
      endpointSlices: [
        endpointSlice('shop', 'client', [{ address: '198.18.0.31', pod: 'client-7d9f-abc12' }]),
        endpointSlice('shop', 'batch', [{ address: '198.18.0.41', pod: 'batch-x' }]),
      ],
      pods: [
        ...(shop().pods ?? []),
        pod('shop', 'batch-x', {
          ip: '198.18.0.41',
          ownerReferences: [{ kind: 'Job', name: 'batch', controller: true }],
        }),
      ],
    });
    const owners = (key: string) =>
      (snapshot.services[key]?.endpoints ?? []).map((endpoint) => endpoint.owner);
    expect(owners('shop/client')).toEqual(['deployment/client']);
    expect(owners('shop/batch')).toEqual(['job/batch']);
  });

  it('follows a pod object that changed since the last build, and the objects that did not', () => {
    const state = shop();
    const first = build(state);
    const changed = {
      ...state,
      pods: (state.pods ?? []).map((each) =>
        each.metadata?.name === 'web-1' ? pod('shop', 'web-1', { serviceAccount: 'web-v2' }) : each,
      ),
    };
    const second = build(changed);
    const identities = (outcome: typeof first) =>
      (outcome.snapshot.services['shop/web']?.endpoints ?? []).map((each) => each.identity);
    expect(identities(first)).not.toContain('shop/web-v2');
    expect(identities(second)).toContain('shop/web-v2');
    // The same objects again give the same snapshot, byte for byte.
    expect(JSON.stringify(build(state))).toBe(JSON.stringify(first));
  });

  it('leaves out kube-system and the mesh namespace, and objects without a name', () => {
    const { snapshot, problems } = build({
      services: [
        service('kube-system', 'kube-dns'),
        service('nginx-mesh', 'nats-server'),
        service('shop', 'web'),
        { kind: 'Service', metadata: { namespace: 'shop' } },
      ],
      pods: [
        pod('kube-system', 'coredns', { ip: '198.18.9.1' }),
        pod('nginx-mesh', 'nats-0', { ip: '198.18.9.2' }),
      ],
      rateLimits: [rateLimit('nginx-mesh', 'rl', { destination: { kind: 'Pod', name: 'nats-0' } })],
    });
    expect(Object.keys(snapshot.services)).toEqual(['shop/web']);
    expect(
      podsOf([pod('kube-system', 'coredns', { ip: '198.18.9.1' }), pod('nginx-mesh', 'nats-0')]),
    ).toEqual({});
    expect(snapshot.rateLimits).toEqual({});
    expect(problems).toEqual([]);
  });
});

describe('buildPodIndex: the pods policies resolve to', () => {
  it('keeps injected, unfinished pods with their addresses, account and owner', () => {
    const pods = podsOf([
      ...(shop().pods ?? []),
      pod('shop', 'dual', {
        status: { podIP: '198.18.0.41', podIPs: [{ ip: 'fd00::41' }, { ip: '198.18.0.41' }] },
      }),
      pod('shop', 'pending', { status: { phase: 'Pending' } }),
      pod('shop', 'done', { ip: '198.18.0.42', status: { phase: 'Succeeded' } }),
      pod('shop', 'rs-only', {
        ownerReferences: [{ kind: 'ReplicaSet', name: 'rs-only-set', controller: true }],
      }),
      pod('shop', 'job-x', { ownerReferences: [{ kind: 'Job', name: 'job', controller: true }] }),
    ]);
    expect(Object.keys(pods)).toEqual([
      'shop/client-7d9f-abc12',
      'shop/db-0',
      'shop/dual',
      'shop/job-x',
      'shop/pending',
      'shop/rs-only',
      'shop/web-1',
      'shop/web-2',
    ]);
    expect(pods['shop/client-7d9f-abc12']).toEqual({
      namespace: 'shop',
      name: 'client-7d9f-abc12',
      serviceAccount: 'client',
      ips: ['198.18.0.31'],
      ownerKind: 'deployment',
      ownerName: 'client',
    });
    const owner = (key: string) => `${pods[key]?.ownerKind ?? '?'}/${pods[key]?.ownerName ?? '?'}`;
    expect(owner('shop/db-0')).toBe('statefulset/db');
    expect(owner('shop/rs-only')).toBe('replicaset/rs-only-set');
    expect(owner('shop/job-x')).toBe('job/job');
    expect(owner('shop/pending')).toBe('pod/pending');
    expect(pods['shop/dual']?.ips).toEqual(['198.18.0.41', 'fd00::41']);
    expect(pods['shop/pending']?.ips).toEqual([]);
    expect(pods['shop/pending']?.serviceAccount).toBe('default');
  });
});

describe('buildSnapshot: peers', () => {
  it('names every injected pod by address, with its owner, whether or not it backs a Service', () => {
    const { snapshot } = build(
      withShop({
        pods: [
          ...(shop().pods ?? []),
          pod('shop', 'report-28391', {
            ip: '198.18.0.51',
            labels: { 'nsm.nginx.com/job': 'report' },
            status: { phase: 'Succeeded', podIP: '198.18.0.51' },
          }),
          pod('shop', 'migrate-x1', {
            ip: '198.18.0.52',
            ownerReferences: [{ kind: 'Job', name: 'migrate', controller: true }],
          }),
          pod('shop', 'pending'),
          pod('shop', 'dual', {
            status: { podIP: '198.18.0.41', podIPs: [{ ip: '198.18.0.41' }, { ip: 'fd00::41' }] },
          }),
          pod('nginx-mesh', 'nginx-mesh-controller-1', { ip: '198.18.0.61' }),
          pod('tools', 'curl', { ip: '198.18.0.71', injected: false }),
        ],
      }),
    );
    expect(snapshot.peers).toEqual({
      '198.18.0.11': { pod: 'shop/web-1', owner: 'deployment/web' },
      '198.18.0.12': { pod: 'shop/web-2', owner: 'deployment/web' },
      '198.18.0.21': { pod: 'shop/db-0', owner: 'statefulset/db' },
      '198.18.0.31': { pod: 'shop/client-7d9f-abc12', owner: 'deployment/client' },
      '198.18.0.41': { pod: 'shop/dual', owner: 'pod/dual' },
      '198.18.0.52': { pod: 'shop/migrate-x1', owner: 'job/migrate' },
      'fd00::41': { pod: 'shop/dual', owner: 'pod/dual' },
    });
    expect(Object.keys(snapshot.peers)).toEqual(Object.keys(snapshot.peers).sort());
  });

  it('gives an address two pods claim to the first by key, whatever their order', () => {
    const pods = [
      pod('shop', 'old-0', { ip: '198.18.0.81' }),
      pod('shop', 'new-0', { ip: '198.18.0.81' }),
    ];
    expect(build({ pods }).snapshot.peers).toEqual({
      '198.18.0.81': { pod: 'shop/new-0', owner: 'pod/new-0' },
    });
    expect(build({ pods: [...pods].reverse() }).snapshot.peers).toEqual(
      build({ pods }).snapshot.peers,
    );
  });

  it('leaves the rest of the snapshot as it is when only a client pod starts', () => {
    const before = build(shop()).snapshot;
    const after = build(
      withShop({
        pods: [...(shop().pods ?? []), pod('shop', 'loadgen-5c8d-q2w3e', { ip: '198.18.0.91' })],
      }),
    ).snapshot;
    expect({ ...after, peers: {} }).toEqual({ ...before, peers: {} });
    expect(after.peers['198.18.0.91']).toEqual({
      pod: 'shop/loadgen-5c8d-q2w3e',
      owner: 'pod/loadgen-5c8d-q2w3e',
    });
  });
});

describe('buildSnapshot: peers across rebuilds', () => {
  /** A small deterministic generator (mulberry32), so a failure replays. */
  function random(seed: number): () => number {
    let state = seed;
    return () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /**
   * Peers as the documented rule gives them, written out plainly: every address of a running
   * injected pod, the first pod by key for an address two claim, keys in address order.
   */
  function expectedPeers(pods: readonly KubeObject[]): Record<string, unknown> {
    const claims = new Map<string, string[]>();
    for (const object of pods) {
      const { metadata, status } = object as {
        metadata: { namespace: string; name: string; labels: Record<string, string> };
        status: { phase?: string; podIP?: string };
      };
      if (status.phase === 'Succeeded' || status.phase === 'Failed') continue;
      if (status.podIP === undefined) continue;
      const key = `${metadata.namespace}/${metadata.name}`;
      claims.set(status.podIP, [...(claims.get(status.podIP) ?? []), key]);
    }
    const owners = new Map(
      pods.map((object) => {
        const { metadata } = object as {
          metadata: { namespace: string; name: string; labels: Record<string, string> };
        };
        const deployment = metadata.labels['nsm.nginx.com/deployment'];
        return [
          `${metadata.namespace}/${metadata.name}`,
          deployment === undefined ? `pod/${metadata.name}` : `deployment/${deployment}`,
        ];
      }),
    );
    return Object.fromEntries(
      [...claims.keys()].sort().map((ip) => {
        const winner = [...(claims.get(ip) ?? [])].sort()[0] ?? '';
        return [ip, { pod: winner, owner: owners.get(winner) }];
      }),
    );
  }

  /** The running injected pods of a Deployment, by key, as its owner label names it. */
  function expectedWorkload(
    pods: readonly KubeObject[],
    namespace: string,
    deployment: string,
  ): string[] {
    return pods
      .map(
        (object) =>
          object as {
            metadata: { namespace: string; name: string; labels: Record<string, string> };
            status: { phase?: string };
          },
      )
      .filter(
        ({ metadata, status }) =>
          metadata.namespace === namespace &&
          metadata.labels['nsm.nginx.com/deployment'] === deployment &&
          status.phase !== 'Succeeded' &&
          status.phase !== 'Failed',
      )
      .map(({ metadata }) => `${metadata.namespace}/${metadata.name}`)
      .sort();
  }

  it('patches the last build to what a fresh build gives, through starts, stops and moves', () => {
    const next = random(7);
    const pick = (n: number) => Math.floor(next() * n);
    // Few addresses for many pods, so that two pods often claim one (a stale status).
    const address = () => `198.18.${pick(2)}.${pick(40)}`;
    const newPod = (index: number) =>
      pod(`ns-${pick(3)}`, `p-${index}`, {
        ip: address(),
        labels: next() < 0.5 ? { 'nsm.nginx.com/deployment': `d-${pick(4)}` } : {},
      });
    let created = 0;
    let pods: KubeObject[] = Array.from({ length: 60 }, () => newPod((created += 1)));
    let previous = build({ pods }).snapshot.peers;
    let previousText = JSON.stringify(previous);
    for (let round = 0; round < 300; round += 1) {
      const change = pick(5);
      const at = pick(pods.length);
      if (change === 0) pods = [...pods, newPod((created += 1))];
      else if (change === 1 && pods.length > 1) pods = pods.filter((_, index) => index !== at);
      else if (change === 2) {
        // The same pod, updated to another address (or none, while it restarts).
        const moved = JSON.parse(JSON.stringify(pods[at])) as KubeObject & {
          status: Record<string, unknown>;
        };
        const ip = next() < 0.2 ? undefined : address();
        moved.status = { phase: 'Running', ...(ip === undefined ? {} : { podIP: ip }) };
        pods = pods.map((each, index) => (index === at ? moved : each));
      } else if (change === 3) {
        // The same pod, updated without a change that peers show (a new object, equal data).
        pods = pods.map((each, index) =>
          index === at ? (JSON.parse(JSON.stringify(each)) as KubeObject) : each,
        );
      } else if (change === 4) {
        const finished = JSON.parse(JSON.stringify(pods[at])) as KubeObject & {
          status: Record<string, unknown>;
        };
        finished.status = { ...finished.status, phase: 'Succeeded' };
        pods = pods.map((each, index) => (index === at ? finished : each));
      }
      // One index serves both, patched from the last round's: peers and the workload index.
      const index = buildPodIndex(pods, new Set());
      const peers = index.peers();
      const expected = expectedPeers(pods);
      for (const deployment of ['d-0', 'd-1', 'd-2', 'd-3']) {
        for (const namespace of ['ns-0', 'ns-1', 'ns-2']) {
          const named = index
            .ofWorkload(`${namespace}/deployment/${deployment}`)
            .map((each) => `${each.namespace}/${each.name}`)
            .sort();
          expect(named).toEqual(expectedWorkload(pods, namespace, deployment));
        }
      }
      expect(peers).toEqual(expected);
      expect(Object.keys(peers)).toEqual(Object.keys(expected));
      // A build of the same pods hands out the same record, and snapshots carry it.
      expect(build({ pods }).snapshot.peers).toBe(peers);
      // The record of an earlier build is never changed by a later one.
      expect(JSON.stringify(previous)).toBe(previousText);
      previous = peers;
      previousText = JSON.stringify(peers);
    }
  });

  it('hands out the same record when no pod changed what peers show, and never alters it', () => {
    const pods = Array.from({ length: 10 }, (_, index) =>
      pod('shop', `p-${index}`, { ip: `198.18.0.${10 + index}` }),
    );
    const first = build({ pods }).snapshot.peers;
    const copy = JSON.parse(JSON.stringify(first)) as unknown;
    // A new, equal object for one pod (a status update that peers do not show): the same record.
    const renewed = pods.map((each, index) =>
      index === 3 ? (JSON.parse(JSON.stringify(each)) as KubeObject) : each,
    );
    expect(build({ pods: renewed }).snapshot.peers).toBe(first);
    const moved = build({
      pods: renewed.map((each, index) =>
        index === 3 ? pod('shop', 'p-3', { ip: '198.18.0.99' }) : each,
      ),
    }).snapshot.peers;
    expect(moved).not.toBe(first);
    expect(Object.keys(moved)).toHaveLength(10);
    expect(Object.keys(moved)).toEqual(Object.keys(moved).sort());
    expect(moved['198.18.0.99']).toEqual({ pod: 'shop/p-3', owner: 'pod/p-3' });
    expect(moved['198.18.0.13']).toBeUndefined();
    expect(first).toEqual(copy);
  });
});

describe('buildSnapshot: HTTPRouteGroups', () => {
  it('upper-cases methods, lower-cases header names and reports unusable matches', () => {
    const outcome = build({
      ...shop(),
      httpRouteGroups: [
        routeGroup('shop', 'api', [
          { name: 'read', methods: ['get'], headers: { 'X-Tenant': 'a.*' } },
          { methods: ['GET'] },
          { name: 'bad-method', methods: [7] },
          { name: 'bad-header', headers: { 'X-A': 1 } },
        ]),
      ],
      trafficTargets: [
        trafficTarget('shop', 'tt', {
          destination: { kind: 'ServiceAccount', name: 'web' },
          rules: [{ kind: 'HTTPRouteGroup', name: 'api' }],
        }),
      ],
    });
    expect(outcome.snapshot.trafficTargets['shop/tt']?.httpMatches).toEqual([
      { name: 'read', methods: ['GET'], headers: { 'x-tenant': 'a.*' } },
    ]);
    expect(outcome.problems.map((p) => `${p.reason}: ${p.message}`)).toEqual([
      'InvalidMatch: spec.matches[1].name is missing',
      'InvalidMatch: spec.matches[2].methods[0] 7: expected an HTTP method (letters, "-", "_", at most 32) or "*"',
      'InvalidMatch: spec.matches[3].headers["X-A"]: expected a string',
    ]);
    expect(outcome.problems[0]).toMatchObject({
      apiVersion: 'specs.smi-spec.io/v1alpha3',
      kind: 'HTTPRouteGroup',
      namespace: 'shop',
      name: 'api',
    });
  });
});

describe('buildSnapshot: what matches hand to nginx', () => {
  const bad: [unknown, string][] = [
    [
      { pathRegex: '(' },
      'InvalidRegex: spec.matches[1].pathRegex "(": group is not closed at offset 0',
    ],
    [
      { pathRegex: ')|(.*' },
      'InvalidRegex: spec.matches[1].pathRegex ")|(.*": unmatched ")" at offset 0',
    ],
    [
      { pathRegex: '/a";\n}' },
      'InvalidRegex: spec.matches[1].pathRegex "/a\\";\\n}": character "\\"" is not allowed (no quotes, ";", control characters or non-ASCII; write \\xHH) at offset 2',
    ],
    [
      { headers: { 'x-a': '(?=x)' } },
      'InvalidRegex: spec.matches[1].headers["x-a"] "(?=x)": only (?: groups are supported (no lookaround, named groups or options) at offset 0',
    ],
    [
      { headers: { 'x a': '.*' } },
      'InvalidMatch: spec.matches[1].headers["x a"]: expected a header name (letters, digits and "-", at most 64)',
    ],
    [
      { headers: { '': '.*' } },
      'InvalidMatch: spec.matches[1].headers[""]: expected a header name (letters, digits and "-", at most 64)',
    ],
    [
      { headers: { 'X-A': 'a', 'x-a': 'b' } },
      'InvalidMatch: spec.matches[1].headers["x-a"]: header named twice (names ignore case)',
    ],
    [
      { headers: Object.fromEntries([...Array(17).keys()].map((i) => [`x-${i}`, 'a'])) },
      'InvalidMatch: spec.matches[1].headers: 17 headers, expected at most 16',
    ],
    [
      { methods: ['~GET'] },
      'InvalidMatch: spec.matches[1].methods[0] "~GET": expected an HTTP method (letters, "-", "_", at most 32) or "*"',
    ],
    [{ methods: ['default'] }, ''],
    [
      { methods: ['GET POST'] },
      'InvalidMatch: spec.matches[1].methods[0] "GET POST": expected an HTTP method (letters, "-", "_", at most 32) or "*"',
    ],
    [
      { pathRegex: 'a'.repeat(2000) },
      `InvalidRegex: spec.matches[1].pathRegex "${'a'.repeat(64)}…": longer than 1024 characters at offset 1024`,
    ],
  ];

  it.each(bad)('leaves out bad match %#, naming the field and the offset', (fields, message) => {
    const outcome = build({
      ...shop(),
      httpRouteGroups: [
        routeGroup('shop', 'api', [
          { name: 'ok', pathRegex: '/ok' },
          { name: 'bad', ...(fields as object) },
        ]),
      ],
      trafficTargets: [
        trafficTarget('shop', 'tt', {
          destination: { kind: 'ServiceAccount', name: 'web' },
          rules: [{ kind: 'HTTPRouteGroup', name: 'api' }],
        }),
      ],
    });
    const kept = outcome.snapshot.trafficTargets['shop/tt']?.httpMatches.map((m) => m.name);
    if (message === '') {
      // Upper-cased, "default" is a method like any other, never nginx's map keyword.
      expect(kept).toEqual(['ok', 'bad']);
      expect(outcome.problems).toEqual([]);
      return;
    }
    expect(kept).toEqual(['ok']);
    expect(outcome.problems.map((p) => `${p.reason}: ${p.message}`)).toEqual([message]);
    expect(outcome.problems[0]).toMatchObject({
      kind: 'HTTPRouteGroup',
      namespace: 'shop',
      name: 'api',
    });
  });

  it('accepts the documented subset in paths and header values', () => {
    const outcome = build({
      ...shop(),
      httpRouteGroups: [
        routeGroup('shop', 'api', [
          {
            name: 'all',
            methods: ['get', 'PROPFIND', 'version-control', '*'],
            pathRegex: '/api/(?:users|orders)/[0-9]{1,8}/?',
            headers: { 'X-Request-Id': '^[a-f0-9-]+$', 'user-agent': '.*Android.*' },
          },
        ]),
      ],
    });
    expect(outcome.problems).toEqual([]);
  });
});

describe('buildSnapshot: policies act only on their own namespace', () => {
  it('refuses a destination in another namespace, and keeps sources from anywhere', () => {
    const lines = problemLines(
      withShop({
        trafficTargets: [
          trafficTarget('shop', 'a-foreign', {
            destination: { kind: 'ServiceAccount', name: 'web', namespace: 'bank' },
            sources: [{ kind: 'ServiceAccount', name: 'client' }],
          }),
          trafficTarget('shop', 'b-own', {
            destination: { kind: 'ServiceAccount', name: 'web', namespace: 'shop' },
            sources: [{ kind: 'ServiceAccount', name: 'client', namespace: 'bank' }],
            rules: [{ kind: 'TCPRoute', name: 'any' }],
          }),
        ],
        rateLimits: [
          rateLimit('bank', 'rl', {
            destination: { kind: 'Deployment', name: 'web', namespace: 'shop' },
            rate: '1r/m',
          }),
        ],
        circuitBreakers: [
          circuitBreaker('bank', 'cb', {
            destination: { kind: 'Service', name: 'web', namespace: 'shop' },
            errors: 1,
            timeoutSeconds: 1,
            fallback: { service: 'bank/evil' },
          }),
        ],
      }),
    );
    expect(lines).toEqual([
      'CircuitBreaker bank/cb CrossNamespace: spec.destination.namespace "shop": a policy may only name its own namespace ("bank") here',
      'RateLimit bank/rl CrossNamespace: spec.destination.namespace "shop": a policy may only name its own namespace ("bank") here',
      'TrafficTarget shop/a-foreign CrossNamespace: spec.destination.namespace "bank": a policy may only name its own namespace ("shop") here',
    ]);
  });
});

describe('buildSnapshot: TrafficTargets', () => {
  it('resolves accounts, namespaces, named and whole route groups, and TCP routes', () => {
    const { snapshot, problems } = build(
      withShop({
        trafficTargets: [
          trafficTarget('shop', 'web-access', {
            destination: { kind: 'ServiceAccount', name: 'web', port: 8080 },
            sources: [
              { kind: 'ServiceAccount', name: 'client' },
              { kind: 'ServiceAccount', name: 'bot', namespace: 'ops' },
              { kind: 'ServiceAccount', name: 'client', namespace: 'shop' },
            ],
            rules: [
              { kind: 'HTTPRouteGroup', name: 'api', matches: ['write'] },
              { kind: 'HTTPRouteGroup', name: 'api' },
            ],
          }),
          trafficTarget('shop', 'db-access', {
            destination: { kind: 'ServiceAccount', name: 'db', namespace: 'shop' },
            sources: [{ kind: 'ServiceAccount', name: 'web' }],
            rules: [{ kind: 'TCPRoute', name: 'any' }],
          }),
        ],
      }),
    );
    expect(problems).toEqual([]);
    expect(snapshot.trafficTargets['shop/web-access']).toEqual({
      namespace: 'shop',
      name: 'web-access',
      destination: 'shop/web',
      port: 8080,
      sources: ['ops/bot', 'shop/client'],
      httpMatches: [
        { name: 'write', methods: ['POST'], headers: { 'x-tenant': 'a.*' } },
        { name: 'read', methods: ['GET', 'HEAD'], pathRegex: '/api/.*', headers: {} },
        { name: 'write', methods: ['POST'], headers: { 'x-tenant': 'a.*' } },
      ],
      tcp: false,
    });
    expect(snapshot.trafficTargets['shop/db-access']).toEqual({
      namespace: 'shop',
      name: 'db-access',
      destination: 'shop/db',
      sources: ['shop/web'],
      httpMatches: [],
      tcp: true,
    });
  });

  it('drops a target naming something that is not there, with a problem each', () => {
    const target = (name: string, spec: Record<string, unknown>) =>
      trafficTarget('shop', name, {
        destination: { kind: 'ServiceAccount', name: 'web' },
        ...spec,
      });
    const parts = withShop({
      trafficTargets: [
        target('a-kind', { destination: { kind: 'Deployment', name: 'web' } }),
        target('b-group', { rules: [{ kind: 'HTTPRouteGroup', name: 'nope' }] }),
        target('c-match', { rules: [{ kind: 'HTTPRouteGroup', name: 'api', matches: ['del'] }] }),
        target('d-tcp', { rules: [{ kind: 'TCPRoute', name: 'nope' }] }),
        target('e-source', { sources: [{ kind: 'Group', name: 'x' }] }),
        target('f-port', { destination: { kind: 'ServiceAccount', name: 'web', port: 0 } }),
        target('g-rule', { rules: [{ kind: 'UDPRoute', name: 'x' }] }),
        target('h-ok', {}),
      ],
    });
    expect(problemLines(parts)).toEqual([
      'TrafficTarget shop/a-kind UnsupportedKind: spec.destination.kind "Deployment": expected ServiceAccount',
      'TrafficTarget shop/b-group UnknownRouteGroup: spec.rules[0].name "nope": no HTTPRouteGroup shop/nope',
      'TrafficTarget shop/c-match UnknownMatch: spec.rules[0].matches[0] "del": no such match in HTTPRouteGroup shop/api',
      'TrafficTarget shop/d-tcp UnknownTCPRoute: spec.rules[0].name "nope": no TCPRoute shop/nope',
      'TrafficTarget shop/e-source UnsupportedKind: spec.sources[0].kind "Group": expected ServiceAccount',
      'TrafficTarget shop/f-port InvalidField: spec.destination.port 0: expected a port 1-65535',
      'TrafficTarget shop/g-rule UnsupportedKind: spec.rules[0].kind "UDPRoute": expected HTTPRouteGroup or TCPRoute',
    ]);
    expect(Object.keys(build(parts).snapshot.trafficTargets)).toEqual(['shop/h-ok']);
  });
});

describe('buildSnapshot: TrafficSplits', () => {
  it('resolves the root and backends, drops zero weights and takes all matches of a group', () => {
    const { snapshot } = build(
      withShop({
        trafficSplits: [
          trafficSplit('shop', 'canary', {
            service: 'web',
            backends: [
              { service: 'web-v2', weight: 10 },
              { service: 'web', weight: 90 },
              { service: 'db', weight: 0 },
            ],
            matches: [{ kind: 'HTTPRouteGroup', name: 'api' }],
          }),
        ],
      }),
    );
    expect(snapshot.trafficSplits['shop/canary']).toEqual({
      namespace: 'shop',
      name: 'canary',
      service: 'shop/web',
      backends: [
        { service: 'shop/web', weight: 90 },
        { service: 'shop/web-v2', weight: 10 },
      ],
      matches: [
        { name: 'read', methods: ['GET', 'HEAD'], pathRegex: '/api/.*', headers: {} },
        { name: 'write', methods: ['POST'], headers: { 'x-tenant': 'a.*' } },
      ],
    });
  });

  it('reports unknown Services, missing weight and unknown route groups', () => {
    const split = (name: string, spec: Record<string, unknown>) =>
      trafficSplit('shop', name, {
        service: 'web',
        backends: [{ service: 'web', weight: 1 }],
        ...spec,
      });
    expect(
      problemLines(
        withShop({
          trafficSplits: [
            split('a', { service: 'gone' }),
            split('b', {
              backends: [
                { service: 'web', weight: 1 },
                { service: 'web-v3', weight: 1 },
              ],
            }),
            split('c', { backends: [{ service: 'web', weight: 0 }] }),
            split('d', { matches: [{ kind: 'HTTPRouteGroup', name: 'nope' }] }),
            split('e', { backends: [{ service: 'web', weight: -1 }] }),
            split('f', { matches: [{ kind: 'TCPRoute', name: 'any' }] }),
            trafficSplit('shop', 'g', { service: 'web', backends: [{ service: 'db' }] }),
            split('h', { backends: [{ service: 'web', weight: 2 ** 53 - 1 }] }),
          ],
        }),
      ),
    ).toEqual([
      'TrafficSplit shop/a UnknownService: spec.service "gone": no Service shop/gone',
      'TrafficSplit shop/b UnknownService: spec.backends[1].service "web-v3": no Service shop/web-v3',
      'TrafficSplit shop/c NoWeight: spec.backends: no backend has a weight above 0',
      'TrafficSplit shop/d UnknownRouteGroup: spec.matches[0].name "nope": no HTTPRouteGroup shop/nope',
      'TrafficSplit shop/e InvalidField: spec.backends[0].weight -1: expected an integer from 0 to 1000000',
      'TrafficSplit shop/f UnsupportedKind: spec.matches[0].kind "TCPRoute": expected HTTPRouteGroup',
      'TrafficSplit shop/g InvalidField: spec.backends[0].weight undefined: expected an integer from 0 to 1000000',
      'TrafficSplit shop/h InvalidField: spec.backends[0].weight 9007199254740991: expected an integer from 0 to 1000000',
    ]);
  });
});

describe('buildSnapshot: RateLimits', () => {
  it('resolves workloads to injected pods and sources to their addresses', () => {
    const { snapshot, problems } = build(
      withShop({
        rateLimits: [
          rateLimit('shop', 'web-from-client', {
            destination: { kind: 'Deployment', name: 'web' },
            sources: [{ kind: 'Deployment', name: 'client', namespace: 'shop' }],
            name: '10rs',
            rate: '10r/s',
            burst: 5,
            delay: 'nodelay',
            rules: [{ kind: 'HTTPRouteGroup', name: 'api', matches: ['write'] }],
          }),
          rateLimit('shop', 'db-by-service', {
            destination: { kind: 'Service', name: 'db' },
            sources: [
              { kind: 'Pod', name: 'web-2' },
              { kind: 'StatefulSet', name: 'db' },
            ],
            rate: '30r/m',
            delay: 3,
          }),
          rateLimit('shop', 'web-default', {
            destination: { kind: 'Service', name: 'web' },
            rate: '100r/s',
          }),
        ],
      }),
    );
    expect(problems).toEqual([]);
    expect(snapshot.rateLimits['shop/web-from-client']).toEqual({
      namespace: 'shop',
      name: 'web-from-client',
      destinationPods: ['shop/web-1', 'shop/web-2'],
      sourceIps: ['198.18.0.31'],
      rate: 10,
      per: 's',
      burst: 5,
      delay: 'nodelay',
      matches: [{ name: 'write', methods: ['POST'], headers: { 'x-tenant': 'a.*' } }],
    });
    expect(snapshot.rateLimits['shop/db-by-service']).toMatchObject({
      destinationPods: ['shop/db-0'],
      sourceIps: ['198.18.0.12', '198.18.0.21'],
      rate: 30,
      per: 'm',
      burst: 0,
      delay: 3,
      matches: [],
    });
    expect(snapshot.rateLimits['shop/web-default']).toMatchObject({
      destinationPods: ['shop/web-1', 'shop/web-2'],
      sourceIps: [],
      delay: 0,
    });
  });

  it('reports bad rates, values, destinations, sources and conflicts', () => {
    const limit = (name: string, spec: Record<string, unknown>) =>
      rateLimit('shop', name, {
        destination: { kind: 'Deployment', name: 'web' },
        sources: [{ kind: 'Deployment', name: 'client' }],
        rate: '10r/s',
        ...spec,
      });
    expect(
      problemLines(
        withShop({
          rateLimits: [
            limit('a-zero', { rate: '0r/s' }),
            limit('b-hour', { rate: '10r/h' }),
            limit('c-missing', { rate: undefined }),
            limit('d-burst', { burst: 1.5 }),
            limit('e-delay', { delay: 'later' }),
            limit('f-dest', { destination: { kind: 'Deployment', name: 'gone' } }),
            limit('g-source', { sources: [{ kind: 'Pod', name: 'gone' }] }),
            limit('h-kind', { destination: { kind: 'Job', name: 'web' } }),
            limit('i-first', {}),
            limit('j-second', {
              sources: [
                { kind: 'Pod', name: 'db-0' },
                { kind: 'Deployment', name: 'client' },
              ],
            }),
            limit('k-rule', { rules: [{ kind: 'HTTPRouteGroup', name: 'api', matches: ['x'] }] }),
          ],
        }),
      ),
    ).toEqual([
      'RateLimit shop/a-zero InvalidRate: spec.rate "0r/s": expected <requests>r/s or <requests>r/m, above 0',
      'RateLimit shop/b-hour InvalidRate: spec.rate "10r/h": expected <requests>r/s or <requests>r/m, above 0',
      'RateLimit shop/c-missing InvalidRate: spec.rate undefined: expected <requests>r/s or <requests>r/m, above 0',
      'RateLimit shop/d-burst InvalidField: spec.burst 1.5: expected an integer >= 0',
      'RateLimit shop/e-delay InvalidField: spec.delay "later": expected an integer >= 0 or "nodelay"',
      'RateLimit shop/f-dest UnknownDestination: spec.destination "Deployment shop/gone": names no injected pod',
      'RateLimit shop/g-source UnknownSource: spec.sources "Pod shop/gone": name no injected pod with an address',
      'RateLimit shop/h-kind UnsupportedKind: spec.destination.kind "Job": expected Pod, Deployment, DaemonSet, StatefulSet or Service',
      'RateLimit shop/j-second Conflict: spec.sources/spec.destination "Deployment shop/client -> Deployment shop/web": already limited by RateLimit shop/i-first',
      'RateLimit shop/k-rule UnknownMatch: spec.rules[0].matches[0] "x": no such match in HTTPRouteGroup shop/api',
    ]);
  });

  it('lets a policy without sources conflict only with another without sources', () => {
    const limit = (name: string, sources?: unknown[]) =>
      rateLimit('shop', name, {
        destination: { kind: 'Service', name: 'web' },
        rate: '5r/s',
        ...(sources === undefined ? {} : { sources }),
      });
    const outcome = build(
      withShop({
        rateLimits: [
          limit('b-default'),
          limit('a-default'),
          limit('c-client', [{ kind: 'Deployment', name: 'client' }]),
        ],
      }),
    );
    expect(Object.keys(outcome.snapshot.rateLimits)).toEqual(['shop/a-default', 'shop/c-client']);
    expect(outcome.problems.map((p) => `${p.name} ${p.reason}`)).toEqual(['b-default Conflict']);
  });
});

describe('buildSnapshot: CircuitBreakers', () => {
  it('resolves the guarded Service and the fallback with its defaults', () => {
    const { snapshot, problems } = build({
      ...shop(),
      services: [...(shop().services ?? []), service('default', 'sorry')],
      circuitBreakers: [
        circuitBreaker('shop', 'web-cb', {
          destination: { kind: 'Service', name: 'web' },
          errors: 3,
          timeoutSeconds: 30,
          fallback: { service: 'sorry' },
        }),
        circuitBreaker('shop', 'db-cb', {
          destination: { kind: 'Service', name: 'db', namespace: 'shop' },
          errors: 0,
          timeoutSeconds: 5,
          fallback: { service: 'shop/web-v2', port: 8080 },
        }),
        circuitBreaker('shop', 'plain', {
          destination: { kind: 'Service', name: 'web-v2' },
          errors: 1,
          timeoutSeconds: 1,
        }),
      ],
    });
    expect(problems).toEqual([]);
    expect(snapshot.circuitBreakers).toEqual({
      'shop/db-cb': {
        namespace: 'shop',
        name: 'db-cb',
        service: 'shop/db',
        errors: 0,
        timeoutSeconds: 5,
        fallback: { service: 'shop/web-v2', port: 8080 },
      },
      'shop/plain': {
        namespace: 'shop',
        name: 'plain',
        service: 'shop/web-v2',
        errors: 1,
        timeoutSeconds: 1,
      },
      'shop/web-cb': {
        namespace: 'shop',
        name: 'web-cb',
        service: 'shop/web',
        errors: 3,
        timeoutSeconds: 30,
        fallback: { service: 'default/sorry', port: 80 },
      },
    });
  });

  it('reports unknown Services, bad counts and random load balancing', () => {
    const breaker = (name: string, spec: Record<string, unknown>) =>
      circuitBreaker('shop', name, {
        destination: { kind: 'Service', name: 'web' },
        errors: 3,
        timeoutSeconds: 30,
        ...spec,
      });
    const parts = withShop({
      services: [
        ...(shop().services ?? []),
        service('shop', 'rnd', {}, { 'config.nsm.nginx.com/lb-method': 'random two least_conn' }),
      ],
      circuitBreakers: [
        breaker('a', { destination: { kind: 'Service', name: 'gone' } }),
        breaker('b', { fallback: { service: 'shop/gone' } }),
        breaker('c', { errors: -1 }),
        breaker('d', { timeoutSeconds: '30' }),
        breaker('e', { destination: { kind: 'Deployment', name: 'web' } }),
        breaker('f', { destination: { kind: 'Service', name: 'rnd' } }),
        breaker('g', { fallback: { service: 'shop/web-v2', port: 70_000 } }),
      ],
    });
    expect(problemLines(parts)).toEqual([
      'CircuitBreaker shop/a UnknownService: spec.destination.name "gone": no Service shop/gone',
      'CircuitBreaker shop/b UnknownService: spec.fallback.service "shop/gone": no Service shop/gone',
      'CircuitBreaker shop/c InvalidField: spec.errors -1: expected an integer >= 0',
      'CircuitBreaker shop/d InvalidField: spec.timeoutSeconds "30": expected an integer >= 0',
      'CircuitBreaker shop/e UnsupportedKind: spec.destination.kind "Deployment": expected Service',
      'CircuitBreaker shop/f IncompatibleLbMethod: spec.destination.name "rnd": Service shop/rnd balances with "random two least_conn", which cannot have a fallback server; use round_robin or least_conn',
      'CircuitBreaker shop/g InvalidField: spec.fallback.port 70000: expected a port 1-65535',
    ]);
  });

  it('reports every breaker when the mesh-wide method is random', () => {
    const outcome = buildSnapshot(
      state(
        withShop({
          circuitBreakers: [
            circuitBreaker('shop', 'cb', {
              destination: { kind: 'Service', name: 'web' },
              errors: 1,
              timeoutSeconds: 1,
            }),
          ],
        }),
      ),
      { ...SETTINGS, base: { ...MESH_BASE, lbMethod: 'random' } },
    );
    expect(outcome.snapshot.circuitBreakers).toEqual({});
    expect(outcome.problems.map((p) => p.reason)).toEqual(['IncompatibleLbMethod']);
  });
});

describe('buildSnapshot: mesh settings', () => {
  it('lays the MeshConfig runtime fields over the ConfigMap settings', () => {
    const outcome = build({
      meshConfig: meshConfig({
        accessControlMode: 'deny',
        clientMaxBodySize: '64k',
        mtls: { mode: 'strict', caTTL: '720h' },
        nginxErrorLogLevel: 'debug',
        nginxLBMethod: 'random two least_time',
        nginxLogFormat: 'json',
      }),
    });
    expect(outcome.snapshot.mesh).toEqual({
      ...MESH_BASE,
      accessControlMode: 'deny',
      clientMaxBodySize: '64k',
      mtlsMode: 'strict',
      errorLogLevel: 'debug',
      lbMethod: 'random two least_conn',
      logFormat: 'json',
    });
    expect(outcome.warnings).toEqual([
      'MeshConfig nginx-mesh-config spec.nginxLBMethod "random two least_time": least_time is only available in NGINX Plus; using "random two least_conn"',
    ]);
  });

  it('keeps the ConfigMap value of every invalid MeshConfig field, with a warning', () => {
    const outcome = build({
      meshConfig: meshConfig({
        accessControlMode: 'maybe',
        clientMaxBodySize: '1 megabyte',
        mtls: { mode: 'sometimes' },
        nginxErrorLogLevel: 7,
        nginxLBMethod: 'fastest',
        nginxLogFormat: 'xml',
      }),
    });
    expect(outcome.snapshot.mesh).toEqual(MESH_BASE);
    expect(outcome.warnings.map((w) => w.split(':')[0])).toEqual([
      'MeshConfig nginx-mesh-config spec.accessControlMode "maybe"',
      'MeshConfig nginx-mesh-config spec.clientMaxBodySize "1 megabyte"',
      'MeshConfig nginx-mesh-config spec.mtls.mode "sometimes"',
      'MeshConfig nginx-mesh-config spec.nginxErrorLogLevel 7',
      'MeshConfig nginx-mesh-config spec.nginxLBMethod "fastest"',
      'MeshConfig nginx-mesh-config spec.nginxLogFormat "xml"',
    ]);
  });
});

describe('buildSnapshot: determinism and odd input', () => {
  function policies(): Partial<ClusterState> {
    return withShop({
      trafficTargets: [
        trafficTarget('shop', 'tt', {
          destination: { kind: 'ServiceAccount', name: 'web' },
          sources: [{ kind: 'ServiceAccount', name: 'client' }],
          rules: [{ kind: 'TCPRoute', name: 'any' }],
        }),
        trafficTarget('shop', 'bad', { destination: { kind: 'Pod', name: 'x' } }),
      ],
      trafficSplits: [
        trafficSplit('shop', 'ts', { service: 'web', backends: [{ service: 'web', weight: 1 }] }),
      ],
      rateLimits: [
        rateLimit('shop', 'r1', { destination: { kind: 'Service', name: 'web' }, rate: '1r/s' }),
        rateLimit('shop', 'r2', { destination: { kind: 'Service', name: 'web' }, rate: '2r/s' }),
      ],
      circuitBreakers: [
        circuitBreaker('shop', 'cb', {
          destination: { kind: 'Service', name: 'db' },
          errors: 1,
          timeoutSeconds: 1,
        }),
      ],
    });
  }

  /** A fixed permutation (reversal plus rotation) so the test needs no randomness. */
  function shuffled<T>(items: readonly T[] | undefined, turn: number): T[] {
    const reversed = [...(items ?? [])].reverse();
    const cut = reversed.length === 0 ? 0 : turn % reversed.length;
    return [...reversed.slice(cut), ...reversed.slice(0, cut)];
  }

  it('gives byte-identical output whatever the order of the input', () => {
    const parts = policies();
    const expected = JSON.stringify(build(parts));
    for (const turn of [1, 2, 3]) {
      const mixed: Partial<ClusterState> = {
        services: shuffled(parts.services, turn),
        endpointSlices: shuffled(parts.endpointSlices, turn),
        pods: shuffled(parts.pods, turn),
        httpRouteGroups: shuffled(parts.httpRouteGroups, turn),
        tcpRoutes: shuffled(parts.tcpRoutes, turn),
        trafficTargets: shuffled(parts.trafficTargets, turn),
        trafficSplits: shuffled(parts.trafficSplits, turn),
        rateLimits: shuffled(parts.rateLimits, turn),
        circuitBreakers: shuffled(parts.circuitBreakers, turn),
      };
      expect(JSON.stringify(build(mixed))).toBe(expected);
    }
    expect(build(parts).problems.map((p) => `${p.kind} ${p.name} ${p.reason}`)).toEqual([
      'RateLimit r2 Conflict',
      'TrafficTarget bad UnsupportedKind',
    ]);
  });

  it('picks the same one of two objects with one key, whichever comes first', () => {
    const twins: Partial<ClusterState> = {
      services: [
        service('shop', 'web', { clusterIP: '198.19.0.7' }),
        service('shop', 'web', { clusterIP: '198.19.0.8' }),
      ],
      pods: [
        pod('shop', 'web-1', { ip: '198.18.0.7' }),
        pod('shop', 'web-1', { ip: '198.18.0.8' }),
      ],
    };
    const forward = build(twins);
    const backward = build({
      services: [...(twins.services ?? [])].reverse(),
      pods: [...(twins.pods ?? [])].reverse(),
    });
    expect(JSON.stringify(backward)).toBe(JSON.stringify(forward));
    expect(forward.snapshot.services['shop/web']?.clusterIPs).toEqual(['198.19.0.7']);
    expect(podsOf(twins.pods ?? [])['shop/web-1']?.ips).toEqual(['198.18.0.7']);
    expect(podsOf([...(twins.pods ?? [])].reverse())).toEqual(podsOf(twins.pods ?? []));
  });

  it('never throws on objects of the wrong shape', () => {
    const odd = [
      {},
      { metadata: null },
      { metadata: { name: 7, namespace: 'shop' } },
      { metadata: { name: 'x', namespace: 'shop' }, spec: 'text' },
      { metadata: { name: 'y', namespace: 'shop' }, spec: { ports: 'many', rules: {} } },
      {
        metadata: { name: 'z', namespace: 'shop', labels: null, annotations: [] },
        spec: { destination: [], sources: [null, 3], backends: [null], matches: 'all' },
        status: { podIPs: 'x' },
        endpoints: [null, { addresses: 'a' }],
      },
    ] as unknown as KubeObject[];
    const outcome = build({
      services: odd,
      endpointSlices: odd,
      pods: odd,
      namespaces: odd,
      trafficSplits: odd,
      trafficTargets: odd,
      httpRouteGroups: odd,
      tcpRoutes: odd,
      rateLimits: odd,
      circuitBreakers: odd,
      meshConfig: { spec: 'text' },
    });
    expect(Object.keys(outcome.snapshot.services)).toEqual(['shop/x', 'shop/y', 'shop/z']);
    expect(outcome.snapshot.services['shop/y']?.ports).toEqual([]);
    expect(podsOf(odd)).toEqual({});
    expect(outcome.snapshot.mesh).toEqual(MESH_BASE);
    expect(Object.keys(outcome.snapshot.trafficTargets)).toEqual([]);
    const reasons = new Set(outcome.problems.map((p) => p.reason));
    expect([...reasons].sort()).toEqual(['InvalidField', 'InvalidRate', 'UnsupportedKind']);
  });
});
