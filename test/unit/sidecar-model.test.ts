// Decisions of the sidecar configuration's first stage: what applies to which pod, split
// percentages, zone names, mTLS choices.
import { buildSidecarModel } from '../../src/render/sidecar';
import {
  APP_KEEPALIVE_TIMEOUT,
  HTTP_UPSTREAM_KEEPALIVE,
  rateLimitZoneName,
  splitPercentages,
} from '../../src/render/sidecar/model';
import {
  fnv1a32,
  LOOPBACK_MAX,
  loopbackAddress,
  loopbackSlot,
} from '../../src/render/sidecar/names';
import type { SnapshotRateLimit } from '../../src/manifests/snapshot/types';
import {
  endpoint,
  httpPort,
  service,
  shopContext,
  shopSnapshot,
  tcpPort,
} from '../support/sidecar-snapshots';

const limit = (name: string, destinationPods: string[]): Record<string, SnapshotRateLimit> => ({
  [`shop/${name}`]: {
    namespace: 'shop',
    name,
    destinationPods,
    sourceIps: [],
    rate: 5,
    per: 's',
    burst: 1,
    delay: 'nodelay',
    matches: [],
  },
});

describe('splitPercentages', () => {
  it.each([
    [
      [1, 1, 1],
      ['33.34', '33.33', '33.33'],
    ],
    [
      [2, 1],
      ['66.67', '33.33'],
    ],
    [
      [10, 90],
      ['10', '90'],
    ],
    [
      [1, 0],
      ['100', '0'],
    ],
  ])('splits %j into %j', (weights, expected) => {
    expect(splitPercentages(weights)).toEqual(expected);
  });

  it('always sums to exactly 100', () => {
    for (const weights of [
      [3, 3, 3, 3, 3, 3, 3],
      [1, 2, 3, 4, 5, 6, 7],
      [999, 1, 1],
    ]) {
      const hundredths = splitPercentages(weights).reduce(
        (sum, percent) => sum + Math.round(Number(percent) * 100),
        0,
      );
      expect(hundredths).toBe(10000);
    }
  });
});

describe('rateLimitZoneName', () => {
  it('is stable for the same policy, key and rate', () => {
    expect(rateLimitZoneName('shop', 'a', 'k', '1r/s')).toBe(
      rateLimitZoneName('shop', 'a', 'k', '1r/s'),
    );
  });

  it('changes when the key or the rate changes, so a reload never rebinds a zone', () => {
    const base = rateLimitZoneName('shop', 'a', 'k', '1r/s');
    expect(rateLimitZoneName('shop', 'a', 'other', '1r/s')).not.toBe(base);
    expect(rateLimitZoneName('shop', 'a', 'k', '2r/s')).not.toBe(base);
    expect(base).toMatch(/^mesh_rl_shop_a_[0-9a-f]{8}$/);
  });
});

it('fnv1a32 matches the reference value of the empty string and "a"', () => {
  expect(fnv1a32('')).toBe('811c9dc5');
  expect(fnv1a32('a')).toBe('e40c292c');
});

it('encodes an inbound port, and an outbound slot per kind, in a loopback address', () => {
  expect(loopbackAddress('inbound', 8080)).toBe('127.1.31.144');
  expect(loopbackAddress('http', 0)).toBe('127.2.0.1');
  expect(loopbackAddress('http', 255)).toBe('127.2.1.2');
  expect(loopbackAddress('http', LOOPBACK_MAX - 1)).toBe('127.127.255.254');
  expect(loopbackAddress('tcp', 0)).toBe('127.128.0.1');
  expect(loopbackAddress('tcp', LOOPBACK_MAX - 1)).toBe('127.253.255.254');
});

it('keeps a destination at its loopback address when other Services come and go', () => {
  const outbound = (names: readonly string[]) => {
    const { model } = buildSidecarModel(
      shopSnapshot({
        services: Object.assign(
          {},
          ...names.map((name, index) =>
            service(`shop/${name}`, `10.96.1.${index + 1}`, [httpPort(80)], []),
          ),
        ) as ReturnType<typeof service>,
      }),
      shopContext(),
    );
    return new Map(model.outboundHttp.map((http) => [http.service, http.loopback]));
  };
  const before = outbound(['web', 'api']);
  // New Services that sort before and between the old ones, and one removed.
  const after = outbound(['aaa', 'api', 'bbb', 'web', 'zzz']);
  expect(after.get('shop/web')).toBe(before.get('shop/web'));
  expect(after.get('shop/api')).toBe(before.get('shop/api'));
  expect(outbound(['web']).get('shop/web')).toBe(before.get('shop/web'));
  expect(new Set(after.values()).size).toBe(5);
});

it('gives colliding meanings the next free slot, and stops at the last one', () => {
  const taken = new Set<number>();
  const first = loopbackSlot('shop/web:80', taken);
  expect(loopbackSlot('shop/web:80', taken)).toBe((first + 1) % LOOPBACK_MAX);
  expect(taken.size).toBe(2);
});

it('applies a rate limit only to the pods it names', () => {
  const { model } = buildSidecarModel(
    shopSnapshot({
      rateLimits: { ...limit('mine', ['shop/web-1']), ...limit('theirs', ['shop/api-1']) },
    }),
    shopContext(),
  );
  expect(model.rateLimits.map((rate) => rate.zone)).toEqual([
    expect.stringMatching(/^mesh_rl_shop_mine_/),
  ]);
});

it("admits only sources of targets whose destination is this pod's service account", () => {
  const snapshot = shopSnapshot({
    mesh: { ...shopSnapshot().mesh, accessControlMode: 'deny' },
    trafficTargets: {
      'shop/to-web': {
        namespace: 'shop',
        name: 'to-web',
        destination: 'shop/web',
        sources: ['shop/api'],
        httpMatches: [],
        tcp: true,
      },
      'shop/to-db': {
        namespace: 'shop',
        name: 'to-db',
        destination: 'shop/db',
        sources: ['shop/web'],
        httpMatches: [],
        tcp: true,
      },
    },
  });
  const { model } = buildSidecarModel(snapshot, shopContext());
  expect(model.accessRules.map((rule) => rule.identity)).toEqual([
    'spiffe://example.org/ns/shop/sa/api',
  ]);
});

it('under allow, has no access rules whatever the targets', () => {
  const snapshot = shopSnapshot({
    trafficTargets: {
      'shop/to-web': {
        namespace: 'shop',
        name: 'to-web',
        destination: 'shop/web',
        sources: ['shop/api'],
        httpMatches: [],
        tcp: true,
      },
    },
  });
  expect(buildSidecarModel(snapshot, shopContext()).model.accessRules).toEqual([]);
});

it('speaks mTLS only to services whose endpoints are all meshed', () => {
  const { model } = buildSidecarModel(shopSnapshot(), shopContext());
  const tls = Object.fromEntries(
    model.tcpUpstreams.map((upstream) => [upstream.name, upstream.tlsName]),
  );
  expect(tls).toEqual({ mesh_legacy__cache_6379: undefined, mesh_shop__db_5432: 'db.shop.svc' });
});

it('speaks plaintext everywhere when the pod turns mTLS off', () => {
  const { model } = buildSidecarModel(shopSnapshot(), shopContext({ mtlsMode: 'off' }));
  expect(model.mtlsMode).toBe('off');
  expect(
    [...model.httpUpstreams, ...model.tcpUpstreams].every((u) => u.tlsName === undefined),
  ).toBe(true);
});

it('warns and uses plaintext when only some endpoints are meshed', () => {
  const snapshot = shopSnapshot({
    services: service(
      'shop/mixed',
      '10.96.0.50',
      [tcpPort(9000, 'tcp')],
      [
        endpoint('10.1.5.1', { tcp: 9000 }, 'shop/m-1', 'shop/m'),
        endpoint('10.1.5.2', { tcp: 9000 }),
      ],
    ),
  });
  const { model, warnings } = buildSidecarModel(snapshot, shopContext());
  expect(model.tcpUpstreams[0]?.tlsName).toBeUndefined();
  expect(warnings).toEqual([
    'service shop/mixed port 9000: some endpoints are not meshed; using plaintext',
  ]);
});

it('serves the ports Services target on this pod by their kind, and other container ports as TCP', () => {
  const { model } = buildSidecarModel(shopSnapshot(), shopContext());
  expect(model.inboundPorts.map((port) => [port.port, port.kind])).toEqual([
    [8080, 'http'],
    [9090, 'tcp'],
  ]);
});

it('keeps HTTP connections alive to peer sidecars and to the app, and TCP upstreams without a pool', () => {
  // A new connection to a peer sidecar is an mTLS handshake; without a pool, every request paid
  // one (bench dataplane: 0.05x the throughput of a hand-written chain with keep-alive).
  const { model } = buildSidecarModel(shopSnapshot(), shopContext());
  expect(model.httpUpstreams.map((upstream) => [upstream.name, upstream.keepalive])).toEqual([
    ['mesh_shop__api_8080', HTTP_UPSTREAM_KEEPALIVE],
    ['mesh_shop__web_80', HTTP_UPSTREAM_KEEPALIVE],
  ]);
  expect(model.tcpUpstreams.every((upstream) => upstream.keepalive === undefined)).toBe(true);
  expect(model.inboundHttpUpstreams).toEqual([
    {
      name: 'mesh_inbound_8080',
      method: [],
      servers: [{ address: '127.0.0.1:8080', backup: false }],
      keepalive: HTTP_UPSTREAM_KEEPALIVE,
      keepaliveTimeout: APP_KEEPALIVE_TIMEOUT,
    },
  ]);
});

it('omits the upstream when the service has no endpoints', () => {
  const snapshot = shopSnapshot({
    services: service('shop/empty', '10.96.0.60', [tcpPort(1, 'x')], []),
  });
  expect(buildSidecarModel(snapshot, shopContext()).model.tcpUpstreams).toEqual([]);
});

describe('a sidecar holds only the policies that can act on its traffic', () => {
  /** shop/api split between api-v1 (identity shop/api) and the unmeshed legacy/cache. */
  const apiSplit = (backend: string) => ({
    'bank/split': {
      namespace: 'bank',
      name: 'split',
      service: 'bank/ledger',
      backends: [{ service: backend, weight: 1 }],
      matches: [{ name: 'm', methods: [], pathRegex: '/x', headers: {} }],
    },
  });
  const bank = {
    ...service(
      'bank/ledger',
      '10.96.1.1',
      [{ name: 'http', port: 80, protocol: 'TCP', kind: 'http' }],
      [endpoint('10.3.0.1', { http: 8080 }, 'bank/ledger-1', 'bank/ledger')],
    ),
    ...service(
      'bank/ledger-v2',
      '10.96.1.2',
      [{ name: 'http', port: 80, protocol: 'TCP', kind: 'http' }],
      [endpoint('10.3.0.2', { http: 8080 }, 'bank/ledger-2', 'bank/ledger')],
    ),
  };
  const admitWeb = {
    'bank/admit-web': {
      namespace: 'bank',
      name: 'admit-web',
      destination: 'bank/ledger',
      sources: ['shop/web'],
      httpMatches: [],
      tcp: true,
    },
  };
  const deny = (rest: Parameters<typeof shopSnapshot>[0]) => {
    const base = shopSnapshot(rest);
    return { ...base, mesh: { ...base.mesh, accessControlMode: 'deny' as const } };
  };

  it('leaves out, under deny, a split of Services no TrafficTarget lets this pod call', () => {
    const snapshot = deny({
      services: { ...shopSnapshot().services, ...bank },
      trafficSplits: apiSplit('bank/ledger-v2'),
    });
    const { model, policies } = buildSidecarModel(snapshot, shopContext());
    expect(model.splits).toEqual([]);
    expect(model.matches).toEqual([]);
    expect(policies).toEqual([]);
  });

  it('keeps, under deny, a split whose root or backend this pod may call', () => {
    const snapshot = deny({
      services: { ...shopSnapshot().services, ...bank },
      trafficSplits: apiSplit('bank/ledger-v2'),
      trafficTargets: admitWeb,
    });
    const { model, policies } = buildSidecarModel(snapshot, shopContext());
    expect(model.splits.map((split) => split.name)).toEqual(['mesh_split_bank__split_80']);
    expect(policies).toEqual([{ collection: 'trafficSplits', key: 'bank/split' }]);
  });

  it('keeps every split under allow, where every Service may be called', () => {
    const snapshot = shopSnapshot({
      services: { ...shopSnapshot().services, ...bank },
      trafficSplits: apiSplit('bank/ledger-v2'),
    });
    expect(buildSidecarModel(snapshot, shopContext()).model.splits).toHaveLength(1);
  });

  it('names the TrafficTargets, RateLimits and CircuitBreakers it is made of, and no others', () => {
    const snapshot = deny({
      trafficTargets: {
        ...admitWeb,
        'shop/to-web': {
          ...admitWeb['bank/admit-web'],
          namespace: 'shop',
          name: 'to-web',
          destination: 'shop/web',
          sources: ['shop/api'],
        },
      },
      rateLimits: { ...limit('mine', ['shop/web-1']), ...limit('theirs', ['shop/api-1']) },
      circuitBreakers: {
        'shop/cb': {
          namespace: 'shop',
          name: 'cb',
          service: 'shop/api',
          errors: 1,
          timeoutSeconds: 5,
        },
      },
    });
    const { model, policies } = buildSidecarModel(snapshot, shopContext());
    expect(model.accessRules.map((rule) => rule.identity)).toEqual([
      'spiffe://example.org/ns/shop/sa/api',
    ]);
    expect(model.rateLimits).toHaveLength(1);
    expect(policies).toEqual([
      { collection: 'circuitBreakers', key: 'shop/cb' },
      { collection: 'rateLimits', key: 'shop/mine' },
      { collection: 'trafficTargets', key: 'shop/to-web' },
    ]);
  });
});
