// Properties of injection over many generated pod templates. The generator is a seeded PRNG, so
// a failure names the case that reproduces it.
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import { seededRandom } from '../support/random';
import type {
  InjectionOutcome,
  InjectionSettings,
  PodOwner,
  PodTemplate,
} from '../../src/manifests/inject/types';

const CASES = 600;
const MESH_NAMES = new Set(['nginx-mesh-init', 'nginx-mesh-sidecar']);

class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}

type Json = Record<string, unknown>;

/** Ports no two serving containers share, avoiding the sidecar's reserved range. */
class PortPool {
  private readonly used = new Set<number>();
  constructor(private readonly gen: Gen) {}
  take(): number {
    for (;;) {
      const port = this.gen.chance(0.5)
        ? this.gen.pick([80, 443, 3000, 5432, 8080, 9090])
        : this.gen.int(1, 65535);
      const reserved = port >= 8886 && port <= 8909;
      if (!reserved && !this.used.has(port)) {
        this.used.add(port);
        return port;
      }
    }
  }
}

function genProbe(gen: Gen, ports: readonly Json[]): Json | undefined {
  const kind = gen.int(0, 4);
  if (kind === 0) return undefined;
  if (kind === 1) return { exec: { command: ['true'] } };
  if (kind === 2) return { tcpSocket: { port: 1 }, periodSeconds: gen.int(1, 30) };
  const named = ports.filter((port) => typeof port.name === 'string');
  const port =
    named.length > 0 && gen.chance(0.5)
      ? (gen.pick(named).name as string)
      : ports.length > 0 && gen.chance(0.7)
        ? (gen.pick(ports).containerPort as number)
        : gen.int(1, 8000);
  const httpGet: Json = { port };
  if (gen.chance(0.7)) httpGet.path = `/${gen.pick(['healthz', 'ready', 'live', ''])}`;
  if (gen.chance(0.5)) httpGet.scheme = gen.pick(['HTTP', 'HTTPS']);
  if (gen.chance(0.2)) httpGet.httpHeaders = [{ name: 'X-Probe', value: String(gen.int(0, 9)) }];
  if (gen.chance(0.1)) httpGet.host = 'example.test';
  return { httpGet, ...(gen.chance(0.5) ? { failureThreshold: gen.int(1, 10) } : {}) };
}

function genContainer(gen: Gen, name: string, pool: PortPool | undefined): Json {
  const ports: Json[] = [];
  const count = pool === undefined ? 0 : gen.int(0, 3);
  for (let i = 0; i < count && pool !== undefined; i += 1) {
    const port: Json = { containerPort: pool.take() };
    if (gen.chance(0.5)) port.name = `p${i}-${name}`.slice(0, 15);
    if (gen.chance(0.4)) port.protocol = gen.pick(['TCP', 'UDP']);
    ports.push(port);
  }
  const container: Json = { name, image: `${name}:${gen.int(1, 9)}` };
  if (ports.length > 0 || gen.chance(0.2)) container.ports = ports;
  for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const probe = genProbe(gen, ports);
    if (probe !== undefined) container[field] = probe;
  }
  if (gen.chance(0.2)) container.args = ['--flag', String(gen.int(0, 99))];
  return container;
}

function genPortList(gen: Gen): string {
  const ports = Array.from({ length: gen.int(1, 4) }, () => String(gen.int(1, 65535)));
  return ports
    .map((port) => `${gen.chance(0.3) ? ' ' : ''}${port}${gen.chance(0.3) ? ' ' : ''}`)
    .join(',');
}

function genAnnotations(gen: Gen): Record<string, string> | undefined {
  if (gen.chance(0.3)) return undefined;
  const annotations: Record<string, string> = {};
  if (gen.chance(0.4)) annotations['config.nsm.nginx.com/ignore-incoming-ports'] = genPortList(gen);
  if (gen.chance(0.4)) annotations['config.nsm.nginx.com/ignore-outgoing-ports'] = genPortList(gen);
  if (gen.chance(0.4)) {
    annotations['config.nsm.nginx.com/mtls-mode'] = gen.pick([
      'off',
      'permissive',
      'strict',
      'Strict',
      'bogus',
    ]);
  }
  if (gen.chance(0.3)) {
    annotations['config.nsm.nginx.com/client-max-body-size'] = gen.pick([
      '0',
      '64k',
      '10m',
      '1G',
      'lots',
    ]);
  }
  if (gen.chance(0.3)) {
    annotations['config.nsm.nginx.com/default-egress-allowed'] = gen.pick(['true', 'false', 'yes']);
  }
  if (gen.chance(0.3)) annotations.team = 'payments';
  return annotations;
}

/** Settings consistent with the annotations, so every generated case is injectable. */
function genSettings(gen: Gen, annotations: Record<string, string> | undefined): InjectionSettings {
  const podMtls = annotations?.['config.nsm.nginx.com/mtls-mode']?.toLowerCase();
  const strictAllowed = podMtls === undefined || podMtls === 'strict' || podMtls === 'bogus';
  const outgoingAnnotated =
    annotations?.['config.nsm.nginx.com/ignore-outgoing-ports'] !== undefined;
  return {
    meshNamespace: gen.pick(['nginx-mesh', 'mesh-system']),
    sidecarImage: 'registry.test/nginx-mesh-sidecar:1',
    initImage: 'registry.test/nginx-mesh-init:1',
    imagePullPolicy: gen.pick(['Always', 'IfNotPresent', 'Never'] as const),
    mtlsMode:
      strictAllowed && gen.chance(0.3) ? 'strict' : gen.pick(['off', 'permissive'] as const),
    enableUdp: gen.chance(0.3),
    nativeSidecar: gen.chance(0.5),
    registryKeyName: gen.chance(0.4) ? 'nginx-mesh-registry-key' : undefined,
    ignoreOutgoingPorts: !outgoingAnnotated && gen.chance(0.3) ? [gen.int(1, 65535)] : undefined,
  };
}

function genCase(seed: number): {
  template: PodTemplate;
  owner: PodOwner;
  settings: InjectionSettings;
} {
  const gen = new Gen(seed);
  const pool = new PortPool(gen);
  const containers = Array.from({ length: gen.int(1, 4) }, (_, i) =>
    genContainer(gen, `app-${i}`, pool),
  );
  const initContainers = Array.from({ length: gen.int(0, 3) }, (_, i) => {
    const native = gen.chance(0.4);
    const container = genContainer(gen, `init-${i}`, native ? pool : undefined);
    return native ? { ...container, restartPolicy: 'Always' } : container;
  });
  const annotations = genAnnotations(gen);
  const spec: Json = { containers };
  if (initContainers.length > 0 || gen.chance(0.1)) spec.initContainers = initContainers;
  if (gen.chance(0.4)) spec.volumes = [{ name: 'data', emptyDir: {} }];
  if (gen.chance(0.3))
    spec.imagePullSecrets = [{ name: gen.pick(['mine', 'nginx-mesh-registry-key']) }];
  if (gen.chance(0.3)) spec.serviceAccountName = 'web';
  const metadata: Json = { labels: { app: 'web' } };
  if (annotations !== undefined) metadata.annotations = annotations;
  const settings = genSettings(gen, annotations);
  const owner = { kind: gen.pick(['deployment', 'statefulset', 'job', 'pod']), name: `w${seed}` };
  return { template: { metadata, spec }, owner, settings };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const entry of Object.values(value)) deepFreeze(entry);
    Object.freeze(value);
  }
  return value;
}

/** A YAML printer turns an object reachable twice into an anchor and an alias; none may be. */
function expectNoSharedObjects(root: unknown): void {
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    if (seen.has(value)) throw new Error(`shared object in output: ${JSON.stringify(value)}`);
    seen.add(value);
    for (const entry of Object.values(value)) visit(entry);
  };
  visit(root);
}

function names(list: unknown): string[] {
  return (list as Json[] | undefined)?.map((c) => c.name as string) ?? [];
}

interface Tally {
  probesRewritten: number;
  native: number;
  userNativeSidecars: number;
  annotatedPorts: number;
  warnings: number;
}

function checkCase(seed: number, tally: Tally): void {
  const { template, owner, settings } = genCase(seed);
  const frozen = deepFreeze(structuredClone(template));
  const outcome: InjectionOutcome = injectPodTemplate(frozen, owner, settings, owner.name);
  if (outcome.status !== 'injected') throw new Error(`not injected: ${JSON.stringify(outcome)}`);
  expect(frozen).toEqual(template);

  expectNoSharedObjects(outcome.template);

  const again = injectPodTemplate(structuredClone(template), owner, settings, owner.name);
  expect(JSON.stringify(again)).toBe(JSON.stringify(outcome));

  expect(injectPodTemplate(outcome.template, owner, settings, owner.name).status).toBe('unchanged');

  const spec = outcome.template.spec as Json;
  const containers = spec.containers as Json[];
  const initContainers = spec.initContainers as Json[];
  const inSpec = template.spec as Json;
  expect(names(containers).filter((n) => !MESH_NAMES.has(n))).toEqual(names(inSpec.containers));
  expect(names(initContainers).filter((n) => !MESH_NAMES.has(n))).toEqual(
    names(inSpec.initContainers),
  );

  const allNames = [...names(containers), ...names(initContainers)];
  expect(new Set(allNames).size).toBe(allNames.length);

  const running = [...containers, ...initContainers.filter((c) => c.restartPolicy === 'Always')];
  const ports = running.flatMap((c) =>
    ((c.ports as Json[] | undefined) ?? []).map((p) => p.containerPort),
  );
  expect(new Set(ports).size).toBe(ports.length);

  const init = initContainers.find((c) => c.name === 'nginx-mesh-init');
  const args = (init?.args as string[] | undefined) ?? [];
  const flagAt = args.indexOf('--ignore-incoming-ports');
  expect(args.slice(0, 3)).toEqual(['run', '--role', 'init']);
  expect(flagAt).toBe(settings.enableUdp ? 4 : 3);
  expect(args[flagAt + 1]?.split(',')[0]).toBe('8887');
  expect(args.filter((arg) => arg === '--ignore-incoming-ports')).toHaveLength(1);
  const ignored = args[flagAt + 1]?.split(',') ?? [];
  expect(new Set(ignored).size).toBe(ignored.length);

  if (ignored.includes('8895')) tally.probesRewritten += 1;
  if (settings.nativeSidecar) tally.native += 1;
  if (running.length > containers.length) tally.userNativeSidecars += 1;
  if (ignored.length > (ignored.includes('8895') ? 3 : 1)) tally.annotatedPorts += 1;
  if (outcome.warnings.length > 0) tally.warnings += 1;
}

describe('injection over generated pod templates', () => {
  it(`holds its properties for ${CASES} seeded cases`, () => {
    const tally: Tally = {
      probesRewritten: 0,
      native: 0,
      userNativeSidecars: 0,
      annotatedPorts: 0,
      warnings: 0,
    };
    for (let seed = 1; seed <= CASES; seed += 1) {
      try {
        checkCase(seed, tally);
      } catch (error) {
        throw new Error(`seed ${seed}: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
      }
    }
    // The generator must actually exercise each feature, or the properties say little.
    for (const count of Object.values(tally)) expect(count).toBeGreaterThan(CASES / 20);
  });
});
