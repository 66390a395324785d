// Malformed mesh policies for the fuzz attack: objects the API server's CRD schemas accept but
// the mesh must not (invalid regexes, nginx syntax smuggled into strings, unknown Services, zero
// or absurd weights and rates). Deterministic: the same seed gives the same objects, so a failure
// can be replayed. Every object carries at least one defect and the label fuzz=true.

import { seededRandom } from '../support/random';

export interface FuzzObject {
  /** "<kind>/<name>", as the tier reports it. */
  readonly id: string;
  readonly object: object;
  /** What is wrong with it, for a reader of a failure. */
  readonly defect: string;
}

export interface FuzzOptions {
  readonly seed: number;
  readonly count: number;
  readonly namespace: string;
  /** Services that exist in namespace (a policy naming only these is still given a defect). */
  readonly services: readonly string[];
}

/** Regexes PCRE (nginx) refuses to compile. */
const BAD_REGEXES = [
  '(',
  ')|(.*',
  '[a-',
  '*x',
  'a{2,1}',
  '(?<n>a)(?<n>b)',
  '\\',
  '(?P<>x)',
  '[[:nope:]]',
  'a**',
];
/** Strings that would end an nginx directive or block if rendered unquoted. */
const SMUGGLED = ['/a";}', '/x;\n}\nserver {', '/${host}', "/'$(id)'", '/\u0000', '/a b;', '/{}'];
const ODD = ['\u202e', '\u00ff', '\ud83d\ude00', '"', '\\', ';', '{', '}', '$', '#', '\t'];

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function oddText(random: () => number, length: number): string {
  return Array.from({ length }, () => pick(random, ODD)).join('');
}

function routeGroup(random: () => number, name: string, namespace: string): FuzzObject {
  const smuggle = random() < 0.3;
  const pathRegex = smuggle ? pick(random, SMUGGLED) : pick(random, BAD_REGEXES);
  const headerRegex =
    random() < 0.5 ? { headers: { [`x-${name}`]: pick(random, BAD_REGEXES) } } : {};
  const object = {
    apiVersion: 'specs.smi-spec.io/v1alpha3',
    kind: 'HTTPRouteGroup',
    metadata: { name, namespace, labels: { fuzz: 'true' } },
    spec: { matches: [{ name: `m${oddText(random, 3)}`, pathRegex, ...headerRegex }] },
  };
  return { id: `HTTPRouteGroup/${name}`, object, defect: `pathRegex ${JSON.stringify(pathRegex)}` };
}

function trafficSplit(random: () => number, name: string, namespace: string): FuzzObject {
  const variant = Math.floor(random() * 3);
  const backends =
    variant === 0
      ? [{ service: `nosuch-${name}`, weight: 100 }]
      : variant === 1
        ? [
            { service: `nosuch-${name}`, weight: 0 },
            { service: `nosuch2-${name}`, weight: 0 },
          ]
        : [
            {
              service: `nosuch-${name}`,
              weight: Number.MAX_SAFE_INTEGER - Math.floor(random() * 1000),
            },
          ];
  const object = {
    apiVersion: 'split.smi-spec.io/v1alpha3',
    kind: 'TrafficSplit',
    metadata: { name, namespace, labels: { fuzz: 'true' } },
    spec: { service: `nosuch-root-${name}`, backends },
  };
  return {
    id: `TrafficSplit/${name}`,
    object,
    defect: `unknown Services, weights ${backends.map((each) => each.weight).join('/')}`,
  };
}

function rateLimit(random: () => number, name: string, namespace: string): FuzzObject {
  const rate = random() < 0.5 ? '0r/s' : `${'9'.repeat(15 + Math.floor(random() * 10))}r/m`;
  const object = {
    apiVersion: 'specs.smi.nginx.com/v1alpha2',
    kind: 'RateLimit',
    metadata: { name, namespace, labels: { fuzz: 'true' } },
    spec: {
      destination: { kind: 'Service', name: `nosuch-${name}`, namespace },
      name: `limit${oddText(random, 2)}`,
      rate,
      burst: Math.floor(random() * Number.MAX_SAFE_INTEGER),
    },
  };
  return { id: `RateLimit/${name}`, object, defect: `unknown destination, rate ${rate}` };
}

/** count malformed objects, a third of each kind, named fuzz-<kind>-<index>. */
export function generateFuzzObjects(options: FuzzOptions): FuzzObject[] {
  const random = seededRandom(options.seed);
  const makers = [
    ['route', routeGroup],
    ['split', trafficSplit],
    ['limit', rateLimit],
  ] as const;
  return Array.from({ length: options.count }, (_, index) => {
    const [short, make] = makers[index % makers.length] ?? makers[0];
    return make(random, `fuzz-${short}-${index}`, options.namespace);
  });
}
