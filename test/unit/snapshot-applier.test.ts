// The agent's step from snapshot to nginx configuration: a change nginx does not read (peers)
// is in force without a render once the configuration before it runs, and rendered again after
// nginx refused the last one.
import type { ApplyOutcome } from '../../src/runtime/agent/config-applier';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { createJsonLogger } from '../../src/runtime/role/log';
import { shopContext, shopSnapshot } from '../support/sidecar-snapshots';

const logger = createJsonLogger({
  level: 'error',
  out: { write: () => undefined },
  now: () => new Date(0),
});

function setup(outcomes: ApplyOutcome[]) {
  const texts: string[] = [];
  const inForce: MeshSnapshot[] = [];
  const applier = createSnapshotApplier({
    context: shopContext(),
    logger,
    apply: (text) => {
      texts.push(text);
      return Promise.resolve(outcomes.shift() ?? { applied: true });
    },
    onApplied: (snapshot) => inForce.push(snapshot),
  });
  return { applier, texts, inForce };
}

const withLoadgen = shopSnapshot({
  peers: { ...shopSnapshot().peers, '10.1.0.40': { pod: 'shop/loadgen-2', owner: 'pod/x' } },
});

it('puts a peers-only change in force without rendering once the last configuration runs', async () => {
  const { applier, texts, inForce } = setup([]);
  await expect(applier.apply(shopSnapshot(), 1, false)).resolves.toBeUndefined();
  await expect(applier.apply(withLoadgen, 2, true)).resolves.toBeUndefined();
  expect(applier.renders()).toBe(1);
  expect(texts).toHaveLength(1);
  expect(inForce).toEqual([shopSnapshot(), withLoadgen]);
});

it('renders a peers-only change when nginx refused the configuration before it', async () => {
  const { applier, texts, inForce } = setup([
    { applied: true },
    { applied: false, error: 'nginx -t: bad' },
  ]);
  await applier.apply(shopSnapshot(), 1, false);
  await expect(applier.apply(shopSnapshot(), 2, false)).resolves.toBe('nginx -t: bad');
  await expect(applier.apply(withLoadgen, 3, true)).resolves.toBeUndefined();
  expect(applier.renders()).toBe(3);
  expect(texts).toHaveLength(3);
  expect(inForce).toEqual([shopSnapshot(), withLoadgen]);
});

it('always renders the first snapshot, whatever it is said to change', async () => {
  const { applier, texts } = setup([]);
  await applier.apply(shopSnapshot(), 1, true);
  expect(texts).toHaveLength(1);
  expect(texts[0]).toContain('upstream');
});
