// Generated policy objects for the hostile-tenant fuzz tests: a small meshed cluster (namespace
// shop: web, api, db), good policies of the shop, and malformed-but-plausible SMI and NSM objects
// from other namespaces, each bad in one known way. Deterministic for a seed. The regexes come
// from a grammar that covers the accepted PCRE2 subset and strays outside it at a known rate.
import type { ClusterState, KubeObject } from '../../src/manifests/snapshot/build';
import {
  circuitBreaker,
  endpointSlice,
  pod,
  rateLimit,
  routeGroup,
  service,
  state,
  tcpRoute,
  trafficSplit,
  trafficTarget,
} from './kube-objects';
import { seededRandom } from './random';

/** A generator of choices from one seed. */
export class Dice {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = seededRandom(seed);
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)] as T;
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

const LITERALS = 'abcxyz019/-_~%@!,=:# ';
const ESCAPED = '.*+?()[]{}|^$/\\-';

/** A pattern from the grammar of the accepted subset (it may still be too large or deep). */
export function grammarRegex(dice: Dice, depth = 0): string {
  const alternatives = 1 + (dice.chance(0.2) ? dice.int(3) : 0);
  const parts: string[] = [];
  for (let alternative = 0; alternative < alternatives; alternative += 1) {
    let sequence = '';
    const length = 1 + dice.int(5);
    for (let index = 0; index < length; index += 1) {
      sequence += atom(dice, depth) + quantifier(dice);
    }
    parts.push(sequence);
  }
  const anchored = dice.chance(0.1) ? `^${parts.join('|')}` : parts.join('|');
  return dice.chance(0.1) ? `${anchored}$` : anchored;
}

function atom(dice: Dice, depth: number): string {
  switch (dice.int(depth < 3 ? 7 : 5)) {
    case 0:
      return `\\${dice.pick([...ESCAPED])}`;
    case 1:
      return dice.pick(['.', '\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '\\x41', '\\t']);
    case 2: {
      const members = dice.pick(['a-z', '0-9', 'A-F', '/_-', '\\d\\s', '^/', '^a-c.', '\\]\\[']);
      return `[${members}]`;
    }
    case 5:
      return `(${dice.chance(0.5) ? '?:' : ''}${grammarRegex(dice, depth + 1)})`;
    case 6:
      return `(?:${grammarRegex(dice, depth + 1)})`;
    default:
      return dice.pick([...LITERALS]);
  }
}

function quantifier(dice: Dice): string {
  if (!dice.chance(0.3)) return '';
  const base = dice.pick(['*', '+', '?', '{2}', '{1,3}', '{0,}', '{4,40}']);
  return dice.chance(0.2) ? `${base}?` : base;
}

/** Ways a pattern is made refusable: each result is outside the subset whatever `good` is. */
export const BREAK_REGEX: readonly ((good: string) => string)[] = [
  (good) => `${good}(`,
  (good) => `)|(${good}`,
  (good) => `(?=${good})`,
  (good) => `(?<name>${good})`,
  (good) => `(a)${good}\\1`,
  (good) => `${good}"; }`,
  (good) => `${good}\n`,
  (good) => `*${good}`,
  (good) => `${good}{3,2}`,
  (good) => `${good}[z-a]`,
  (good) => `${good}$host`,
  (good) => `${good}\\`,
  (good) => `[[:alpha:]]${good}`,
  (good) => `${good}'`,
  (good) => `${good}\\p{L}`,
  (good) => `x{1001}${good}`,
  (good) => `${'('.repeat(40)}${good}${')'.repeat(40)}`,
];

/** The shop every fuzz run shares; web-1 is the sidecar whose configuration is rendered. */
export function shopCluster(): ClusterState {
  const slice = (name: string, ips: [string, string][]) =>
    endpointSlice(
      'shop',
      name,
      ips.map(([address, podName]) => ({ address, pod: podName })),
    );
  return state({
    services: [service('shop', 'web'), service('shop', 'web-v2'), service('shop', 'api')],
    endpointSlices: [
      slice('web', [['198.18.0.11', 'web-1']]),
      slice('web-v2', [['198.18.0.12', 'web-v2-1']]),
      slice('api', [['198.18.0.21', 'api-1']]),
    ],
    pods: [
      pod('shop', 'web-1', {
        ip: '198.18.0.11',
        serviceAccount: 'web',
        labels: { 'nsm.nginx.com/deployment': 'web' },
      }),
      pod('shop', 'web-v2-1', { ip: '198.18.0.12', serviceAccount: 'web' }),
      pod('shop', 'api-1', {
        ip: '198.18.0.21',
        serviceAccount: 'api',
        labels: { 'nsm.nginx.com/deployment': 'api' },
      }),
    ],
    tcpRoutes: [tcpRoute('shop', 'any')],
  });
}

/** The shop's own, valid policies. */
export function goodPolicies(): Partial<ClusterState> {
  return {
    httpRouteGroups: [
      routeGroup('shop', 'api', [
        { name: 'read', methods: ['GET'], pathRegex: '/items/[0-9]+' },
        { name: 'admin', headers: { 'x-role': '^admin$' } },
      ]),
    ],
    trafficTargets: [
      trafficTarget('shop', 'api-to-web', {
        destination: { kind: 'ServiceAccount', name: 'web' },
        sources: [{ kind: 'ServiceAccount', name: 'api' }],
        rules: [{ kind: 'HTTPRouteGroup', name: 'api' }],
      }),
    ],
    trafficSplits: [
      trafficSplit('shop', 'web-canary', {
        service: 'web',
        backends: [
          { service: 'web', weight: 90 },
          { service: 'web-v2', weight: 10 },
        ],
        matches: [{ kind: 'HTTPRouteGroup', name: 'api' }],
      }),
    ],
    rateLimits: [
      rateLimit('shop', 'web-limit', {
        destination: { kind: 'Deployment', name: 'web' },
        rate: '10r/s',
        burst: 5,
        rules: [{ kind: 'HTTPRouteGroup', name: 'api', matches: ['read'] }],
      }),
    ],
    circuitBreakers: [
      circuitBreaker('shop', 'api-breaker', {
        destination: { kind: 'Service', name: 'api' },
        errors: 3,
        timeoutSeconds: 30,
      }),
    ],
  };
}

/** A bad object and the kind the problem must name. */
export interface BadObject {
  readonly collection: keyof Pick<
    ClusterState,
    'httpRouteGroups' | 'trafficTargets' | 'trafficSplits' | 'rateLimits' | 'circuitBreakers'
  >;
  readonly object: KubeObject;
}

/**
 * `count` objects, each bad in one way, in tenant namespaces t0..t9 (objects in t* that name
 * shop's workloads are bad because they cross namespaces). Names are unique.
 */
export function badObjects(seed: number, count: number): BadObject[] {
  const dice = new Dice(seed);
  const objects: BadObject[] = [];
  for (let index = 0; index < count; index += 1) {
    const namespace = `t${index % 10}`;
    const name = `bad-${index}`;
    objects.push(badObject(dice, namespace, name));
  }
  return objects;
}

function badRegex(dice: Dice): string {
  return dice.pick(BREAK_REGEX)(grammarRegex(dice));
}

function badMatch(dice: Dice): Record<string, unknown> {
  switch (dice.int(6)) {
    case 0:
      return { name: 'm', pathRegex: badRegex(dice) };
    case 1:
      return { name: 'm', headers: { 'x-a': badRegex(dice) } };
    case 2:
      return { name: 'm', headers: { [dice.pick(['x a', '', 'x_a', 'é', 'a:b'])]: '.*' } };
    case 3:
      return { name: 'm', headers: { 'X-A': 'a', 'x-a': 'b' } };
    case 4:
      return {
        name: 'm',
        methods: [dice.pick(['~GET', 'GET POST', '', 'G;T', 7, 'X'.repeat(40)])],
      };
    default:
      return { methods: ['GET'] };
  }
}

function badObject(dice: Dice, namespace: string, name: string): BadObject {
  const ownRule = [{ kind: 'HTTPRouteGroup', name: 'nope' }];
  switch (dice.int(5)) {
    case 0:
      return {
        collection: 'httpRouteGroups',
        object: routeGroup(namespace, name, [{ name: 'ok', pathRegex: '/ok' }, badMatch(dice)]),
      };
    case 1:
      return {
        collection: 'trafficTargets',
        object: trafficTarget(
          namespace,
          name,
          dice.pick([
            { destination: { kind: 'ServiceAccount', name: 'web', namespace: 'shop' } },
            { destination: { kind: 'Deployment', name: 'web' } },
            { destination: { kind: 'ServiceAccount', name: 'web', port: 70000 } },
            { destination: { kind: 'ServiceAccount', name: 'web' }, rules: ownRule },
            { destination: { kind: 'ServiceAccount' } },
          ]),
        ),
      };
    case 2:
      return {
        collection: 'trafficSplits',
        object: trafficSplit(
          namespace,
          name,
          dice.pick([
            { service: 'web', backends: [{ service: 'web', weight: 1 }] },
            { backends: [] },
            { service: '../shop/web', backends: [{ service: 'x', weight: -1 }] },
          ]),
        ),
      };
    case 3:
      return {
        collection: 'rateLimits',
        object: rateLimit(
          namespace,
          name,
          dice.pick([
            { destination: { kind: 'Deployment', name: 'web', namespace: 'shop' }, rate: '1r/m' },
            {
              destination: { kind: 'Deployment', name: 'web' },
              rate: dice.pick(['0r/s', '10r/h', 'x', 5]),
            },
            { destination: { kind: 'Job', name: 'web' }, rate: '1r/s' },
            { destination: { kind: 'Deployment', name: 'web' }, rate: '1r/s', burst: -1 },
            { destination: { kind: 'Deployment', name: 'web' }, rate: '1r/s', delay: 'soon' },
          ]),
        ),
      };
    default:
      return {
        collection: 'circuitBreakers',
        object: circuitBreaker(
          namespace,
          name,
          dice.pick([
            {
              destination: { kind: 'Service', name: 'api', namespace: 'shop' },
              errors: 1,
              timeoutSeconds: 1,
            },
            { destination: { kind: 'Service', name: 'gone' }, errors: 1, timeoutSeconds: 1 },
            { destination: { kind: 'Pod', name: 'api' }, errors: 1, timeoutSeconds: 1 },
            { destination: { kind: 'Service', name: 'api' }, errors: -1, timeoutSeconds: '5' },
          ]),
        ),
      };
  }
}

/**
 * `count` HTTPRouteGroups of the shop with grammar regexes (some outside the subset), and a
 * TrafficTarget to web for each, so that every surviving match is in web-1's configuration.
 */
export function generatedShopPolicies(seed: number, count: number): Partial<ClusterState> {
  const dice = new Dice(seed);
  const groups: KubeObject[] = [];
  const targets: KubeObject[] = [];
  for (let index = 0; index < count; index += 1) {
    const name = `g${index}`;
    const header = dice.pick(['x-a', 'X-Tenant', 'user-agent', 'accept']);
    groups.push(
      routeGroup('shop', name, [
        {
          name: 'm',
          methods: [dice.pick(['GET', 'post', 'PROPFIND', '*', 'VERSION-CONTROL'])],
          pathRegex: grammarRegex(dice),
          ...(dice.chance(0.5) ? { headers: { [header]: grammarRegex(dice) } } : {}),
        },
      ]),
    );
    targets.push(
      trafficTarget('shop', `to-web-${index}`, {
        destination: { kind: 'ServiceAccount', name: 'web' },
        sources: [{ kind: 'ServiceAccount', name: 'api' }],
        rules: [{ kind: 'HTTPRouteGroup', name, matches: ['m'] }],
      }),
    );
  }
  return { httpRouteGroups: groups, trafficTargets: targets };
}
