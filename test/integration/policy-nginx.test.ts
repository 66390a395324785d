// What policies hand to nginx, against the real nginx: every regex the controller accepts
// compiles in Debian's nginx (PCRE2), the survivors of a generated corpus of hostile and random
// policies pass `nginx -t`, and an agent given a configuration nginx refuses (a snapshot that
// never went through the controller's checks) applies the rest of it, naming what it left out.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSnapshot } from '../../src/manifests/snapshot/build';
import type { ClusterState } from '../../src/manifests/snapshot/build';
import type { MeshSnapshot, SnapshotHttpMatch } from '../../src/manifests/snapshot/types';
import { renderSidecarConfig } from '../../src/render/sidecar';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { createJsonLogger } from '../../src/runtime/role/log';
import { SETTINGS } from '../support/kube-objects';
import {
  badObjects,
  generatedShopPolicies,
  goodPolicies,
  shopCluster,
} from '../support/policy-fuzz';
import { ACCEPTED } from '../support/policy-regexes';
import { buildMeshModule, prepareSidecarDir, writeSidecarConfig } from '../support/sidecar-dir';
import { shopContext, shopSnapshot } from '../support/sidecar-snapshots';

let dir: string;
let meshModule: string;

beforeAll(() => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('policy-nginx-');
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** nginx -t of a configuration (which reads no members file: an empty one will do). */
function nginxTest(text: string): void {
  const config = writeSidecarConfig(dir, meshModule, text);
  execFileSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', config], { stdio: 'pipe' });
}

const deny = (snapshot: MeshSnapshot): MeshSnapshot => ({
  ...snapshot,
  mesh: { ...snapshot.mesh, accessControlMode: 'deny' },
});

/** A TrafficTarget to web-1 from api holding these matches. */
function targetWith(matches: SnapshotHttpMatch[]): MeshSnapshot['trafficTargets'] {
  return {
    'shop/fuzz': {
      namespace: 'shop',
      name: 'fuzz',
      destination: 'shop/web',
      sources: ['shop/api'],
      httpMatches: matches,
      tcp: false,
    },
  };
}

it('compiles every accepted regex, as a path and as a header value', () => {
  const matches = ACCEPTED.map((pattern, index) => ({
    name: `m${index}`,
    methods: [],
    pathRegex: pattern,
    headers: { 'x-a': pattern },
  }));
  const { text } = renderSidecarConfig(
    deny(shopSnapshot({ trafficTargets: targetWith(matches) })),
    shopContext(),
  );
  expect(text).toContain('"~^(?:/api/(?:users|orders)/\\\\d{1,8})$" 1;');
  expect(() => nginxTest(text)).not.toThrow();
});

it('passes nginx -t with what survives a corpus of generated and hostile policies', () => {
  const generated = generatedShopPolicies(7, 300);
  const base: ClusterState = { ...shopCluster(), ...goodPolicies() };
  const merged: Record<string, unknown> = {
    ...base,
    httpRouteGroups: [...base.httpRouteGroups, ...(generated.httpRouteGroups ?? [])],
    trafficTargets: [...base.trafficTargets, ...(generated.trafficTargets ?? [])],
  };
  const bad = badObjects(7, 200);
  for (const { collection, object } of bad)
    merged[collection] = [...(merged[collection] as unknown[]), object];
  const started = process.hrtime.bigint();
  const outcome = buildSnapshot(merged as unknown as ClusterState, SETTINGS);
  const buildMs = Number(process.hrtime.bigint() - started) / 1e6;
  const { text } = renderSidecarConfig(deny(outcome.snapshot), shopContext());
  const checked = process.hrtime.bigint();
  expect(() => nginxTest(text)).not.toThrow();
  const checkMs = Number(process.hrtime.bigint() - checked) / 1e6;
  const survivors = Object.keys(outcome.snapshot.trafficTargets).length;
  const regexes = (text.match(/"?~/g) ?? []).length;
  // Some generated patterns stray outside the subset; the rest must be in the configuration.
  expect(survivors).toBeGreaterThan(150);
  expect(regexes).toBeGreaterThan(150);
  process.stderr.write(
    `policy corpus: ${300 * 2 + bad.length} objects, ${outcome.problems.length} problems, ` +
      `${survivors} TrafficTargets kept, ${regexes} regexes rendered, build ${buildMs.toFixed(0)} ms, ` +
      `nginx -t ${checkMs.toFixed(0)} ms\n`,
  );
}, 60_000);

describe('an agent whose configuration nginx refuses', () => {
  const logger = createJsonLogger({
    level: 'error',
    out: { write: () => undefined },
    now: () => new Date(0),
  });

  it('applies the generation without the refused objects, then whole once they are fixed', async () => {
    const runDir = prepareSidecarDir('policy-agent-');
    const context = shopContext({
      modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
      runDir,
      svidFile: join(runDir, 'svid.pem'),
      bundleFile: join(runDir, 'bundle.crt'),
    });
    const paths = { nginx: 'nginx', prefix: runDir, config: join(runDir, 'nginx.conf') };
    let reloads = 0;
    const applier = createConfigApplier({
      paths,
      supervisor: { reload: () => Promise.resolve(void (reloads += 1)) },
      logger,
    });
    const snapshots = createSnapshotApplier({
      context,
      logger,
      apply: (text, label) => applier.apply(text, label),
      check: (text) => applier.check(text),
      onApplied: () => undefined,
    });
    const match = (pathRegex: string): SnapshotHttpMatch[] => [
      { name: 'm', methods: [], pathRegex, headers: {} },
    ];
    const limits: Record<string, MeshSnapshot['rateLimits'][string]> = {};
    for (let index = 0; index < 40; index += 1) {
      const name = `r${String(index).padStart(2, '0')}`;
      limits[`shop/${name}`] = {
        namespace: 'shop',
        name,
        destinationPods: ['shop/web-1'],
        sourceIps: [`10.9.0.${index}`],
        rate: 10,
        per: 's',
        burst: 0,
        delay: 0,
        // Straight from a snapshot, past the controller's checks: "(" cannot compile.
        matches: match(index === 17 ? '/v1/(' : `/limited/${index}`),
      };
    }
    const broken = deny(
      shopSnapshot({ rateLimits: limits, trafficTargets: targetWith(match('/items/[0-9]+')) }),
    );
    const started = process.hrtime.bigint();
    const error = await snapshots.apply(broken, 1, false);
    const isolateMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(error).toMatch(
      /^left out RateLimit shop\/r17, which nginx refused \(nginx rejected .*pcre2?_compile\(\) failed: missing/,
    );
    expect(error?.length).toBeLessThanOrEqual(512);
    expect(error).not.toContain('\n');
    const live = applier.current();
    expect(live).toContain('/limited/39');
    expect(live).toContain('/items/[0-9]+');
    expect(live).not.toContain('/v1/(');
    expect(reloads).toBe(1);
    expect(() => nginxTest(live)).not.toThrow();

    const fixed = {
      ...broken,
      rateLimits: {
        ...limits,
        'shop/r17': { ...limits['shop/r17']!, matches: match('/v1/fixed') },
      },
    };
    await expect(snapshots.apply(fixed, 2, false)).resolves.toBeUndefined();
    expect(applier.current()).toContain('/v1/fixed');
    expect(reloads).toBe(2);
    process.stderr.write(
      `agent isolation: 41 policy objects, 1 refused, found and applied in ${isolateMs.toFixed(0)} ms\n`,
    );
    rmSync(runDir, { recursive: true, force: true });
  }, 60_000);
});
