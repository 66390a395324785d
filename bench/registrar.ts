// SVID issuance throughput against a real kube-apiserver. A bare control plane (etcd,
// kube-apiserver, kube-controller-manager on loopback) holds the mesh namespace, the registrar's
// ServiceAccount with the RBAC the install manifests grant it, and PODS injected pods, each with
// a ServiceAccount of its own and a real pod-bound token for the registrar's audience (from the
// TokenRequest API). The registrar's API and issuer run in a process of their own, as in a
// cluster, with the production WorkloadDirectory (TokenReview, then a pod read, per SVID) on the
// registrar's own token. CLIENTS clients send the pods' CSRs in parallel over keep-alive
// connections (and once more with a new TLS connection per SVID, as sidecars connect); each
// verifies the serving certificate against the mesh CA and each SVID: chain to the mesh CA, the
// SPIFFE ID of its pod's ServiceAccount as URI SAN, and the key of its CSR.
//
// Same run, for reference: the issuer with the TokenReview and pod read answered in process (the
// signing path alone), and an HTTPS server answering a fixed SVID-sized body. The API server's
// round trips are reported unloaded (sequential, from this process) and as the registrar saw
// them under load, with the CPU every process spent per SVID.
// Target: at least 500 SVIDs per second with the ec-p256 CA, real API server round trips.
import type { KeyObject } from 'node:crypto';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as K8s from '@kubernetes/client-node';
import {
  DEFAULT_MESH_NAMESPACE,
  IDENTITY_TOKEN_AUDIENCE,
  REGISTRAR_NAME,
  TOKEN_POD_NAME_EXTRA,
  TOKEN_POD_UID_EXTRA,
} from '../src/manifests/constants';
import { buildRbac, REGISTRAR_RBAC_NAME } from '../src/manifests/install/rbac';
import type { MtlsCaKeyType } from '../src/manifests/mesh-config/deploy-flags';
import type { PodFacts, TokenReviewFacts } from '../src/manifests/registrar/svid-policy';
import {
  authorizeWorkload,
  claimOfReview,
  isRefusal,
  spiffeIdOf,
} from '../src/manifests/registrar/svid-policy';
import { startApiServer } from '../src/runtime/registrar/api-server';
import { createAuthority } from '../src/runtime/registrar/authority';
import { createIssuer } from '../src/runtime/registrar/issuer';
import type { WorkloadDirectory } from '../src/runtime/registrar/issuer';
import { createKubeAccess } from '../src/runtime/kube/access';
import { kubeWorkloadDirectory } from '../src/runtime/registrar/kube-registrar-api';
import {
  MAX_BUCKETS,
  MAX_REVIEWS_IN_FLIGHT,
  RATE_LIMIT,
} from '../src/runtime/registrar/registrar-service';
import { issueServingCertificate, registrarDnsNames } from '../src/runtime/registrar/serving';
import { createJsonLogger } from '../src/runtime/role/log';
import { createKeyAndRequest } from '../src/runtime/svid/csr';
import type { BareControlPlane } from '../test/support/bare-control-plane';
import { startBareControlPlane } from '../test/support/bare-control-plane';
import { injectedPod, injectedPodFacts, TEST_IMAGES } from '../test/support/registrar-pods';
import { startChildServer } from './support/child-server';
import { cpuSeconds } from './support/proc-stats';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

/** Connections sending requests in parallel. */
const CLIENTS = 16;
/** Pods, each its own identity: requests go round-robin, so no identity nears its rate limit. */
const PODS = 64;
const REQUESTS = 4_000;
const WARMUP = 400;
/** Sequential TokenReviews and pod reads, for the unloaded round-trip latency. */
const ROUND_TRIPS = 200;
/** The whole run, control plane start and stop included. */
const DEADLINE_MS = 20 * 60_000;
const TARGET_EC_P256: Target = { how: '>=', limit: 500 };

const MESH_NAMESPACE = DEFAULT_MESH_NAMESPACE;
const APP_NAMESPACE = 'bench-registrar';
const TRUST_DOMAIN = 'example.org';
const SERVER_NAME = registrarDnsNames(MESH_NAMESPACE)[0] ?? '';
const ENV_DIR = 'NMK_BENCH_REGISTRAR_DIR';
const KUBECONFIG_FILE = 'registrar.kubeconfig';

/** How the registrar reaches the API server: its ServiceAccount's token, nothing more. */
interface RegistrarCredentials {
  readonly server: string;
  readonly caPath: string;
  readonly token: string;
}

interface Workload {
  /** What the in-process directory takes for this pod's token. */
  readonly stubToken: string;
  /** The pod-bound token from the TokenRequest API. */
  readonly kubeToken: string;
  readonly csrPem: string;
  readonly spki: Buffer;
  readonly spiffeId: string;
}

interface Latencies {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

function latencies(samples: readonly number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

const podName = (index: number): string => `p${index}`;
const accountName = (index: number): string => `w${index}`;

/** Tokens "<n>" stand for ServiceAccount w<n> of pod p<n>, answered without an API server. */
const stubDirectory: WorkloadDirectory = {
  reviewToken: (token) =>
    Promise.resolve<TokenReviewFacts>({
      authenticated: true,
      username: `system:serviceaccount:${APP_NAMESPACE}:${accountName(Number(token))}`,
      extra: {
        [TOKEN_POD_NAME_EXTRA]: [podName(Number(token))],
        [TOKEN_POD_UID_EXTRA]: [`u${token}`],
      },
      audiences: [IDENTITY_TOKEN_AUDIENCE],
      error: '',
    }),
  readPod: (namespace, name) =>
    Promise.resolve<PodFacts>(
      injectedPodFacts({
        namespace,
        name,
        uid: `u${name.slice(1)}`,
        serviceAccount: accountName(Number(name.slice(1))),
      }),
    ),
};

/** The registrar's kubeconfig: the API server, its CA and the registrar's token alone. */
function writeRegistrarKubeconfig(dir: string, credentials: RegistrarCredentials): void {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'bench',
        cluster: { server: credentials.server, 'certificate-authority': credentials.caPath },
      },
    ],
    users: [{ name: REGISTRAR_NAME, user: { token: credentials.token } }],
    contexts: [{ name: 'bench', context: { cluster: 'bench', user: REGISTRAR_NAME } }],
    'current-context': 'bench',
  };
  writeFileSync(join(dir, KUBECONFIG_FILE), JSON.stringify(kubeconfig));
}

/** The production directory on the registrar's kubeconfig, as start-registrar.ts connects it. */
async function registrarDirectory(dir: string): Promise<WorkloadDirectory> {
  const connection = await createKubeAccess({}).connect({
    kubeconfig: join(dir, KUBECONFIG_FILE),
    timeoutMs: 30_000,
  });
  return kubeWorkloadDirectory(connection);
}

/** The directory with each call's duration recorded, in milliseconds. */
function timedDirectory(directory: WorkloadDirectory): {
  directory: WorkloadDirectory;
  review: number[];
  pod: number[];
} {
  const review: number[] = [];
  const pod: number[] = [];
  const timed = async <T>(into: number[], call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await call();
    } finally {
      into.push(performance.now() - started);
    }
  };
  return {
    review,
    pod,
    directory: {
      reviewToken: (token, audience) => timed(review, () => directory.reviewToken(token, audience)),
      readPod: (namespace, name) => timed(pod, () => directory.readPod(namespace, name)),
    },
  };
}

/**
 * Child process: the registrar API (kind: "stub-ec-p256", "ec-p256" or "rsa-2048") or the
 * baseline, on a free port. It writes its trust bundle to $ENV_DIR/bundle.pem before it prints
 * the port, and on SIGUSR2 the API server latencies since the last SIGUSR2 to stats.json.
 */
async function serve(kind: string): Promise<void> {
  const dir = process.env[ENV_DIR] ?? '';
  const now = new Date();
  const keyType = (
    kind === 'baseline' || kind === 'stub-ec-p256' ? 'ec-p256' : kind
  ) as MtlsCaKeyType;
  const active = await createAuthority(
    { keyType, trustDomain: TRUST_DOMAIN, ttlMs: 720 * 3_600_000, upstream: undefined },
    now,
  );
  const view = { active, bundlePem: active.stored.certificate };
  const serving = await issueServingCertificate(
    view,
    { namespace: MESH_NAMESPACE, trustDomain: TRUST_DOMAIN, ttlMs: 3_600_000 },
    now,
  );
  writeFileSync(join(dir, 'bundle.pem'), view.bundlePem);
  if (kind === 'baseline') {
    const fixed = JSON.stringify({
      certificateChain: serving.chainPem,
      trustBundle: view.bundlePem,
    });
    const server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(fixed));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
    return;
  }
  const timed = timedDirectory(
    kind === 'stub-ec-p256' ? stubDirectory : await registrarDirectory(dir),
  );
  process.on('SIGUSR2', () => {
    const stats = { review: latencies(timed.review), pod: latencies(timed.pod) };
    timed.review.length = 0;
    timed.pod.length = 0;
    writeFileSync(join(dir, 'stats.json.tmp'), JSON.stringify(stats));
    renameSync(join(dir, 'stats.json.tmp'), join(dir, 'stats.json'));
  });
  const logger = createJsonLogger({
    level: 'error',
    out: { write: () => undefined },
    now: () => new Date(),
  });
  const issuer = createIssuer(
    {
      meshNamespace: MESH_NAMESPACE,
      trustDomain: TRUST_DOMAIN,
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit: RATE_LIMIT,
      // Every request comes from loopback: in a cluster each pod has an address of its own.
      clientRateLimit: { perSecond: 1e9, burst: 1e9 },
      maxReviewsInFlight: MAX_REVIEWS_IN_FLIGHT,
      maxBuckets: MAX_BUCKETS,
    },
    { directory: timed.directory, ca: () => view, now: () => new Date(), logger },
  );
  const server = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    certificateChainPem: serving.chainPem,
    privateKeyPem: serving.keyPem,
    issuer,
    logger,
  });
  process.stdout.write(`${server.port}\n`);
}

const certificatesOf = (pem: string): X509Certificate[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );

/**
 * Throws unless the answer is an SVID for workload: a chain from the leaf to one of roots (each
 * certificate issued and signed by the next), the workload's SPIFFE ID as the response's id and
 * as the leaf's URI SAN, the workload's key, valid now.
 */
function verifySvid(body: string, workload: Workload, roots: readonly X509Certificate[]): void {
  const answer = JSON.parse(body) as { spiffeId?: string; certificateChain?: string };
  const chain = certificatesOf(answer.certificateChain ?? '');
  const leaf = chain[0];
  if (leaf === undefined) throw new Error('no certificate in the answer');
  if (answer.spiffeId !== workload.spiffeId) {
    throw new Error(`SVID for ${String(answer.spiffeId)}, expected ${workload.spiffeId}`);
  }
  const sans = (leaf.subjectAltName ?? '').split(', ');
  if (!sans.includes(`URI:${workload.spiffeId}`)) {
    throw new Error(
      `leaf names ${leaf.subjectAltName ?? 'nothing'}, expected ${workload.spiffeId}`,
    );
  }
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(workload.spki)) {
    throw new Error('leaf certifies another key than the CSR');
  }
  const now = Date.now();
  if (!(Date.parse(leaf.validFrom) <= now && now < Date.parse(leaf.validTo))) {
    throw new Error(`leaf valid ${leaf.validFrom} to ${leaf.validTo}, not now`);
  }
  verifyChain(chain, roots);
}

/** Throws unless each certificate is issued and signed by the next, up to one of roots. */
function verifyChain(chain: readonly X509Certificate[], roots: readonly X509Certificate[]): void {
  for (let index = 0; ; index += 1) {
    const cert = chain[index];
    if (cert === undefined) throw new Error('chain does not reach the mesh CA');
    const anchor = roots.find((root) => cert.checkIssued(root) && cert.verify(root.publicKey));
    if (anchor !== undefined) return;
    const next = chain[index + 1];
    if (next === undefined || !cert.checkIssued(next) || !cert.verify(next.publicKey)) {
      throw new Error(`certificate ${index} of the chain is not signed by the next`);
    }
  }
}

interface LoadOptions {
  readonly port: number;
  readonly workloads: readonly Workload[];
  readonly count: number;
  readonly bundle: string;
  /** Keep-alive connections, or a new TLS connection (full handshake) per request. */
  readonly keepAlive: boolean;
  readonly token: 'stub' | 'kube';
  /** false for the baseline, whose fixed answer is no SVID. */
  readonly verify: boolean;
}

/** Sends options.count requests from CLIENTS clients; resolves to requests per second. */
async function load(options: LoadOptions): Promise<number> {
  const roots = certificatesOf(options.bundle);
  const agent = options.keepAlive
    ? new Agent({
        keepAlive: true,
        maxSockets: CLIENTS,
        ca: options.bundle,
        servername: SERVER_NAME,
      })
    : false;
  let sent = 0;
  const one = (workload: Workload): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ csr: workload.csrPem });
      const token = options.token === 'stub' ? workload.stubToken : workload.kubeToken;
      const req = request(
        {
          host: '127.0.0.1',
          port: options.port,
          path: '/v1/svid',
          method: 'POST',
          agent,
          ca: options.bundle,
          servername: SERVER_NAME,
          // The URL's host is an address: the certificate must name the registrar's Service.
          checkServerIdentity: (_host, cert) => checkServerIdentity(SERVER_NAME, cert),
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              reject(new Error(`status ${res.statusCode}: ${text}`));
              return;
            }
            try {
              if (options.verify) verifySvid(text, workload, roots);
              resolve();
            } catch (error) {
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  const client = async (): Promise<void> => {
    while (sent < options.count) {
      const workload = options.workloads[sent % options.workloads.length];
      sent += 1;
      if (workload !== undefined) await one(workload);
    }
  };
  const started = process.hrtime.bigint();
  try {
    await Promise.all(Array.from({ length: CLIENTS }, () => client()));
  } finally {
    if (agent !== false) agent.destroy();
  }
  return options.count / (Number(process.hrtime.bigint() - started) / 1e9);
}

interface Run {
  readonly perSecond: number;
  /** CPU seconds per SVID, by process. */
  readonly cpuMsPerSvid: Readonly<Record<string, number>>;
  /** The API server calls as the registrar saw them during the measured requests. */
  readonly review?: Latencies;
  readonly pod?: Latencies;
}

interface Bench {
  readonly dir: string;
  readonly workloads: readonly Workload[];
  /** Processes whose CPU is reported, by name (the client is this process). */
  readonly pids: Readonly<Record<string, number>>;
  /** Stops the child servers still running. */
  readonly stops: Set<() => void>;
}

async function childStats(
  dir: string,
  pid: number,
): Promise<{ review: Latencies; pod: Latencies }> {
  const file = join(dir, 'stats.json');
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let waited = 0; !existsSync(file); waited += 20) {
    if (waited > 5_000) throw new Error('the registrar did not write its latencies');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return JSON.parse(readFileSync(file, 'utf8')) as { review: Latencies; pod: Latencies };
}

/** Starts a server of kind, warms it up, then measures each of the loads asked for. */
async function measure(
  bench: Bench,
  kind: string,
  loads: readonly Pick<LoadOptions, 'keepAlive'>[],
): Promise<Run[]> {
  const server = await startChildServer(kind, 60_000, {
    [ENV_DIR]: bench.dir,
  });
  bench.stops.add(server.stop);
  try {
    const registrar = kind !== 'baseline';
    const base = {
      port: server.port,
      workloads: bench.workloads,
      bundle: readFileSync(join(bench.dir, 'bundle.pem'), 'utf8'),
      token: kind === 'stub-ec-p256' ? 'stub' : 'kube',
      verify: registrar,
    } as const;
    const runs: Run[] = [];
    for (const { keepAlive } of loads) {
      await load({ ...base, keepAlive, count: WARMUP });
      if (registrar) await childStats(bench.dir, server.pid);
      const pids = { ...bench.pids, registrar: server.pid };
      const before = Object.fromEntries(Object.entries(pids).map(([n, p]) => [n, cpuSeconds([p])]));
      const clientBefore = process.cpuUsage();
      const perSecond = await load({ ...base, keepAlive, count: REQUESTS });
      const client = process.cpuUsage(clientBefore);
      const cpuMsPerSvid: Record<string, number> = {
        client: (client.user + client.system) / 1e3 / REQUESTS,
      };
      for (const [name, pid] of Object.entries(pids)) {
        cpuMsPerSvid[name] = ((cpuSeconds([pid]) - (before[name] ?? 0)) * 1e3) / REQUESTS;
      }
      const stats = registrar ? await childStats(bench.dir, server.pid) : undefined;
      runs.push({ perSecond, cpuMsPerSvid, ...stats });
    }
    return runs;
  } finally {
    server.stop();
    bench.stops.delete(server.stop);
  }
}

/** The registrar's ServiceAccount, ClusterRole and Role with their bindings, as deploy makes them. */
function registrarRbac(): K8s.KubernetesObject[] {
  return buildRbac(MESH_NAMESPACE, () => ({}))
    .filter((manifest) =>
      manifest.kind === 'ServiceAccount'
        ? manifest.metadata.name === REGISTRAR_NAME
        : manifest.metadata.name === REGISTRAR_RBAC_NAME,
    )
    .map((manifest) => manifest as unknown as K8s.KubernetesObject);
}

/**
 * Creates the namespaces, the registrar's RBAC and token, and the pods with their
 * ServiceAccounts and pod-bound tokens; resolves to the registrar's credentials and the pods'
 * tokens by index.
 */
async function prepareCluster(
  bare: BareControlPlane,
): Promise<{ credentials: RegistrarCredentials; tokens: string[] }> {
  const admin = new K8s.KubeConfig();
  admin.loadFromFile(bare.plane.kubeconfigPath);
  const core = admin.makeApiClient(K8s.CoreV1Api);
  const objects = K8s.KubernetesObjectApi.makeApiClient(admin);
  for (const name of [MESH_NAMESPACE, APP_NAMESPACE]) {
    await core.createNamespace({ body: { metadata: { name } } });
  }
  for (const object of registrarRbac()) await objects.create(object);
  const registrarToken = await core.createNamespacedServiceAccountToken({
    name: REGISTRAR_NAME,
    namespace: MESH_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const tokens: string[] = [];
  for (let index = 0; index < PODS; index += 1) {
    const serviceAccount = accountName(index);
    await core.createNamespacedServiceAccount({
      namespace: APP_NAMESPACE,
      body: { metadata: { name: serviceAccount } },
    });
    // The pod as the injector renders it; the API server gives it its uid. No node runs it.
    const pod = injectedPod({
      namespace: APP_NAMESPACE,
      name: podName(index),
      uid: '',
      serviceAccount,
    }) as { metadata: Record<string, unknown> };
    delete pod.metadata.uid;
    const created = await core.createNamespacedPod({
      namespace: APP_NAMESPACE,
      body: pod,
    });
    const token = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace: APP_NAMESPACE,
      body: {
        spec: {
          audiences: [IDENTITY_TOKEN_AUDIENCE],
          expirationSeconds: 3600,
          boundObjectRef: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: podName(index),
            uid: created.metadata?.uid ?? '',
          },
        },
      },
    });
    tokens.push(token.status?.token ?? '');
  }
  return {
    credentials: {
      server: bare.plane.server,
      caPath: bare.plane.caPath,
      token: registrarToken.status?.token ?? '',
    },
    tokens,
  };
}

/**
 * ROUND_TRIPS sequential TokenReviews and pod reads with the registrar's credentials, each
 * answer checked by the registrar's own policy (the pod must pass as a mesh member). The first
 * calls are retried while the registrar's RBAC is not yet in force.
 */
async function roundTrips(
  dir: string,
  workloads: readonly Workload[],
): Promise<{ review: Latencies; pod: Latencies }> {
  const timed = timedDirectory(await registrarDirectory(dir));
  const context = { meshNamespace: MESH_NAMESPACE, trustDomain: TRUST_DOMAIN, ...TEST_IMAGES };
  const check = async (workload: Workload): Promise<void> => {
    const review = await timed.directory.reviewToken(workload.kubeToken, IDENTITY_TOKEN_AUDIENCE);
    const claim = claimOfReview(review, IDENTITY_TOKEN_AUDIENCE);
    if (isRefusal(claim)) throw new Error(`TokenReview: ${claim.reason}`);
    const pod = await timed.directory.readPod(claim.namespace, claim.podName);
    const identity = authorizeWorkload(claim, pod, context);
    if (isRefusal(identity)) throw new Error(`pod: ${identity.reason}`);
    if (identity.spiffeId !== workload.spiffeId) throw new Error(`identity ${identity.spiffeId}`);
  };
  const first = workloads[0];
  if (first === undefined) throw new Error('no workloads');
  for (let attempt = 0; ; attempt += 1) {
    try {
      await check(first);
      break;
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  timed.review.length = 0;
  timed.pod.length = 0;
  for (let index = 0; index < ROUND_TRIPS; index += 1) {
    const workload = workloads[index % workloads.length];
    if (workload !== undefined) await check(workload);
  }
  return { review: latencies(timed.review), pod: latencies(timed.pod) };
}

const ms = (value: number | undefined): string => (value ?? NaN).toFixed(2);
const describeLatencies = (l: Latencies | undefined): string =>
  l === undefined
    ? '-'
    : `p50 ${ms(l.p50)} ms, p90 ${ms(l.p90)}, p99 ${ms(l.p99)} (${l.count} calls)`;
const describeCpu = (run: Run): string =>
  Object.entries(run.cpuMsPerSvid)
    .map(([name, value]) => `${name} ${value.toFixed(2)}`)
    .join(', ');

/**
 * SVIDs per second the machine's CPUs would allow if the server side had them all: less
 * sensitive to other work on the machine than the measured rate.
 */
function ceiling(run: Run): number {
  const { registrar = NaN, apiserver = NaN, etcd = NaN } = run.cpuMsPerSvid;
  return (cpus().length * 1000) / (registrar + apiserver + etcd);
}

function report(
  runs: Record<'baseline' | 'stub' | 'ec' | 'ecNew' | 'rsa', Run>,
  sequential: { review: Latencies; pod: Latencies },
  timings: string,
): void {
  const rate = (run: Run): number => run.perSecond;
  const lines = [
    `registrar: ${REQUESTS} SVIDs per run after ${WARMUP} of warm-up, ${CLIENTS} clients, ${PODS} pods each with its own ServiceAccount and pod-bound token, HTTPS on loopback verified against the mesh CA, every SVID verified, P-256 CSRs, Node ${process.versions.node}`,
    `  control plane: ${timings}`,
    `  fixed-answer HTTPS server (keep-alive)             ${rate(runs.baseline).toFixed(0)}/s`,
    `  ec-p256 CA, TokenReview and pod read in process    ${rate(runs.stub).toFixed(0)}/s`,
    `  ec-p256 CA, real API server (keep-alive)           ${rate(runs.ec).toFixed(0)}/s  (${(rate(runs.ec) / rate(runs.stub)).toFixed(2)}x in process)`,
    `  ec-p256 CA, real API server, one TLS handshake per SVID  ${rate(runs.ecNew).toFixed(0)}/s`,
    `  rsa-2048 CA, real API server (keep-alive)          ${rate(runs.rsa).toFixed(0)}/s`,
    `  API server round trips, sequential and unloaded, registrar's token:`,
    `    TokenReview ${describeLatencies(sequential.review)}`,
    `    pod get     ${describeLatencies(sequential.pod)}`,
    `  as the registrar saw them during the ec-p256 keep-alive run (${MAX_REVIEWS_IN_FLIGHT} in flight at most):`,
    `    TokenReview ${describeLatencies(runs.ec.review)}`,
    `    pod get     ${describeLatencies(runs.ec.pod)}`,
    `  CPU ms per SVID, ec-p256 keep-alive:  ${describeCpu(runs.ec)}`,
    `  CPU ms per SVID, in process:          ${describeCpu(runs.stub)}`,
    `  CPU-bound ceiling on this machine's ${cpus().length} CPUs (registrar, kube-apiserver, etcd; clients elsewhere): ${ceiling(runs.ec).toFixed(0)}/s; in process ${ceiling(runs.stub).toFixed(0)}/s`,
    `  load average at the end: ${loadavg()
      .map((value) => value.toFixed(1))
      .join(' ')} on ${cpus().length} CPUs`,
    '',
    targetLine('svid_issuance_per_s_ec_p256', rate(runs.ec), TARGET_EC_P256, 0),
    '',
    `svid_issuance_per_s_ec_p256 ${rate(runs.ec).toFixed(0)} /s`,
    `svid_issuance_per_s_ec_p256_new_connection ${rate(runs.ecNew).toFixed(0)} /s`,
    `svid_issuance_per_s_rsa_2048 ${rate(runs.rsa).toFixed(0)} /s`,
    `svid_issuance_per_s_ec_p256_in_process_directory ${rate(runs.stub).toFixed(0)} /s`,
    `svid_issuance_baseline_per_s ${rate(runs.baseline).toFixed(0)} /s`,
    `svid_issuance_ec_p256_ratio_to_baseline ${(rate(runs.ec) / rate(runs.baseline)).toFixed(2)} x`,
    `kube_tokenreview_p50_ms ${ms(sequential.review.p50)} ms`,
    `kube_pod_get_p50_ms ${ms(sequential.pod.p50)} ms`,
    `kube_tokenreview_p50_ms_under_load ${ms(runs.ec.review?.p50)} ms`,
    `kube_pod_get_p50_ms_under_load ${ms(runs.ec.pod?.p50)} ms`,
    `svid_issuance_cpu_bound_per_s_ec_p256 ${ceiling(runs.ec).toFixed(0)} /s`,
    `kube_apiserver_cpu_ms_per_svid ${(runs.ec.cpuMsPerSvid.apiserver ?? NaN).toFixed(2)} ms`,
    `registrar_cpu_ms_per_svid ${(runs.ec.cpuMsPerSvid.registrar ?? NaN).toFixed(2)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function workloadsOf(tokens: readonly string[]): Promise<Workload[]> {
  return Promise.all(
    tokens.map(async (kubeToken, index) => {
      const { key, csrPem } = await createKeyAndRequest('ec-p256');
      return {
        stubToken: String(index),
        kubeToken,
        csrPem,
        spki: spkiOf(key),
        spiffeId: spiffeIdOf(TRUST_DOMAIN, APP_NAMESPACE, accountName(index)),
      };
    }),
  );
}

const spkiOf = (key: KeyObject): Buffer =>
  createPublicKey(key).export({ type: 'spki', format: 'der' });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nmk-bench-registrar-'));
  const stops = new Set<() => void>();
  let bare: BareControlPlane | undefined;
  let stopping: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const stop of stops) stop();
      try {
        await bare?.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })());
  const abort = (why: string): void => {
    process.stderr.write(`registrar: ${why}; stopping the control plane\n`);
    void cleanUp().finally(() => process.exit(1));
  };
  const deadline = setTimeout(() => abort(`not done within ${DEADLINE_MS / 1000} s`), DEADLINE_MS);
  process.once('SIGINT', () => abort('interrupted'));
  process.once('SIGTERM', () => abort('terminated'));
  try {
    // npm run bench runs from the repository's root.
    bare = await startBareControlPlane('nmk-bench-registrar-', process.cwd());
    const { credentials, tokens } = await prepareCluster(bare);
    const workloads = await workloadsOf(tokens);
    writeRegistrarKubeconfig(dir, credentials);
    const sequential = await roundTrips(dir, workloads);
    const bench: Bench = {
      dir,
      workloads,
      pids: { apiserver: bare.plane.pids.apiserver, etcd: bare.plane.pids.etcd },
      stops,
    };
    const [baseline] = await measure(bench, 'baseline', [{ keepAlive: true }]);
    const [stub] = await measure(bench, 'stub-ec-p256', [{ keepAlive: true }]);
    const [ec, ecNew] = await measure(bench, 'ec-p256', [
      { keepAlive: true },
      { keepAlive: false },
    ]);
    const [rsa] = await measure(bench, 'rsa-2048', [{ keepAlive: true }]);
    if (!baseline || !stub || !ec || !ecNew || !rsa) throw new Error('a run is missing');
    const t = bare.plane.timings;
    report(
      { baseline, stub, ec, ecNew, rsa },
      sequential,
      `kube-apiserver ready after ${t.apiserverReadyMs} ms, controllers working after ${t.controllersWorkingMs} ms`,
    );
  } finally {
    clearTimeout(deadline);
    await cleanUp();
  }
}

const serveIndex = process.argv.indexOf('--serve');
if (serveIndex >= 0) void serve(process.argv[serveIndex + 1] ?? 'ec-p256');
else
  main().catch((error: unknown) => {
    process.stderr.write(
      `registrar: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
