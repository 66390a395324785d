// What remove may say about the sidecars' pass-through: the verdict from the controller's report
// and MeshConfig's status, the bounded list of pods, the notes printed after a removal, and the
// whole command in-process against a scripted API server: a sidecar that does not confirm stops
// the removal before anything is deleted, unless --force is given.
import { proxiedNote, transparencySentence } from '../../src/commands/remove';
import type { TransparencyFacts } from '../../src/runtime/install/remove';
import {
  describePods,
  describeUnconfirmed,
  judgeTransparency,
  parseSidecarReport,
} from '../../src/runtime/install/remove';
import type { Clock } from '../../src/runtime/clock';
import type { KubeAccess, RawResponse } from '../../src/runtime/kube/access';
import { runCli } from '../support/cli';
import type { SeenRequest } from '../support/fake-kube';
import { kubeScripted, okJson } from '../support/fake-kube';

const PODS = ['apps/web-1', 'apps/web-2', 'apps/client-1'];

function facts(overrides: Partial<TransparencyFacts> = {}): TransparencyFacts {
  return {
    pods: PODS,
    report: {
      leader: true,
      generation: 200,
      heard: PODS,
      behind: [],
    },
    statusSeen: false,
    toldBefore: false,
    generationBefore: 100,
    settled: false,
    ...overrides,
  };
}

describe('judgeTransparency', () => {
  it('confirms at once when no pod runs a sidecar', () => {
    expect(judgeTransparency(facts({ pods: [] }))).toEqual({
      confirmed: true,
      unconfirmed: [],
      why: '',
    });
  });

  it('confirms nothing when the controller does not answer, naming every pod', () => {
    const verdict = judgeTransparency(
      facts({ report: { missing: 'no endpoints available for service "nginx-mesh-controller"' } }),
    );
    expect(verdict.confirmed).toBe(false);
    expect(verdict.unconfirmed).toEqual(['apps/client-1', 'apps/web-1', 'apps/web-2']);
    expect(verdict.why).toBe(
      'the controller did not answer: no endpoints available for service "nginx-mesh-controller"',
    );
  });

  it('confirms nothing from a controller that does not lead or has not published', () => {
    const follower = judgeTransparency(
      facts({ report: { leader: false, generation: 0, heard: [], behind: PODS } }),
    );
    expect(follower.unconfirmed).toHaveLength(3);
    expect(follower.why).toBe('the controller that answered does not lead the mesh');
    const fresh = judgeTransparency(
      facts({ report: { leader: true, generation: 0, heard: PODS, behind: [] } }),
    );
    expect(fresh.unconfirmed).toHaveLength(3);
    expect(fresh.why).toBe('the controller has not published a configuration');
  });

  it('does not take acknowledgements of a generation from before the sidecars were told', () => {
    // Every sidecar is current, but on the generation in force when remove told them: that one
    // does not pass traffic through.
    const verdict = judgeTransparency(
      facts({
        report: { leader: true, generation: 100, heard: PODS, behind: [] },
        settled: true,
      }),
    );
    expect(verdict.confirmed).toBe(false);
    expect(verdict.unconfirmed).toHaveLength(3);
    expect(verdict.why).toBe('the controller has not published the pass-through configuration');
  });

  it('names exactly the pods behind or never heard from once pass-through is published', () => {
    const verdict = judgeTransparency(
      facts({
        pods: ['apps/web-2', 'apps/web-1', 'apps/client-1', 'other/new-1'],
        report: { leader: true, generation: 200, heard: PODS, behind: ['apps/web-2'] },
        settled: true,
      }),
    );
    expect(verdict).toEqual({
      confirmed: false,
      unconfirmed: ['apps/web-2', 'other/new-1'],
      why: 'they have not acknowledged the pass-through configuration',
    });
  });

  it('ignores pods of the report that no longer run a sidecar', () => {
    const verdict = judgeTransparency(
      facts({
        report: { leader: true, generation: 200, heard: PODS, behind: ['gone/finished-1'] },
        statusSeen: true,
      }),
    );
    expect(verdict.confirmed).toBe(true);
  });

  it("waits for MeshConfig's status before the bound, and takes the report alone after it", () => {
    const early = judgeTransparency(facts());
    expect(early.confirmed).toBe(false);
    expect(early.unconfirmed).toEqual([]);
    expect(judgeTransparency(facts({ statusSeen: true })).confirmed).toBe(true);
    expect(judgeTransparency(facts({ settled: true })).confirmed).toBe(true);
  });

  it('counts the configuration as published when the sidecars had been told before', () => {
    const rerun = facts({
      report: { leader: true, generation: 100, heard: PODS, behind: [] },
      toldBefore: true,
      settled: true,
    });
    expect(judgeTransparency(rerun).confirmed).toBe(true);
    const unknownBefore = facts({ generationBefore: undefined, statusSeen: true });
    expect(judgeTransparency(unknownBefore).confirmed).toBe(true);
  });
});

describe('describePods', () => {
  it('names every pod, sorted, up to the bound', () => {
    expect(describePods(['b/2', 'a/1', 'b/1'])).toBe('a/1, b/1, b/2');
  });

  it('names the first pods, sorted, then how many more', () => {
    const pods = Array.from(
      { length: 13 },
      (_, index) => `apps/web-${String(index).padStart(2, '0')}`,
    );
    expect(describePods([...pods].reverse())).toBe(`${pods.slice(0, 10).join(', ')} and 3 more`);
    expect(describePods(pods, 2)).toBe('apps/web-00, apps/web-01 and 11 more');
  });
});

describe('parseSidecarReport', () => {
  it("reads the leader's report: who was heard from and who is behind", () => {
    const body = JSON.stringify({
      leader: true,
      generation: 1767322245000,
      sidecars: [
        { pod: 'apps/web-1', version: '1.2.3', generation: 1767322245000, lastSeenMs: 1 },
        { pod: 'apps/web-2', version: '1.2.3', generation: 1, error: 'nginx -t failed' },
      ],
      behind: ['apps/web-2', 'apps/quiet'],
    });
    expect(parseSidecarReport(body)).toEqual({
      leader: true,
      generation: 1767322245000,
      heard: ['apps/web-1', 'apps/web-2'],
      behind: ['apps/web-2', 'apps/quiet'],
    });
  });

  it('says what is wrong with an answer that is not a report', () => {
    expect(parseSidecarReport('not found\n')).toEqual({
      missing: 'its sidecar report is not JSON',
    });
    expect(parseSidecarReport('{"leader":true,"sidecars":[]}')).toEqual({
      missing: 'its sidecar report lacks leader, sidecars or behind',
    });
  });
});

describe('the texts after a removal', () => {
  const proxied = [{ namespace: 'apps', resource: 'deployment/web' }];

  it('counts, explains and names the pods whose sidecars did not confirm', () => {
    expect(
      describeUnconfirmed({
        pods: PODS,
        unconfirmed: ['apps/web-2'],
        why: 'they have not acknowledged the pass-through configuration',
      }),
    ).toBe(
      '1 of 3 sidecars did not confirm pass-through within 15s (they have not acknowledged the pass-through configuration): apps/web-2',
    );
  });

  it('claims pass-through only when every sidecar confirmed it', () => {
    const all = proxiedNote(proxied, { pods: PODS, unconfirmed: [], why: '' });
    expect(all).toContain('\tapps\tdeployment/web');
    expect(all).toContain('Their sidecars confirmed that they pass traffic through untouched.');
    const some = transparencySentence({ pods: PODS, unconfirmed: ['apps/web-2'], why: 'x' });
    expect(some).toBe(
      'The sidecars of 1 pod did not confirm pass-through (see the warning above) and keep the configuration they last applied; the other 2 confirmed that they pass traffic through untouched.',
    );
    const none = transparencySentence({ pods: PODS, unconfirmed: PODS, why: 'x' });
    expect(none).not.toContain('untouched');
    expect(none).toContain('The sidecars of 3 pods did not confirm pass-through');
  });
});

/** A clock whose sleeps move it forward at once. */
function steppingClock(): Clock {
  let now = Date.parse('2026-01-02T03:04:05.000Z');
  return {
    now: () => new Date(now),
    sleep: (ms, signal) => {
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
      now += ms;
      return Promise.resolve();
    },
  };
}

interface Cluster {
  /** The controller's answer to GET /sidecars, as the service proxy gives it. */
  readonly sidecars: (told: boolean) => RawResponse;
  /** MeshConfig status.transparent, once the sidecars were told. */
  readonly statusWhenTold: boolean;
  /** The controller's report token Secret's data, when it exists. */
  readonly tokenSecret?: Record<string, string>;
}

const NS = 'mesh';
const PROXY = `/api/v1/namespaces/${NS}/services/nginx-mesh-controller:8082/proxy/sidecars`;

function pod(name: string): object {
  return {
    metadata: {
      name,
      namespace: 'apps',
      annotations: { 'injector.nsm.nginx.com/status': 'injected' },
    },
    status: { phase: 'Running' },
  };
}

const MISSING: RawResponse = { status: 404, body: '{}' };
const CONTROLLER = { metadata: { name: 'nginx-mesh-controller', namespace: NS } };

/** Answers to GETs of objects that do not change while remove runs. */
function fixedAnswer(path: string): RawResponse | undefined {
  if (path === '/api/v1/pods') return okJson({ items: [pod('web-1'), pod('web-2')] });
  if (path.endsWith('/configmaps/meshconfig')) return okJson({ data: {} });
  if (path === `/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`) {
    return okJson(CONTROLLER);
  }
  if (path === `/apis/apps/v1/namespaces/${NS}/deployments`) return okJson({ items: [CONTROLLER] });
  return undefined;
}

/** A mesh in namespace "mesh" with two meshed pods, apps/web-1 and apps/web-2. */
function scriptedMesh(cluster: Cluster): { kube: KubeAccess; requests: SeenRequest[] } {
  let told = false;
  let namespaceGone = false;
  const { connection, requests } = kubeScripted((request) => {
    const path = request.path.split('?')[0] ?? '';
    if (request.method === 'DELETE') {
      namespaceGone ||= path === `/api/v1/namespaces/${NS}`;
      return okJson({});
    }
    if (request.method === 'PATCH') {
      told ||= path.endsWith('/configmaps/meshconfig');
      return okJson({});
    }
    if (path === `/api/v1/namespaces/${NS}`) {
      const labels = { 'app.kubernetes.io/part-of': 'nginx-service-mesh' };
      return namespaceGone ? MISSING : okJson({ metadata: { name: NS, labels } });
    }
    if (path === PROXY) return cluster.sidecars(told);
    if (path === `/api/v1/namespaces/${NS}/secrets/nginx-mesh-controller-report`) {
      return cluster.tokenSecret === undefined ? MISSING : okJson({ data: cluster.tokenSecret });
    }
    if (path.endsWith('/meshconfigs/nginx-mesh-config')) {
      return okJson({ status: { transparent: told && cluster.statusWhenTold } });
    }
    return fixedAnswer(path) ?? (request.path.includes('?') ? okJson({ items: [] }) : MISSING);
  });
  return {
    requests,
    kube: {
      getRaw: () => Promise.reject(new Error('unused')),
      connect: () => Promise.resolve(connection),
    },
  };
}

/** The leader's report: before the sidecars are told, generation 100; after, 200, with these behind. */
function leaderReport(behind: readonly string[]): (told: boolean) => RawResponse {
  return (told) =>
    okJson({
      leader: true,
      generation: told ? 200 : 100,
      sidecars: ['apps/web-1', 'apps/web-2'].map((each) => ({
        pod: each,
        generation: told && !behind.includes(each) ? 200 : 100,
      })),
      behind: told ? behind : [],
    });
}

function deletions(requests: readonly SeenRequest[]): string[] {
  return requests.filter((each) => each.method === 'DELETE').map((each) => each.path);
}

describe('nginx-meshctl remove', () => {
  it('says every sidecar confirmed pass-through when the controller reports so', async () => {
    const { kube, requests } = scriptedMesh({ sidecars: leaderReport([]), statusWhenTold: true });
    const result = await runCli(['remove', '-y', '-n', NS], { kube, clock: steppingClock() });
    expect(result.stderr).toContain('Making sidecar proxies transparent... done (0.0s)');
    expect(result.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(result.stdout).toContain(
      'Their sidecars confirmed that they pass traffic through untouched.',
    );
    expect(result.code).toBe(0);
    expect(deletions(requests)).toContain(
      `/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`,
    );
  });

  it("asks the controller's report with the token of its Secret, read with the user's rights", async () => {
    const { kube, requests } = scriptedMesh({
      sidecars: leaderReport([]),
      statusWhenTold: true,
      tokenSecret: { token: Buffer.from('s3cret-token').toString('base64') },
    });
    const result = await runCli(['remove', '-y', '-n', NS], { kube, clock: steppingClock() });
    expect(result.code).toBe(0);
    const asked = requests.filter((each) => each.path === PROXY);
    expect(asked.length).toBeGreaterThan(0);
    for (const each of asked) {
      expect(each.headers).toEqual({ 'x-nginx-mesh-report-token': 's3cret-token' });
    }
  });

  it('names the pod whose sidecar did not confirm, deletes nothing and exits 1', async () => {
    const { kube, requests } = scriptedMesh({
      sidecars: leaderReport(['apps/web-2']),
      statusWhenTold: false,
    });
    const result = await runCli(['remove', '-y', '-n', NS], { kube, clock: steppingClock() });
    expect(result.stderr).toContain('Making sidecar proxies transparent... failed (15.0s)');
    expect(result.stderr).toContain(
      'Error: 1 of 2 sidecars did not confirm pass-through within 15s (they have not acknowledged the pass-through configuration): apps/web-2; NGINX Service Mesh was not removed\n',
    );
    expect(result.stderr).toContain('or add --force to remove the mesh anyway.');
    expect(result.stderr).not.toContain('apps/web-1');
    expect(result.stdout).not.toContain('removed successfully');
    expect(result.code).toBe(1);
    expect(deletions(requests)).toEqual([]);
  });

  it('counts an unreachable controller as no sidecar confirming', async () => {
    const { kube, requests } = scriptedMesh({
      sidecars: () => ({
        status: 503,
        body: JSON.stringify({
          kind: 'Status',
          message: 'no endpoints available for service "nginx-mesh-controller"',
        }),
      }),
      statusWhenTold: true,
    });
    const result = await runCli(['remove', '-y', '-n', NS], { kube, clock: steppingClock() });
    expect(result.stderr).toContain(
      'Error: 2 of 2 sidecars did not confirm pass-through within 15s (the controller did not answer: no endpoints available for service "nginx-mesh-controller"): apps/web-1, apps/web-2; NGINX Service Mesh was not removed\n',
    );
    expect(result.code).toBe(1);
    expect(deletions(requests)).toEqual([]);
  });

  it('with --force removes anyway, warning about the pod, and claims nothing for it', async () => {
    const { kube, requests } = scriptedMesh({
      sidecars: leaderReport(['apps/web-2']),
      statusWhenTold: false,
    });
    const result = await runCli(['remove', '-y', '--force', '-n', NS], {
      kube,
      clock: steppingClock(),
    });
    expect(result.stderr).toContain(
      'Warning: 1 of 2 sidecars did not confirm pass-through within 15s (they have not acknowledged the pass-through configuration): apps/web-2. Removing anyway (--force)',
    );
    expect(result.stdout).toContain('NGINX Service Mesh removed successfully.');
    expect(result.stdout).toContain(
      'The sidecars of 1 pod did not confirm pass-through (see the warning above) and keep the configuration they last applied; the other 1 confirmed',
    );
    expect(result.stdout).not.toContain('Their sidecars confirmed');
    expect(result.code).toBe(0);
    expect(deletions(requests)).toContain(
      `/apis/apps/v1/namespaces/${NS}/deployments/nginx-mesh-controller`,
    );
  });
});
