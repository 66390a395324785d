// remove's wait for a deleted CRD: while the API server reports that it could not list the kind's
// instances (its storage restarting as the deletion starts), the CRD is touched so the API
// server's cleanup retries at once instead of after its backoff.
import type { Clock } from '../../src/runtime/clock';
import type { KubeClient } from '../../src/runtime/kube/client';
import type { Progress } from '../../src/runtime/progress';
import {
  CRD_NUDGE_ANNOTATION,
  WaitTimeoutError,
  waitCrdGone,
} from '../../src/runtime/install/waits';
import type { WaitContext } from '../../src/runtime/install/waits';

const PATH =
  '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/traffictargets.access.smi-spec.io';

const failing = {
  metadata: { deletionTimestamp: '2026-12-07T19:00:00Z' },
  status: {
    conditions: [
      {
        type: 'Terminating',
        status: 'True',
        reason: 'InstanceDeletionFailed',
        message: 'could not list instances: storage is (re)initializing',
      },
    ],
  },
};

/** An API server whose cleanup of the CRD runs again only when the CRD changes. */
function apiServer(retrySucceeds: boolean) {
  const patches: unknown[] = [];
  let gone = false;
  const client = {
    get: (path: string) => Promise.resolve(path === PATH && !gone ? failing : undefined),
    mergePatch: (path: string, patch: unknown) => {
      patches.push({ path, patch });
      if (retrySucceeds) gone = true;
      return Promise.resolve({});
    },
  } as unknown as KubeClient;
  return { client, patches };
}

function context(client: KubeClient, budgetMs: number): { wait: WaitContext; details: string[] } {
  let now = Date.parse('2026-12-07T19:00:00Z');
  const clock: Clock = {
    now: () => new Date(now),
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  };
  const details: string[] = [];
  const progress = { detail: (text: string) => details.push(text) } as unknown as Progress;
  return {
    wait: {
      client,
      clock,
      progress,
      signal: new AbortController().signal,
      deadline: now + budgetMs,
      budgetMs,
    },
    details,
  };
}

describe('waitCrdGone', () => {
  it('touches a CRD whose instances could not be listed, and the API server then removes it', async () => {
    const { client, patches } = apiServer(true);
    const { wait, details } = context(client, 60_000);
    await waitCrdGone(wait, 'traffictargets.access.smi-spec.io', PATH);
    expect(patches).toEqual([
      { path: PATH, patch: { metadata: { annotations: { [CRD_NUDGE_ANNOTATION]: '1' } } } },
    ]);
    expect(details[0]).toBe(
      'waiting for CustomResourceDefinition traffictargets.access.smi-spec.io to be deleted (the API server: could not list instances: storage is (re)initializing)',
    );
  });

  it('touches it at most every 3 s, and names the API server failure at the deadline', async () => {
    const { client, patches } = apiServer(false);
    const { wait } = context(client, 10_000);
    await expect(waitCrdGone(wait, 'traffictargets.access.smi-spec.io', PATH)).rejects.toThrow(
      new WaitTimeoutError(
        'timed out after 10s waiting for CustomResourceDefinition traffictargets.access.smi-spec.io to be deleted (the API server: could not list instances: storage is (re)initializing)',
      ),
    );
    // 10 s of 500 ms polls: touched at 0, 3, 6 and 9 s.
    expect(patches).toHaveLength(4);
  });

  it('leaves alone a CRD that is simply still being deleted', async () => {
    const patches: unknown[] = [];
    let polls = 0;
    const client = {
      get: () => {
        polls += 1;
        return Promise.resolve(polls < 4 ? { metadata: { deletionTimestamp: 'x' } } : undefined);
      },
      mergePatch: (path: string, patch: unknown) => {
        patches.push(patch);
        return Promise.resolve({});
      },
    } as unknown as KubeClient;
    await waitCrdGone(context(client, 60_000).wait, 'x', PATH);
    expect(polls).toBe(4);
    expect(patches).toEqual([]);
  });
});
