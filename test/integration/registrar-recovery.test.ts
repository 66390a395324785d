// The registrar through faults of the Kubernetes API and of time: its real SVID API over HTTPS on
// loopback and its real keys, with the CA Secret, the bundle ConfigMaps and the token reviews
// kept in memory (an "unreachable" API answers as @kubernetes/client-node does when the
// connection is refused), and a clock the test moves: timers on a monotonic count, wall time
// able to jump as a stepped system clock does.
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Clock } from '../../src/runtime/clock';
import type { BundleApi } from '../../src/runtime/registrar/bundle-publisher';
import { kubeBundleApi, kubeCaStore } from '../../src/runtime/registrar/kube-registrar-api';
import type { CaStore } from '../../src/runtime/registrar/ca-state';
import type { WorkloadDirectory } from '../../src/runtime/registrar/issuer';
import type {
  RegistrarService,
  RegistrarSettings,
} from '../../src/runtime/registrar/registrar-service';
import { startRegistrarService } from '../../src/runtime/registrar/registrar-service';
import { createJsonLogger } from '../../src/runtime/role/log';
import { createKeyAndRequest } from '../../src/runtime/svid/csr';
import { isolateBinary } from '../support/binary';
import { FAKE_OWNER, fakeClientNode } from '../support/fake-client-node';
import { injectedPodFacts, TEST_IMAGES, tokenReviewOf, WEB } from '../support/registrar-pods';
import { waitForOutput } from '../support/processes';

const MINUTE = 60_000;
const REFUSED = 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443';

/** Waits (real time, bounded) until the condition holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let round = 0; round < 4000; round += 1) {
    if (condition()) return;
    await new Promise<void>((resolve) =>
      round < 100 ? setImmediate(resolve) : setTimeout(resolve, 5),
    );
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Timers run on `elapsed`; the wall clock is elapsed plus an offset that jump() moves. */
function manualClock() {
  const start = Date.now();
  let elapsed = 0;
  let offset = 0;
  let calls = 0;
  const sleepers: { due: number; wake: () => void }[] = [];
  const clock: Clock = {
    now: () => new Date(start + elapsed + offset),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        calls += 1;
        if (signal?.aborted === true) {
          reject(signal.reason as Error);
          return;
        }
        const sleeper = { due: elapsed + ms, wake: resolve };
        sleepers.push(sleeper);
        signal?.addEventListener(
          'abort',
          () => {
            sleepers.splice(sleepers.indexOf(sleeper), 1);
            reject(signal.reason as Error);
          },
          { once: true },
        );
      }),
  };
  return {
    clock,
    start,
    /** Waits until the registrar sleeps between rounds. */
    idle: () => until(() => sleepers.length > 0, 'the registrar to wait for its next round'),
    /** Moves time on by ms; every round due meanwhile runs to its end. */
    async advance(ms: number): Promise<void> {
      const target = elapsed + ms;
      for (let woken = 0; woken < 10_000; woken += 1) {
        await until(() => sleepers.length > 0, 'the registrar to wait for its next round');
        const next = [...sleepers].sort((a, b) => a.due - b.due)[0];
        if (next === undefined || next.due > target) break;
        sleepers.splice(sleepers.indexOf(next), 1);
        elapsed = next.due;
        const before = calls;
        next.wake();
        await until(() => calls > before, 'the round to end');
      }
      elapsed = target;
    },
    /** Steps the wall clock alone, as an NTP correction does; no timer fires. */
    jump: (ms: number) => void (offset += ms),
  };
}

/**
 * What the registrar asks of the API server, in memory; `down` makes every call fail, and
 * `secretDown` only those on the CA Secret.
 */
function memoryApi() {
  const api = {
    down: undefined as Error | undefined,
    secretDown: undefined as Error | undefined,
    reads: 0,
    secret: undefined as { data: Record<string, string>; resourceVersion: string } | undefined,
    bundles: new Map<string, string>(),
  };
  let version = 0;
  const reachable = (): Promise<void> =>
    api.down === undefined ? Promise.resolve() : Promise.reject(api.down);
  const secretReachable = async (): Promise<void> => {
    await reachable();
    if (api.secretDown !== undefined) throw api.secretDown;
  };
  const store: CaStore = {
    read: async () => {
      api.reads += 1;
      await secretReachable();
      return api.secret;
    },
    create: async (data) => {
      await secretReachable();
      if (api.secret !== undefined) return false;
      api.secret = { data, resourceVersion: String((version += 1)) };
      return true;
    },
    replace: async (data, resourceVersion) => {
      await secretReachable();
      if (api.secret?.resourceVersion !== resourceVersion) return false;
      api.secret = { data, resourceVersion: String((version += 1)) };
      return true;
    },
  };
  const bundles: BundleApi = {
    listNamespaces: async () => {
      await reachable();
      return ['nginx-mesh', 'app'];
    },
    listBundles: async () => {
      await reachable();
      return [...api.bundles].map(([namespace, bundle]) => ({
        namespace,
        data: { 'bundle.crt': bundle },
        resourceVersion: '1',
        owned: true,
      }));
    },
    create: async (namespace, data) => {
      await reachable();
      api.bundles.set(namespace, data['bundle.crt'] ?? '');
    },
    replace: async (namespace, data) => {
      await reachable();
      api.bundles.set(namespace, data['bundle.crt'] ?? '');
    },
  };
  const directory: WorkloadDirectory = {
    reviewToken: async (token) => {
      await reachable();
      return tokenReviewOf(WEB, { authenticated: token === 'web-token', error: 'invalid token' });
    },
    readPod: async () => {
      await reachable();
      return injectedPodFacts(WEB);
    },
  };
  return { api, store, bundles, directory };
}

const refused = (): Error =>
  new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') });

const FORBIDDEN_MESSAGE =
  'secrets "nginx-mesh-registrar-ca" is forbidden: User "system:serviceaccount:nginx-mesh:nginx-mesh-registrar" cannot get resource "secrets"';
const FORBIDDEN = `the API server answered 403: ${FORBIDDEN_MESSAGE}`;

/** A 403 as @kubernetes/client-node throws it: the status code and the raw Status body. */
const forbidden = (): Error => {
  const body = JSON.stringify({ kind: 'Status', message: FORBIDDEN_MESSAGE, code: 403 });
  return Object.assign(
    new Error(`HTTP-Code: 403\nMessage: Unknown API Status Code!\nBody: ${JSON.stringify(body)}`),
    { code: 403, body },
  );
};

const SETTINGS: RegistrarSettings = {
  namespace: 'nginx-mesh',
  trustDomain: 'example.org',
  keyType: 'ec-p256',
  ttlMs: 60 * MINUTE,
  svidTtlMs: 10 * MINUTE,
  upstream: undefined,
  host: '127.0.0.1',
  port: 0,
  secretName: 'nginx-mesh-registrar-ca',
  ...TEST_IMAGES,
};

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

let running: RegistrarService | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

function start(
  memory: Pick<ReturnType<typeof memoryApi>, 'store' | 'bundles' | 'directory'>,
  time: ReturnType<typeof manualClock>,
) {
  const lines: LogLine[] = [];
  running = startRegistrarService(SETTINGS, {
    store: memory.store,
    bundles: memory.bundles,
    directory: memory.directory,
    clock: time.clock,
    random: () => 0.5,
    logger: createJsonLogger({
      level: 'debug',
      out: { write: (text) => void lines.push(JSON.parse(text) as LogLine) },
      now: () => time.clock.now(),
    }),
    watchNamespaces: () => ({ stop: () => Promise.resolve() }),
  });
  return { service: running, lines };
}

interface Answer {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: { error?: string; certificateChain?: string; trustBundle?: string };
}

/** POST /v1/svid as a workload would (the TLS clock is the real one: no verification). */
async function requestSvid(port: number | undefined): Promise<Answer> {
  if (port === undefined) throw new Error('the SVID API does not listen');
  const { csrPem } = await createKeyAndRequest('ec-p256');
  const body = JSON.stringify({ csr: csrPem });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/svid',
        method: 'POST',
        rejectUnauthorized: false,
        headers: {
          Authorization: 'Bearer web-token',
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['body'],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Certificate {
  readonly x509: X509Certificate;
  readonly validFromMs: number;
  readonly validToMs: number;
  readonly validFromIso: string;
  readonly validToIso: string;
}

function certificate(pem: string): Certificate {
  const x509 = new X509Certificate(pem);
  const from = new Date(x509.validFrom);
  const to = new Date(x509.validTo);
  return {
    x509,
    validFromMs: from.getTime(),
    validToMs: to.getTime(),
    validFromIso: from.toISOString(),
    validToIso: to.toISOString(),
  };
}

/** The leaf of an issued chain, and the CA in the bundle that signed it. */
function leafOf(answer: Answer): { leaf: Certificate; issuer: Certificate } {
  if (answer.status !== 200) throw new Error(`${answer.status}: ${answer.body.error}`);
  const leaf = certificate(answer.body.certificateChain ?? '');
  const roots = (answer.body.trustBundle ?? '')
    .split(/(?<=-----END CERTIFICATE-----\n)/)
    .filter((pem) => pem.includes('BEGIN'))
    .map(certificate);
  const issuer = roots.find(
    (root) => leaf.x509.checkIssued(root.x509) && leaf.x509.verify(root.x509.publicKey),
  );
  if (issuer === undefined) throw new Error('no CA of the bundle signed the leaf');
  return { leaf, issuer };
}

const at = (time: ReturnType<typeof manualClock>, ms: number): string =>
  new Date(time.start + ms).toISOString();

describe('the registrar started while the Kubernetes API is down', () => {
  it('waits for it with jittered backoff, says so, and serves once it answers', async () => {
    const memory = memoryApi();
    memory.api.down = refused();
    const time = manualClock();
    const { service, lines } = start(memory, time);
    await time.idle();
    expect(service.readiness()).toEqual({
      ready: false,
      reason: `waiting for the Kubernetes API: ${REFUSED}`,
    });
    expect(service.apiPort()).toBeUndefined();
    await time.advance(10 * MINUTE);
    const waits = lines.filter((line) => line.msg === 'waiting for the Kubernetes API');
    expect(waits[0]).toMatchObject({ level: 'error', error: REFUSED, failures: 1, retryMs: 750 });
    // Doubling from 1 s up to 30 s, each the upper half drawn at random (0.5 here).
    expect(waits.slice(0, 7).map((line) => line.retryMs)).toEqual([
      750, 1500, 3000, 6000, 12_000, 22_500, 22_500,
    ]);
    expect(memory.api.reads).toBe(waits.length);
    expect(memory.api.reads).toBeGreaterThan(20);
    expect(service.readiness().ready).toBe(false);

    memory.api.down = undefined;
    await time.advance(30_000);
    expect(service.readiness()).toEqual({ ready: true });
    expect(lines.some((line) => line.msg === 'registrar recovered')).toBe(true);
    expect(memory.api.bundles.size).toBe(2);
    const answer = await requestSvid(service.apiPort());
    expect(answer.status).toBe(200);
  });
});

describe('the registrar started while its ClusterRole cannot be read', () => {
  it('writes no CA and no bundle without their owner, says so, and writes both owned once it can', async () => {
    const notFound = (): never => {
      throw Object.assign(new Error('not found'), { code: 404 });
    };
    const fake = fakeClientNode({
      readNamespacedSecret: notFound,
      listNamespace: () => ({ items: [{ metadata: { name: 'app' } }] }),
      listConfigMapForAllNamespaces: () => ({ items: [] }),
    });
    fake.state.ownerDown = true;
    const time = manualClock();
    const { service, lines } = start(
      {
        store: kubeCaStore(fake.k8s, fake.config, 'nginx-mesh', SETTINGS.secretName, fake.owner),
        bundles: kubeBundleApi(
          fake.k8s,
          fake.config,
          'nginx-mesh-bundle',
          FAKE_OWNER.ROLE,
          fake.owner,
        ),
        directory: memoryApi().directory,
      },
      time,
    );
    await time.idle();
    const reason = `reading ClusterRole ${FAKE_OWNER.ROLE}, the owner of what this role writes: fetch failed`;
    expect(service.readiness()).toEqual({
      ready: false,
      reason: `waiting for the Kubernetes API: ${reason}`,
    });
    expect(fake.written('createNamespacedSecret')).toEqual([]);
    expect(fake.written('createNamespacedConfigMap')).toEqual([]);
    await time.advance(MINUTE);
    const waits = lines.filter((line) => line.msg === 'waiting for the Kubernetes API');
    expect(waits.length).toBeGreaterThan(1);
    expect(waits[0]).toMatchObject({ level: 'error', error: reason });
    fake.state.ownerDown = false;
    await time.advance(MINUTE);
    await until(() => service.readiness().ready, 'the registrar to be ready');
    // The fake API keeps nothing, so each round creates again: every write carries the owner.
    const secrets = fake.written('createNamespacedSecret');
    const bundles = fake.written('createNamespacedConfigMap');
    expect(secrets.length).toBeGreaterThan(0);
    expect(secrets.map((meta) => meta?.ownerReferences)).toEqual(
      secrets.map(() => [FAKE_OWNER.OWNER]),
    );
    expect(bundles.length).toBeGreaterThan(0);
    expect(bundles.map((meta) => [meta?.namespace, meta?.ownerReferences])).toEqual(
      bundles.map(() => ['app', [FAKE_OWNER.OWNER]]),
    );
  });
});

describe('the registrar while its CA cannot be maintained', () => {
  it('hands over, refuses with 503 once the CA expired, and recovers with the API', async () => {
    const memory = memoryApi();
    const time = manualClock();
    const { service, lines } = start(memory, time);
    await until(() => service.readiness().ready, 'the registrar to be ready');
    await time.advance(31 * MINUTE); // half-way: the next CA is made and published
    expect((memory.api.bundles.get('app') ?? '').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);

    memory.api.secretDown = forbidden();
    await time.advance(10 * MINUTE); // 41 min: past the handover, which needs no write
    const handedOver = leafOf(await requestSvid(service.apiPort()));
    expect(handedOver.issuer.validFromMs).toBeGreaterThan(time.start);
    // Plenty of CA life left: a failed rotation is logged and retried, readiness stays true.
    expect(service.readiness()).toEqual({ ready: true });
    expect(lines.filter((line) => line.msg === 'cannot rotate the CA').at(-1)).toMatchObject({
      level: 'warn',
      error: FORBIDDEN,
      ready: true,
    });

    const secondNotAfter = handedOver.issuer.validToMs - time.start;
    await time.advance(secondNotAfter - 5 * MINUTE - 41 * MINUTE); // 5 min of CA life left
    expect(service.readiness()).toEqual({
      ready: false,
      reason: `cannot rotate the CA: ${FORBIDDEN}`,
    });
    const short = leafOf(await requestSvid(service.apiPort()));
    expect(short.leaf.validToMs).toBe(handedOver.issuer.validToMs);

    await time.advance(6 * MINUTE); // expired
    const window = `valid from ${handedOver.issuer.validFromIso} until ${handedOver.issuer.validToIso}`;
    const readiness = service.readiness();
    expect(readiness).toEqual({
      ready: false,
      reason: expect.stringMatching(
        new RegExp(`^the CA expired: ${window}, now \\S+; cannot rotate the CA: ${FORBIDDEN}$`),
      ) as unknown,
    });
    const refusal = await requestSvid(service.apiPort());
    expect(refusal).toMatchObject({ status: 503, retryAfter: '5' });
    expect(refusal.body.error).toMatch(new RegExp(`^the CA expired: ${window}, now \\S+$`));
    expect(refusal.body.certificateChain).toBeUndefined();

    memory.api.secretDown = undefined;
    await time.advance(30_000);
    expect(service.readiness()).toEqual({ ready: true });
    const renewed = leafOf(await requestSvid(service.apiPort()));
    expect(renewed.issuer.validFromMs).toBeGreaterThan(handedOver.issuer.validToMs);
    expect(renewed.leaf.validFromMs).toBeGreaterThanOrEqual(renewed.issuer.validFromMs);
    expect(renewed.leaf.validToMs).toBeLessThanOrEqual(renewed.issuer.validToMs);
  });
});

describe('the registrar when the wall clock steps back before its CA', () => {
  it('refuses with 503 naming the window, and makes a CA valid by that clock', async () => {
    const memory = memoryApi();
    const time = manualClock();
    const { service } = start(memory, time);
    await until(() => service.readiness().ready, 'the registrar to be ready');
    time.jump(-24 * 60 * MINUTE);
    const reason = `the CA is not valid yet: valid from ${at(time, 0).replace(/\.\d{3}Z$/, '.000Z')} until `;
    expect(service.readiness()).toMatchObject({ ready: false });
    expect((service.readiness() as { reason: string }).reason.startsWith(reason)).toBe(true);
    const refusal = await requestSvid(service.apiPort());
    expect(refusal.status).toBe(503);
    expect(refusal.body.error?.startsWith(reason)).toBe(true);

    await time.advance(15_000); // no later than the next periodic round
    expect(service.readiness()).toEqual({ ready: true });
    expect((await requestSvid(service.apiPort())).status).toBe(200);
  });
});

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the registrar role with no API server to reach', () => {
  it('starts, waits for it, reports why it is not ready, and stops cleanly', async () => {
    const binary = isolateBinary();
    const apiPort = await closedPort();
    const healthPort = await closedPort();
    const kubeconfig = join(binary.dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: down, cluster: {server: "https://127.0.0.1:' + apiPort + '"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: down, context: {cluster: down, user: u}}]',
        'current-context: down',
        '',
      ].join('\n'),
    );
    const registrar = execa(
      binary.path,
      [
        'run',
        '--role',
        'registrar',
        '--health-probe-bind-address',
        `127.0.0.1:${healthPort}`,
        '--api-bind-address',
        '127.0.0.1:0',
        '--sidecar-image',
        TEST_IMAGES.sidecarImage,
        '--control-plane-image',
        TEST_IMAGES.controlPlaneImage,
      ],
      { env: { KUBECONFIG: kubeconfig }, extendEnv: false, reject: false, timeout: 30_000 },
    );
    try {
      await waitForOutput(registrar, '"msg":"waiting for the Kubernetes API"', 'the registrar');
      const readyz = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      expect(readyz.status).toBe(503);
      expect((await readyz.text()).trim()).toBe(
        `not ready: waiting for the Kubernetes API: fetch failed: connect ECONNREFUSED 127.0.0.1:${apiPort}`,
      );
    } finally {
      registrar.kill('SIGTERM');
      const ended = await registrar;
      binary.remove();
      expect(ended.exitCode).toBe(0);
      expect(ended.stderr).not.toContain('role failed');
    }
  });
});
