// Deltas between snapshots: applying the diff of two snapshots to the first gives the second,
// byte for byte, and a received message of the wrong shape is refused with its reason.
import type { MutableSnapshot } from '../../src/manifests/snapshot/delta';
import {
  applyDelta,
  applyDeltaInPlace,
  canonicalJson,
  changesRendering,
  diffSnapshots,
  emptySnapshot,
  isEmptyDelta,
} from '../../src/manifests/snapshot/delta';
import { parseDownMessage, parseUpMessage } from '../../src/manifests/snapshot/messages';
import type {
  MeshSnapshot,
  SnapshotMesh,
  SnapshotService,
} from '../../src/manifests/snapshot/types';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';

const MESH: SnapshotMesh = DEFAULT_SNAPSHOT_MESH;

function service(name: string, address: string): SnapshotService {
  return {
    namespace: 'shop',
    name,
    clusterIPs: ['198.18.0.10'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', kind: 'http' }],
    endpoints: [{ address, ports: { http: 8080 }, pod: `shop/${name}-1` }],
  };
}

function snapshot(services: Record<string, SnapshotService>, mesh = MESH): MeshSnapshot {
  return { ...emptySnapshot(mesh), services };
}

const BEFORE = snapshot({
  'shop/cart': service('cart', '198.18.1.1'),
  'shop/web': service('web', '198.18.1.2'),
});

describe('diffSnapshots and applyDelta', () => {
  it('carries a pod that started or stopped as a change to peers alone', () => {
    const started = {
      ...BEFORE,
      peers: { '198.18.2.1': { pod: 'shop/loadgen-7f9c', owner: 'deployment/loadgen' } },
    };
    const delta = diffSnapshots(BEFORE, started, 1, 2);
    expect(delta).toEqual({
      generation: 2,
      base: 1,
      upserts: { peers: { '198.18.2.1': started.peers['198.18.2.1'] } },
      deletes: {},
    });
    expect(applyDelta(BEFORE, delta)).toEqual(started);
    expect(diffSnapshots(started, BEFORE, 2, 3).deletes).toEqual({ peers: ['198.18.2.1'] });
  });

  it('tells a change the renderer reads from one it does not (peers alone)', () => {
    const started = {
      ...BEFORE,
      peers: { '198.18.2.1': { pod: 'shop/loadgen-7f9c', owner: 'deployment/loadgen' } },
    };
    expect(changesRendering(diffSnapshots(BEFORE, started, 1, 2))).toBe(false);
    expect(changesRendering(diffSnapshots(started, BEFORE, 2, 3))).toBe(false);
    const moved = { ...started, services: { 'shop/cart': service('cart', '198.18.1.9') } };
    expect(changesRendering(diffSnapshots(started, moved, 2, 3))).toBe(true);
    const strict = { ...started, mesh: { ...MESH, mtlsMode: 'strict' as const } };
    expect(changesRendering(diffSnapshots(started, strict, 2, 3))).toBe(true);
    expect(changesRendering(diffSnapshots(BEFORE, BEFORE, 1, 2))).toBe(false);
  });

  it('round-trips a changed, an added and a removed entry to byte-identical JSON', () => {
    const after = snapshot({
      'shop/cart': service('cart', '198.18.1.9'),
      'shop/api': service('api', '198.18.1.3'),
    });
    const delta = diffSnapshots(BEFORE, after, 1, 2);
    expect(delta).toEqual({
      generation: 2,
      base: 1,
      upserts: {
        services: {
          'shop/api': after.services['shop/api'],
          'shop/cart': after.services['shop/cart'],
        },
      },
      deletes: { services: ['shop/web'] },
    });
    const applied = applyDelta(BEFORE, delta);
    expect(applied).toEqual(after);
    expect(JSON.stringify(applied)).toBe(
      JSON.stringify({
        ...after,
        services: {
          'shop/api': after.services['shop/api'],
          'shop/cart': after.services['shop/cart'],
        },
      }),
    );
    expect(Object.keys(applied.services)).toEqual(['shop/api', 'shop/cart']);
  });

  it('carries the mesh settings only when they changed', () => {
    const after = snapshot(BEFORE.services, { ...MESH, mtlsMode: 'strict' });
    const delta = diffSnapshots(BEFORE, after, 1, 2);
    expect(delta.mesh).toEqual(after.mesh);
    expect(delta.upserts).toEqual({});
    expect(isEmptyDelta(delta)).toBe(false);
    expect(JSON.stringify(applyDelta(BEFORE, delta))).toBe(JSON.stringify(after));
    expect(diffSnapshots(after, after, 2, 3).mesh).toBeUndefined();
  });

  it('sees no change when only the key order of an entry differs', () => {
    const reordered = snapshot({
      'shop/web': BEFORE.services['shop/web'] as SnapshotService,
      'shop/cart': JSON.parse(
        JSON.stringify(BEFORE.services['shop/cart'], [
          'name',
          'namespace',
          'clusterIPs',
          'ports',
          'port',
          'protocol',
          'kind',
          'endpoints',
          'address',
          'pod',
          'http',
        ]),
      ) as SnapshotService,
    });
    const delta = diffSnapshots(BEFORE, reordered, 1, 2);
    expect(isEmptyDelta(delta)).toBe(true);
    expect(delta).toEqual({ generation: 2, base: 1, upserts: {}, deletes: {} });
  });

  it('builds a whole snapshot from the empty one and empties it again', () => {
    const withPod: MeshSnapshot = {
      ...BEFORE,
      trafficSplits: {
        'shop/web-1': {
          namespace: 'shop',
          name: 'web-1',
          service: 'shop/web',
          backends: [{ service: 'shop/cart', weight: 1 }],
          matches: [],
        },
      },
    };
    const empty = emptySnapshot(MESH);
    const up = diffSnapshots(empty, withPod, 0, 5);
    expect(JSON.stringify(applyDelta(empty, up))).toBe(JSON.stringify(withPod));
    const down = diffSnapshots(withPod, empty, 5, 6);
    expect(down.deletes).toEqual({
      services: ['shop/cart', 'shop/web'],
      trafficSplits: ['shop/web-1'],
    });
    expect(JSON.stringify(applyDelta(withPod, down))).toBe(JSON.stringify(empty));
  });

  it('sorts the keys of a collection that arrived unsorted', () => {
    const unsorted = snapshot({
      'shop/web': service('web', '198.18.1.2'),
      'shop/cart': service('cart', '198.18.1.1'),
    });
    const after = snapshot({
      'shop/web': service('web', '198.18.1.2'),
      'shop/api': service('api', '198.18.1.3'),
      'shop/cart': service('cart', '198.18.1.1'),
    });
    const applied = applyDelta(unsorted, diffSnapshots(unsorted, after, 1, 2));
    expect(Object.keys(applied.services)).toEqual(['shop/api', 'shop/cart', 'shop/web']);
  });

  it('merges added keys into a large sorted collection in order', () => {
    const names = Array.from(
      { length: 200 },
      (_, index) => `svc-${String(index).padStart(3, '0')}`,
    );
    const before = snapshot(
      Object.fromEntries(
        names
          .filter((_, index) => index % 2 === 0)
          .map((name) => [`shop/${name}`, service(name, '198.18.1.1')]),
      ),
    );
    const after = snapshot(
      Object.fromEntries(
        names
          .filter((_, index) => index % 3 !== 1)
          .map((name) => [`shop/${name}`, service(name, '198.18.1.1')]),
      ),
    );
    expect(JSON.stringify(applyDelta(before, diffSnapshots(before, after, 1, 2)))).toBe(
      JSON.stringify(after),
    );
  });

  it('leaves the snapshot it applies to untouched', () => {
    const copy = JSON.stringify(BEFORE);
    applyDelta(BEFORE, diffSnapshots(BEFORE, emptySnapshot(MESH), 1, 2));
    expect(JSON.stringify(BEFORE)).toBe(copy);
  });
});

describe('parsing bus messages', () => {
  it('reads a delta as sent', () => {
    const delta = diffSnapshots(BEFORE, emptySnapshot(MESH), 1, 2);
    const parsed = parseDownMessage(JSON.stringify({ kind: 'delta', ...delta }));
    expect(parsed).toEqual({ message: { kind: 'delta', ...delta } });
  });

  it('reads a full snapshot from a controller that sends no peers as one with none', () => {
    const { peers, ...earlier } = BEFORE;
    expect(peers).toBeDefined();
    const parsed = parseDownMessage(
      JSON.stringify({ kind: 'full', generation: 4, snapshot: earlier }),
    );
    expect(parsed).toEqual({
      message: { kind: 'full', generation: 4, snapshot: { ...earlier, peers: {} } },
    });
  });

  it('reads subscribe requests and acks with and without their optional fields', () => {
    expect(parseUpMessage('{"kind":"subscribe","pod":"shop/web-1","version":"2.0.0"}')).toEqual({
      message: { kind: 'subscribe', pod: 'shop/web-1', version: '2.0.0' },
    });
    expect(
      parseUpMessage('{"kind":"ack","pod":"shop/web-1","generation":7,"error":"nginx -t failed"}'),
    ).toEqual({
      message: { kind: 'ack', pod: 'shop/web-1', generation: 7, error: 'nginx -t failed' },
    });
  });

  it('reads a full snapshot of an earlier controller, without routes or peers, as empty ones', () => {
    const text =
      '{"kind":"full","generation":3,"snapshot":{"mesh":{},"services":{},"trafficTargets":{},"trafficSplits":{},"rateLimits":{},"circuitBreakers":{}}}';
    expect(parseDownMessage(text)).toMatchObject({
      message: { snapshot: { httpRoutes: {}, grpcRoutes: {}, peers: {} } },
    });
  });

  it.each([
    ['not json', 'not JSON: not json'],
    ['[1]', 'not a JSON object'],
    [
      '{"kind":"delta","generation":2,"base":2,"upserts":{},"deletes":{}}',
      'field "base" is 2: expected less than generation 2',
    ],
    [
      '{"kind":"delta","generation":-1,"base":0}',
      'field "generation" is -1: expected an integer >= 0',
    ],
    [
      '{"kind":"delta","generation":3,"base":2,"upserts":{"secrets":{}}}',
      'collection "secrets": expected one of services, trafficTargets, trafficSplits, rateLimits, circuitBreakers, httpRoutes, grpcRoutes, gateways, gatewayRoutes, peers',
    ],
    [
      '{"kind":"delta","generation":3,"base":2,"upserts":{"services":{"a/b":1}}}',
      'field "upserts.services"["a/b"] is not an object',
    ],
    [
      '{"kind":"delta","generation":3,"base":2,"deletes":{"services":[1]}}',
      'field "deletes.services" is not a list of strings',
    ],
    [
      '{"kind":"full","generation":3,"snapshot":{"mesh":{}}}',
      'field "snapshot.services" is not an object',
    ],
    [
      '{"kind":"full","generation":3,"snapshot":{"mesh":{},"services":{},"trafficTargets":{},"trafficSplits":{},"rateLimits":{},"circuitBreakers":{},"peers":[]}}',
      'field "snapshot.peers" is not an object',
    ],
    ['{"kind":"hello","generation":3}', 'kind "hello": expected "delta", "full" or "ping"'],
  ])('refuses the down message %s', (text, reason) => {
    expect(parseDownMessage(text)).toEqual({ refused: reason });
  });

  it.each([
    [
      '{"kind":"ack","pod":"shop/web-1","generation":"7"}',
      'field "generation" is "7": expected an integer >= 0',
    ],
    ['{"kind":"ack","pod":"","generation":7}', 'field "pod" is "": expected a non-empty string'],
    [
      '{"kind":"ack","pod":"shop/web-1","generation":7,"error":5}',
      'field "error" is number: expected a string',
    ],
    [
      '{"kind":"subscribe","pod":"shop/web-1"}',
      'field "version" is undefined: expected a non-empty string',
    ],
    ['{"kind":"delta","pod":"shop/web-1"}', 'kind "delta": expected "subscribe" or "ack"'],
  ])('refuses the up message %s', (text, reason) => {
    expect(parseUpMessage(text)).toEqual({ refused: reason });
  });
});

describe('applyDeltaInPlace', () => {
  it('changes the held snapshot itself to what applyDelta returns, up to key order', () => {
    const previous = BEFORE;
    const next = snapshot(
      {
        'shop/cart': service('cart', '198.18.1.9'),
        'shop/api': service('api', '198.18.1.3'),
      },
      { ...MESH, mtlsMode: 'strict' },
    );
    const delta = diffSnapshots(previous, next, 1, 2);
    const held = JSON.parse(JSON.stringify(previous)) as MutableSnapshot;
    const result = applyDeltaInPlace(held, delta);
    expect(result).toBe(held);
    expect(canonicalJson(held)).toBe(canonicalJson(applyDelta(previous, delta)));
    expect(canonicalJson(held)).toBe(canonicalJson(next));
  });
});
