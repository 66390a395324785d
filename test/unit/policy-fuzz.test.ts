// Hostile tenants: a thousand malformed-but-plausible SMI and NSM objects from ten namespaces,
// built together with a shop's good policies. Every bad object is reported by name, the shop's
// sidecar renders byte for byte what it renders without them, and nothing throws.
import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState } from '../../src/manifests/snapshot/build';
import { renderSidecarConfig } from '../../src/render/sidecar';
import { SETTINGS } from '../support/kube-objects';
import { badObjects, goodPolicies, shopCluster } from '../support/policy-fuzz';
import { shopContext } from '../support/sidecar-snapshots';

const SEED = 20_240_611;
const COUNT = 1000;

function withBad(base: ClusterState, seed: number, count: number): ClusterState {
  const merged: Record<string, unknown> = { ...base };
  for (const { collection, object } of badObjects(seed, count))
    merged[collection] = [...(merged[collection] as unknown[]), object];
  return merged as unknown as ClusterState;
}

it('reports each of 1,000 bad objects by name and leaves the good ones as they were', () => {
  const good: ClusterState = { ...shopCluster(), ...goodPolicies() };
  const clean = buildSnapshot(good, SETTINGS);
  expect(clean.problems).toEqual([]);
  const started = process.hrtime.bigint();
  const outcome = buildSnapshot(withBad(good, SEED, COUNT), SETTINGS);
  const buildMs = Number(process.hrtime.bigint() - started) / 1e6;

  const named = new Set(outcome.problems.map((p) => `${p.kind} ${p.namespace}/${p.name}`));
  const missed = badObjects(SEED, COUNT)
    .map(
      ({ object }) =>
        `${object.kind ?? ''} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
    )
    .filter((key) => !named.has(key));
  expect(missed).toEqual([]);
  expect(outcome.problems.filter((p) => p.namespace === 'shop')).toEqual([]);
  for (const problem of outcome.problems) expect(problem.message).not.toMatch(/[\n\r]/);

  // The bad objects left no trace: the same policies, and the shop's sidecar renders the same bytes.
  const { mesh, services, trafficTargets, trafficSplits, rateLimits, circuitBreakers } =
    clean.snapshot;
  expect(outcome.snapshot).toMatchObject({
    mesh,
    services,
    trafficTargets,
    trafficSplits,
    rateLimits,
    circuitBreakers,
  });
  const context = shopContext();
  expect(renderSidecarConfig(outcome.snapshot, context).text).toBe(
    renderSidecarConfig(clean.snapshot, context).text,
  );
  const deny = (snapshot: typeof clean.snapshot) => ({
    ...snapshot,
    mesh: { ...snapshot.mesh, accessControlMode: 'deny' as const },
  });
  expect(renderSidecarConfig(deny(outcome.snapshot), context).text).toBe(
    renderSidecarConfig(deny(clean.snapshot), context).text,
  );
  process.stderr.write(
    `policy fuzz: ${COUNT} bad objects, ${outcome.problems.length} problems, build ${buildMs.toFixed(1)} ms\n`,
  );
});

it.each([1, 2, 3, 4, 5])('never throws on corpus seed %i', (seed) => {
  const good: ClusterState = { ...shopCluster(), ...goodPolicies() };
  expect(() => buildSnapshot(withBad(good, seed, 200), SETTINGS)).not.toThrow();
});
