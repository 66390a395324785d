// The agent's step from snapshot to nginx configuration: a change nginx does not read (peers)
// is in force without a render once the configuration before it runs, and rendered again after
// nginx refused the last one.
import type { ApplyOutcome } from '../../src/runtime/agent/config-applier';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import type { MeshSnapshot, SnapshotRateLimit } from '../../src/manifests/snapshot/types';
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
    check: () => Promise.resolve({ accepted: true }),
    onApplied: (snapshot) => inForce.push(snapshot),
  });
  return { applier, texts, inForce };
}

/**
 * count RateLimits r00, r01, … on shop/web-1, each matching path /p<index>, except that those
 * bad picks carry a pattern nginx refuses.
 */
function rateLimitsOnWeb(
  count: number,
  bad: (index: number) => boolean,
): Record<string, SnapshotRateLimit> {
  const limits: Record<string, SnapshotRateLimit> = {};
  for (let index = 0; index < count; index += 1) {
    const name = `r${String(index).padStart(2, '0')}`;
    limits[`shop/${name}`] = {
      namespace: 'shop',
      name,
      destinationPods: ['shop/web-1'],
      sourceIps: [],
      rate: index + 1,
      per: 's',
      burst: 0,
      delay: 0,
      matches: [
        { name: 'm', methods: [], pathRegex: bad(index) ? 'BAD(' : `/p${index}`, headers: {} },
      ],
    };
  }
  return limits;
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

describe('a configuration nginx refuses because of policy objects', () => {
  /** A fake nginx that refuses any configuration holding the text "BAD(". */
  const refuses = (text: string): string | undefined =>
    text.includes('BAD(')
      ? 'nginx rejected nginx.conf.new: pcre2_compile() failed: missing )'
      : undefined;

  const split = (name: string, root: string, pathRegex: string) => ({
    [`shop/${name}`]: {
      namespace: 'shop',
      name,
      service: root,
      backends: [{ service: 'shop/web', weight: 1 }],
      matches: [{ name: 'm', methods: [], pathRegex, headers: {} }],
    },
  });

  function nginxSetup(maxChecks?: number) {
    const applied: string[] = [];
    let checks = 0;
    const applier = createSnapshotApplier({
      context: shopContext(),
      logger,
      apply: (text) => {
        const error = refuses(text);
        if (error !== undefined) return Promise.resolve({ applied: false, error, rejected: true });
        applied.push(text);
        return Promise.resolve({ applied: true });
      },
      check: (text) => {
        checks += 1;
        const error = refuses(text);
        return Promise.resolve(
          error === undefined ? { accepted: true } : { accepted: false, error },
        );
      },
      onApplied: () => undefined,
      ...(maxChecks === undefined ? {} : { maxChecks }),
    });
    return { applier, applied, checks: () => checks };
  }

  const good = split('good', 'shop/api', '/v2/.*');
  const bad = split('bad', 'shop/db', 'BAD(');

  it('applies the rest of the generation and names the object it left out', async () => {
    const { applier, applied, checks } = nginxSetup();
    const snapshot = shopSnapshot({
      trafficSplits: { ...good, ...bad },
      services: {
        ...shopSnapshot().services,
        'shop/db': {
          ...shopSnapshot().services['shop/db']!,
          ports: [{ name: 'http', port: 80, protocol: 'TCP', kind: 'http' }],
          endpoints: [
            { address: '10.1.0.9', ports: { http: 80 }, pod: 'shop/db-0', identity: 'shop/db' },
          ],
        },
      },
    });
    const error = await applier.apply(snapshot, 7, false);
    expect(error).toBe(
      'left out TrafficSplit shop/bad, which nginx refused (nginx rejected nginx.conf.new: pcre2_compile() failed: missing ))',
    );
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain('/v2/.*');
    expect(applied[0]).not.toContain('BAD(');
    expect(checks()).toBeLessThanOrEqual(3);
    // A change nginx does not read keeps saying what is left out.
    await expect(applier.apply(snapshot, 8, true)).resolves.toBe(error);
    // A generation that fixes the object is applied whole.
    const fixed = { ...snapshot, trafficSplits: { ...good, ...split('bad', 'shop/db', '/fixed') } };
    await expect(applier.apply(fixed, 9, false)).resolves.toBeUndefined();
    expect(applied.at(-1)).toContain('/fixed');
  });

  it('finds several refused objects among many within its budget of nginx -t runs', async () => {
    const { applier, applied, checks } = nginxSetup();
    const splits = {};
    for (let index = 0; index < 64; index += 1)
      Object.assign(
        splits,
        split(
          `s${String(index).padStart(2, '0')}`,
          'shop/api',
          index === 9 || index === 50 ? 'BAD(' : `/p${index}`,
        ),
      );
    // One root port takes one split; RateLimits on this pod carry the rest.
    const limits = rateLimitsOnWeb(64, (index) => index === 9 || index === 50);
    const error = await applier.apply(
      shopSnapshot({ rateLimits: limits, trafficSplits: splits }),
      1,
      false,
    );
    expect(error).toMatch(
      /^left out RateLimit shop\/r09, RateLimit shop\/r50, which nginx refused \(/,
    );
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain('/p63');
    expect(checks()).toBeLessThanOrEqual(24);
  });

  it('leaves out what it could not check once its budget is spent, and still applies', async () => {
    const { applier, applied, checks } = nginxSetup(4);
    const limits = rateLimitsOnWeb(16, (index) => index % 4 === 3);
    const error = await applier.apply(shopSnapshot({ rateLimits: limits }), 1, false);
    // Without any, 8 (refused), 4 (refused), 2 (accepted): r00 and r01 are kept.
    expect(checks()).toBe(4);
    expect(error).toBe('left out 14 more policy object(s) not checked within 4 nginx -t runs');
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain('/p1');
    expect(applied[0]).not.toContain('/p2');
  });

  it('keeps the last configuration when nginx refuses even without any policy object', async () => {
    const applier = createSnapshotApplier({
      context: shopContext(),
      logger,
      apply: () =>
        Promise.resolve({ applied: false, error: 'nginx rejected: no memory', rejected: true }),
      check: () => Promise.resolve({ accepted: false, error: 'nginx rejected: no memory' }),
      onApplied: () => undefined,
    });
    await expect(applier.apply(shopSnapshot({ trafficSplits: good }), 1, false)).resolves.toBe(
      'nginx rejected: no memory',
    );
  });
});

describe('endpoints within the slots of the configuration in force', () => {
  /** shop/api with n endpoints. */
  function apiWith(n: number): MeshSnapshot {
    const base = shopSnapshot();
    const api = base.services['shop/api'];
    if (api === undefined) throw new Error('shop/api missing');
    const endpoints = Array.from({ length: n }, (_, index) => ({
      ...(api.endpoints[0] ?? { address: '', ports: {} }),
      address: `10.1.9.${index + 1}`,
      pod: `shop/api-${index}`,
    }));
    return { ...base, services: { ...base.services, 'shop/api': { ...api, endpoints } } };
  }

  it('hands the applier the same text with new members, and new slots only once applied', async () => {
    const applied: { text: string; members: string | undefined }[] = [];
    const outcomes: ApplyOutcome[] = [];
    const applier = createSnapshotApplier({
      context: shopContext(),
      logger,
      apply: (text, _label, members) => {
        applied.push({ text, members });
        return Promise.resolve(outcomes.shift() ?? { applied: true });
      },
      check: () => Promise.resolve({ accepted: true }),
      onApplied: () => undefined,
    });
    await applier.apply(apiWith(2), 1, false);
    await applier.apply(apiWith(3), 2, false);
    await applier.apply(apiWith(4), 3, false);
    expect(applied[1]?.text).toBe(applied[0]?.text);
    expect(applied[2]?.text).toBe(applied[0]?.text);
    expect(applied[1]?.members).toContain('10.1.9.3:8080');
    expect(applied[1]?.members).not.toBe(applied[0]?.members);
    // 5 endpoints outgrow the 4 slots; the text with room for them is not applied...
    outcomes.push({ applied: false, error: 'reload failed' });
    await applier.apply(apiWith(5), 4, false);
    expect(applied[3]?.text).not.toBe(applied[0]?.text);
    // ...so 3 endpoints still fit the slots of the text in force
    await applier.apply(apiWith(3), 5, false);
    expect(applied[4]?.text).toBe(applied[0]?.text);
  });
});
