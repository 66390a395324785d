// Serving certificates renewed while the servers run, with real keys and real HTTPS servers and
// lifetimes of seconds: the webhook server presents the renewed certificate to new connections
// without a restart, two replicas sharing one Secret end up serving the same certificate, the
// metrics API follows a rotated front-proxy CA, and the metrics role waits for an unreachable
// Kubernetes API instead of exiting.
import { METRICS_RBAC_NAME } from '../../src/manifests/install/rbac';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { systemClock } from '../../src/runtime/clock';
import { startWebhookServer } from '../../src/runtime/controller/webhook-server';
import type { WebhookServer } from '../../src/runtime/controller/webhook-server';
import { startRequestHeaderSource } from '../../src/runtime/metrics/request-header-source';
import { startMetrics, startMetricsApi } from '../../src/runtime/metrics/start-metrics';
import type { ManagedServingCertificate } from '../../src/runtime/pki/managed-certificate';
import { startServingCertificate } from '../../src/runtime/pki/managed-certificate';
import { createServingCertificate } from '../../src/runtime/pki/serving-certificate';
import { createJsonLogger } from '../../src/runtime/role/log';
import type { RoleOptions, RunningRole } from '../../src/runtime/role/role';
import { generatePki } from '../cluster/harness/pki';
import type { Pki } from '../cluster/harness/pki';
import { memorySecrets, memoryTarget } from '../support/memory-secrets';

const SERVICE = 'webhook-svc';
const NAMESPACE = 'nginx-mesh';
const SERVER_NAME = `${SERVICE}.${NAMESPACE}.svc`;
/** Lifetimes of seconds: renewal falls due about 2.7 s after issue. */
const SHORT_LIFE = {
  namespace: NAMESPACE,
  secretName: 'webhook-tls',
  serviceName: SERVICE,
  validityMs: 4_000,
  checkIntervalMs: 250,
  settleMs: 250,
  minCheckDelayMs: 50,
  initialBackoffMs: 100,
  maxBackoffMs: 500,
};

const logLines: string[] = [];
const logger = createJsonLogger({
  level: 'debug',
  out: { write: (text) => void logLines.push(text) },
  now: () => new Date(),
});
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls read() every 100 ms until it returns a value, for at most timeoutMs. */
async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await read();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

/** The certificate a new connection is served (not verified). */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: SERVER_NAME, rejectUnauthorized: false },
      () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        socket.end();
        resolve(fingerprint);
      },
    );
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

/** Connects verifying the server against the CA bundle; resolves once verified. */
function verified(port: number, caPem: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: SERVER_NAME, ca: caPem },
      () => {
        socket.end();
        resolve();
      },
    );
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

async function webhookFor(certificates: ManagedServingCertificate): Promise<WebhookServer> {
  const first = await certificates.first;
  const server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    path: '/mutate',
    certificatePem: first.certificatePem,
    privateKeyPem: first.privateKeyPem,
    decide: () => ({ kind: 'bad-request', reason: 'not under test' }),
    logger,
  });
  certificates.onRenewal((next) => server.setCertificate(next.certificatePem, next.privateKeyPem));
  cleanups.push(() => server.close());
  return server;
}

function managed(
  store: ReturnType<typeof memorySecrets>,
  target: ReturnType<typeof memoryTarget>,
): ManagedServingCertificate {
  const certificates = startServingCertificate(SHORT_LIFE, {
    store,
    target,
    clock: systemClock,
    random: Math.random,
    logger,
  });
  cleanups.push(() => certificates.stop());
  return certificates;
}

const unb64 = (text: string | undefined): string =>
  Buffer.from(text ?? '', 'base64').toString('utf8');

describe('serving certificate renewal', () => {
  it('serves new connections the renewed certificate, valid past the first one’s expiry', async () => {
    const store = memorySecrets();
    const target = memoryTarget();
    const certificates = managed(store, target);
    const first = await certificates.first;
    const server = await webhookFor(certificates);
    expect(await presented(server.port)).toBe(fingerprintOf(first.certificatePem));

    const renewed = await eventually(
      'a renewed certificate on a new connection',
      async () => {
        const fingerprint = await presented(server.port);
        return fingerprint === fingerprintOf(first.certificatePem) ? undefined : fingerprint;
      },
      8_000,
    );
    expect(renewed).toBe(fingerprintOf(unb64(store.peek()?.data['tls.crt'])));
    // Every write named the version it replaced.
    expect(store.attempts.map((attempt) => attempt.verb)).toEqual(
      expect.arrayContaining(['create', 'update']),
    );
    expect(store.attempts.filter((attempt) => attempt.result === 'conflict')).toEqual([]);

    // Past the first certificate's end, new connections still verify against the published bundle.
    await sleep(Math.max(0, first.notAfter.getTime() - Date.now()) + 200);
    const bundle = unb64(target.published.at(-1));
    await expect(verified(server.port, bundle)).resolves.toBeUndefined();
    expect(certificates.readiness()).toEqual({ ready: true });
  });

  it('two replicas sharing the Secret write each certificate once and serve the same one', async () => {
    const store = memorySecrets();
    const target = memoryTarget();
    const replicas = [managed(store, target), managed(store, target)];
    const [a, b] = await Promise.all(replicas.map((replica) => webhookFor(replica)));
    if (a === undefined || b === undefined) throw new Error('two webhook servers expected');
    const [firstA, firstB] = await Promise.all([presented(a.port), presented(b.port)]);
    // The replica that lost the creation race serves the winner's certificate.
    expect(firstA).toBe(firstB);

    const renewed = await eventually(
      'both replicas serving one renewed certificate',
      async () => {
        const [nowA, nowB] = await Promise.all([presented(a.port), presented(b.port)]);
        return nowA !== firstA && nowA === nowB ? nowA : undefined;
      },
      8_000,
    );
    expect(renewed).toBe(fingerprintOf(unb64(store.peek()?.data['tls.crt'])));
    const written = store.attempts.filter((attempt) => attempt.result === 'written');
    expect(written.map((attempt) => attempt.verb)).toEqual(['create', 'update']);
  });
});

describe('front-proxy CA', () => {
  let dir: string;
  let pkiA: Pki;
  let pkiB: Pki;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nmk-front-proxy-'));
    [pkiA, pkiB] = (await Promise.all(
      ['a', 'b'].map((name) =>
        generatePki({
          dir: join(dir, name),
          bindAddress: '127.0.0.1',
          kubernetesServiceIP: '198.19.240.1',
        }),
      ),
    )) as [Pki, Pki];
  });

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const configMap = (pki: Pki): Record<string, string> => ({
    'requestheader-client-ca-file': readFileSync(pki.frontProxyCa.cert, 'utf8'),
    'requestheader-allowed-names': '["front-proxy-client"]',
    'requestheader-username-headers': '["X-Remote-User"]',
    'requestheader-group-headers': '["X-Remote-Group"]',
    'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
  });

  function discovery(port: number, caPem: string, client: Pki): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port,
          path: '/apis/metrics.smi-spec.io/v1alpha1',
          servername: 'nginx-mesh-metrics-svc.nginx-mesh.svc',
          ca: caPem,
          cert: readFileSync(client.frontProxyClient.cert),
          key: readFileSync(client.frontProxyClient.key),
          agent: false,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
    });
  }

  it('trusts a rotated front-proxy CA after a client certificate fails verification', async () => {
    let data = configMap(pkiA);
    const reads: number[] = [];
    const source = startRequestHeaderSource({
      read: () => {
        reads.push(Date.now());
        return Promise.resolve(data);
      },
      description: 'ConfigMap kube-system/extension-apiserver-authentication',
      intervalMs: 600_000,
      minRefreshMs: 300,
      clock: systemClock,
      random: Math.random,
      logger,
    });
    cleanups.push(() => source.stop());
    const serving = await createServingCertificate(
      'nginx-mesh-metrics-svc',
      ['nginx-mesh-metrics-svc.nginx-mesh.svc'],
      new Date(),
      1,
    );
    const api = await startMetricsApi({
      host: '127.0.0.1',
      port: 0,
      certificate: serving,
      requestHeader: await source.first,
      reviewer: { review: () => Promise.resolve({ allowed: true, reason: '' }) },
      prometheus: undefined,
      onUnverifiedClient: () => source.refresh(),
      logger,
    });
    cleanups.push(() => api.close());
    source.onChange((next) => api.setRequestHeader(next));
    expect(await discovery(api.port, serving.caPem, pkiA)).toBe(200);

    data = configMap(pkiB);
    expect(await discovery(api.port, serving.caPem, pkiB)).toBe(401);
    await eventually(
      'the new front-proxy CA to be trusted',
      async () => ((await discovery(api.port, serving.caPem, pkiB)) === 200 ? true : undefined),
      5_000,
    );
    expect(await discovery(api.port, serving.caPem, pkiA)).toBe(401);
    // Failed verifications asked for reads, but no more often than minRefreshMs.
    const gaps = reads.slice(1).map((time, index) => time - (reads[index] ?? 0));
    expect(gaps.every((gap) => gap >= 250)).toBe(true);
  });
});

describe('metrics role without a Kubernetes API', () => {
  it('starts, says it waits for the Kubernetes API, and keeps retrying until stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nmk-metrics-no-api-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await closedPort();
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:' +
          String(port) +
          '", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kubeconfig;
    cleanups.push(() => {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
      return Promise.resolve();
    });
    const flags: Record<string, string> = {
      'api-bind-address': '127.0.0.1:0',
      'prometheus-address': '',
      'mesh-namespace': 'nginx-mesh',
      'cluster-role': METRICS_RBAC_NAME,
    };
    const unexpected = (name: string): never => {
      throw new Error(`flag ${name} is not under test`);
    };
    const options: RoleOptions = {
      string: (name) => flags[name] ?? unexpected(name),
      bool: unexpected,
      duration: unexpected,
      int: unexpected,
      ints: unexpected,
      strings: unexpected,
      changed: unexpected,
    };
    const lines: string[] = [];
    const roleLogger = createJsonLogger({
      level: 'debug',
      out: { write: (text) => void lines.push(text) },
      now: () => new Date(),
    });
    const role: RunningRole = await startMetrics({
      logger: roleLogger,
      signal: new AbortController().signal,
      options,
      out: { write: () => undefined },
      version: '0.0.0-test',
    });
    cleanups.push(() => role.stop());
    let ended = false;
    void role.done.then(
      () => (ended = true),
      () => (ended = true),
    );
    const reason = await eventually(
      'readiness naming the unreachable API',
      () => {
        const state = role.readiness();
        return !state.ready && state.reason.startsWith('waiting for the Kubernetes API: ')
          ? state.reason
          : undefined;
      },
      10_000,
    );
    expect(reason).toMatch(/^waiting for the Kubernetes API: .*ECONNREFUSED/);
    expect(reason).not.toContain('\n');
    // Retried (with backoff), not given up: more than one failed attempt is logged.
    await eventually(
      'a second failed attempt',
      () =>
        lines.filter((line) => line.includes('serving certificate check failed')).length >= 2
          ? true
          : undefined,
      10_000,
    );
    expect(ended).toBe(false);
    await role.stop();
    await role.done;
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
