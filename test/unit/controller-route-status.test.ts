// The HTTPRoute parent status the controller writes: its own entries, next to other controllers'.
import { GATEWAY_CONTROLLER_NAME } from '../../src/manifests/constants';
import type { RouteStatus } from '../../src/manifests/snapshot/types';
import { KubeClient } from '../../src/runtime/kube/client';
import {
  buildRouteParents,
  createRouteStatusWriter,
} from '../../src/runtime/controller/route-status';
import { createJsonLogger } from '../../src/runtime/role/log';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';
import { fixedClock } from '../support/fakes';

const quietLogger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});
const NOW = '2026-01-02T03:04:05.000Z';
const EARLIER = '2025-12-31T00:00:00Z';
const parentRef = { group: '', kind: 'Service', name: 'reviews', port: 9080 };
const otherEntry = {
  parentRef: { name: 'edge', kind: 'Gateway', group: 'gateway.networking.k8s.io' },
  controllerName: 'example.com/gateway',
  conditions: [
    {
      type: 'Accepted',
      status: 'True',
      reason: 'Accepted',
      message: '',
      observedGeneration: 1,
      lastTransitionTime: EARLIER,
    },
  ],
};

const wanted = (accepted: 'True' | 'False', generation = 2): RouteStatus => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  namespace: 'shop',
  name: 'reviews',
  generation,
  parents: [
    {
      parentRef,
      accepted: {
        status: accepted,
        reason: accepted === 'True' ? 'Accepted' : 'NoMatchingParent',
        message: 'm',
      },
      resolvedRefs: { status: 'True', reason: 'ResolvedRefs', message: 'r' },
    },
  ],
});

const ours = (accepted: 'True' | 'False', time: string, generation = 2) => ({
  parentRef,
  controllerName: GATEWAY_CONTROLLER_NAME,
  conditions: [
    {
      type: 'Accepted',
      status: accepted,
      reason: accepted === 'True' ? 'Accepted' : 'NoMatchingParent',
      message: 'm',
      observedGeneration: generation,
      lastTransitionTime: time,
    },
    {
      type: 'ResolvedRefs',
      status: 'True',
      reason: 'ResolvedRefs',
      message: 'r',
      observedGeneration: generation,
      lastTransitionTime: time,
    },
  ],
});

function route(parents?: unknown[]) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name: 'reviews',
      namespace: 'shop',
      uid: 'u-1',
      generation: 2,
      resourceVersion: '41',
    },
    spec: { parentRefs: [{ kind: 'Service', name: 'reviews', port: 9080 }] },
    ...(parents === undefined ? {} : { status: { parents } }),
  };
}

describe('buildRouteParents', () => {
  it("adds our entry after other controllers' entries, which stay as they are", () => {
    expect(buildRouteParents([otherEntry], wanted('True'), NOW)).toEqual([
      otherEntry,
      ours('True', NOW),
    ]);
  });

  it("keeps a condition's lastTransitionTime while its status holds, and moves it when it changes", () => {
    const before = ours('True', EARLIER, 1);
    expect(buildRouteParents([before], wanted('True'), NOW)).toEqual([ours('True', EARLIER)]);
    const [entry] = buildRouteParents([before], wanted('False'), NOW);
    const [accepted, resolved] = (entry as { conditions: { lastTransitionTime: string }[] })
      .conditions;
    expect(accepted?.lastTransitionTime).toBe(NOW);
    expect(resolved?.lastTransitionTime).toBe(EARLIER);
  });

  it('drops our entries for parentRefs the route no longer has', () => {
    const gone = { ...ours('True', EARLIER), parentRef: { ...parentRef, name: 'ratings' } };
    expect(buildRouteParents([gone, otherEntry], wanted('True'), NOW)).toEqual([
      otherEntry,
      ours('True', NOW),
    ]);
    expect(buildRouteParents([gone, otherEntry], undefined, NOW)).toEqual([otherEntry]);
  });
});

describe('createRouteStatusWriter', () => {
  const writer = (answer = () => okJson({})) => {
    const fake = kubeScripted(answer);
    return {
      statusWriter: createRouteStatusWriter({
        client: new KubeClient(fake.connection),
        clock: fixedClock(),
        logger: quietLogger,
      }),
      requests: fake.requests,
    };
  };

  it('merge-patches the status subresource over the resourceVersion it read', async () => {
    const { statusWriter, requests } = writer();
    expect(await statusWriter.report([wanted('True')], [route([otherEntry])])).toBe(1);
    expect(requests).toEqual([
      {
        method: 'PATCH',
        path: '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/reviews/status',
        body: {
          metadata: { resourceVersion: '41' },
          status: { parents: [otherEntry, ours('True', NOW)] },
        },
      },
    ]);
  });

  it('writes nothing when the status already says it, or while the cache has not seen its own write', async () => {
    const { statusWriter, requests } = writer();
    expect(await statusWriter.report([wanted('True')], [route([ours('True', EARLIER)])])).toBe(0);
    expect(await statusWriter.report([wanted('False')], [route()])).toBe(1);
    expect(await statusWriter.report([wanted('False')], [route()])).toBe(0);
    expect(requests).toHaveLength(1);
  });

  it('leaves routes that have no entry of ours alone, and reports a refused patch without throwing', async () => {
    const { statusWriter, requests } = writer(() =>
      statusAnswer(409, 'Conflict', 'the object has been modified'),
    );
    expect(await statusWriter.report([], [route([otherEntry])])).toBe(0);
    expect(requests).toHaveLength(0);
    expect(await statusWriter.report([wanted('True')], [route()])).toBe(0);
    expect(requests).toHaveLength(1);
  });
});
