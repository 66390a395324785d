import type { SnapshotProblem } from '../../src/manifests/snapshot/types';
import { KubeClient } from '../../src/runtime/kube/client';
import {
  acceptedCondition,
  createPolicyStatusWriter,
} from '../../src/runtime/controller/policy-status';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { SeenRequest } from '../support/fake-kube';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';
import { fixedClock } from '../support/fakes';

const quietLogger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});

const SPLIT_STATUS =
  '/apis/split.smi-spec.io/v1alpha3/namespaces/shop/trafficsplits/reviews/status';

function split(generation: number, conditions?: unknown[]) {
  return {
    apiVersion: 'split.smi-spec.io/v1alpha3',
    kind: 'TrafficSplit',
    metadata: { name: 'reviews', namespace: 'shop', uid: '0f1e2d3c-aaaa-bbbb', generation },
    spec: { service: 'reviews' },
    ...(conditions === undefined ? {} : { status: { conditions } }),
  };
}

const unknownService: SnapshotProblem = {
  apiVersion: 'split.smi-spec.io/v1alpha3',
  kind: 'TrafficSplit',
  namespace: 'shop',
  name: 'reviews',
  reason: 'UnknownService',
  message: 'spec.service "reviews" names no Service in namespace shop',
};

function writer(answer: (request: SeenRequest) => ReturnType<typeof okJson> = () => okJson({})) {
  const fake = kubeScripted(answer);
  const statusWriter = createPolicyStatusWriter({
    client: new KubeClient(fake.connection),
    clock: fixedClock(),
    logger: quietLogger,
    meshNamespace: 'nginx-mesh',
    instance: 'nginx-mesh-controller-7c9d-x2',
  });
  return { statusWriter, requests: fake.requests };
}

describe('createPolicyStatusWriter', () => {
  it('records a Warning Event naming the object and sets Accepted=False', async () => {
    const { statusWriter, requests } = writer();
    const report = await statusWriter.report([unknownService], [split(3)]);
    expect(report).toEqual({ eventsCreated: 1, statusPatched: 1 });
    expect(requests).toEqual([
      {
        method: 'POST',
        path: '/api/v1/namespaces/shop/events',
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: 'reviews.0f1e2d3c.3.unknownservice', namespace: 'shop' },
          involvedObject: {
            apiVersion: 'split.smi-spec.io/v1alpha3',
            kind: 'TrafficSplit',
            namespace: 'shop',
            name: 'reviews',
            uid: '0f1e2d3c-aaaa-bbbb',
          },
          type: 'Warning',
          reason: 'UnknownService',
          message: unknownService.message,
          source: { component: 'nginx-mesh-controller' },
          reportingComponent: 'nginx-mesh-controller',
          reportingInstance: 'nginx-mesh-controller-7c9d-x2',
          firstTimestamp: '2026-01-02T03:04:05.000Z',
          lastTimestamp: '2026-01-02T03:04:05.000Z',
          count: 1,
        },
      },
      {
        method: 'PATCH',
        path: SPLIT_STATUS,
        body: {
          status: {
            conditions: [
              {
                type: 'Accepted',
                status: 'False',
                reason: 'UnknownService',
                message: unknownService.message,
                observedGeneration: 3,
                lastTransitionTime: '2026-01-02T03:04:05.000Z',
              },
            ],
          },
        },
      },
    ]);
  });

  it('writes nothing when a rebuild finds the same problem on the same generation', async () => {
    const { statusWriter, requests } = writer();
    await statusWriter.report([unknownService], [split(3)]);
    const before = requests.length;
    // The cache has not seen the status patch yet: the writer remembers it.
    expect(await statusWriter.report([unknownService], [split(3)])).toEqual({
      eventsCreated: 0,
      statusPatched: 0,
    });
    expect(requests).toHaveLength(before);
  });

  it('records the problem again for a new generation', async () => {
    const { statusWriter } = writer();
    await statusWriter.report([unknownService], [split(3)]);
    const condition = { ...acceptedCondition([unknownService], 3), lastTransitionTime: 'x' };
    expect(await statusWriter.report([unknownService], [split(4, [condition])])).toEqual({
      eventsCreated: 1,
      statusPatched: 1,
    });
  });

  it('does not patch a condition the object already carries', async () => {
    const { statusWriter, requests } = writer();
    const current = { ...acceptedCondition([], 2), lastTransitionTime: '2025-01-01T00:00:00Z' };
    expect(await statusWriter.report([], [split(2, [current])])).toEqual({
      eventsCreated: 0,
      statusPatched: 0,
    });
    expect(requests).toEqual([]);
  });

  it('turns Accepted True once the problem is fixed, keeping other conditions', async () => {
    const { statusWriter, requests } = writer();
    const other = { type: 'Ready', status: 'True', reason: 'Up', message: '' };
    const failed = { ...acceptedCondition([unknownService], 5), lastTransitionTime: 'then' };
    await statusWriter.report([], [split(5, [other, failed])]);
    expect(requests).toEqual([
      {
        method: 'PATCH',
        path: SPLIT_STATUS,
        body: {
          status: {
            conditions: [
              other,
              {
                type: 'Accepted',
                status: 'True',
                reason: 'Accepted',
                message: 'accepted by nginx-mesh-controller',
                observedGeneration: 5,
                lastTransitionTime: '2026-01-02T03:04:05.000Z',
              },
            ],
          },
        },
      },
    ]);
  });

  it('takes an existing Event (409) as already recorded', async () => {
    const { statusWriter } = writer((request) =>
      request.method === 'POST' ? statusAnswer(409, 'AlreadyExists', 'exists') : okJson({}),
    );
    expect(await statusWriter.report([unknownService], [split(1)])).toEqual({
      eventsCreated: 0,
      statusPatched: 1,
    });
  });

  it('goes on with the other policies when one write fails', async () => {
    const { statusWriter } = writer((request) =>
      request.path.includes('/trafficsplits/')
        ? statusAnswer(500, 'InternalError', 'etcd timeout')
        : okJson({}),
    );
    const target = {
      apiVersion: 'access.smi-spec.io/v1alpha2',
      kind: 'TrafficTarget',
      metadata: { name: 'db', namespace: 'shop', uid: 'u-2', generation: 1 },
    };
    expect(await statusWriter.report([], [split(1), target])).toEqual({
      eventsCreated: 0,
      statusPatched: 1,
    });
  });

  it('sets MeshConfig status.transparent only when it changes', async () => {
    const { statusWriter, requests } = writer();
    await statusWriter.setMeshConfigTransparent(true);
    await statusWriter.setMeshConfigTransparent(true);
    await statusWriter.setMeshConfigTransparent(false);
    expect(requests).toEqual([
      {
        method: 'PATCH',
        path: '/apis/nsm.nginx.com/v1alpha2/namespaces/nginx-mesh/meshconfigs/nginx-mesh-config/status',
        body: { status: { transparent: true } },
      },
      {
        method: 'PATCH',
        path: '/apis/nsm.nginx.com/v1alpha2/namespaces/nginx-mesh/meshconfigs/nginx-mesh-config/status',
        body: { status: { transparent: false } },
      },
    ]);
  });
});

describe('acceptedCondition', () => {
  it('names the first reason and every distinct message, in a stable order', () => {
    const second = { ...unknownService, reason: 'BadWeight', message: 'weight -1' };
    expect(acceptedCondition([unknownService, second, second], 7)).toEqual({
      type: 'Accepted',
      status: 'False',
      reason: 'BadWeight',
      message: `weight -1; ${unknownService.message}`,
      observedGeneration: 7,
    });
  });
});
