// SVID issuance throughput: the registrar's real HTTPS API and issuer, in its own process as in a
// cluster, signing for 16 clients in parallel over keep-alive connections, with an ec-p256 CA
// and with an rsa-2048 CA. The signing path is the figure: the TokenReview and pod lookup are
// answered in process (in a cluster they are two API server round trips, measured by the API
// server's own latency, not here). The baseline in the same run is an HTTPS server in its own
// process that reads the same requests and answers a fixed SVID-sized body.
// Target: at least 500 SVIDs per second with the ec-p256 CA.
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { MtlsCaKeyType } from '../src/manifests/mesh-config/deploy-flags';
import type { PodFacts, TokenReviewFacts } from '../src/manifests/registrar/svid-policy';
import { startApiServer } from '../src/runtime/registrar/api-server';
import { createAuthority } from '../src/runtime/registrar/authority';
import { createIssuer } from '../src/runtime/registrar/issuer';
import type { WorkloadDirectory } from '../src/runtime/registrar/issuer';
import { issueServingCertificate } from '../src/runtime/registrar/serving';
import { createJsonLogger } from '../src/runtime/role/log';
import { createKeyAndRequest } from '../src/runtime/svid/csr';
import { injectedPodFacts, TEST_IMAGES } from '../test/support/registrar-pods';
import { startChildServer } from './support/child-server';

const CLIENTS = 16;
const REQUESTS = 4_000;
const WARMUP = 400;
const TARGET_EC_P256 = 500;

/** Tokens "<n>" stand for ServiceAccount w<n> of pod p<n>, so every client has its own identity. */
const directory: WorkloadDirectory = {
  reviewToken: (token) =>
    Promise.resolve<TokenReviewFacts>({
      authenticated: true,
      username: `system:serviceaccount:bench:w${token}`,
      extra: {
        'authentication.kubernetes.io/pod-name': [`p${token}`],
        'authentication.kubernetes.io/pod-uid': [`u${token}`],
      },
      audiences: ['nginx-mesh-registrar'],
      error: '',
    }),
  readPod: (namespace, name) =>
    Promise.resolve<PodFacts>(
      injectedPodFacts({
        namespace,
        name,
        uid: `u${name.slice(1)}`,
        serviceAccount: `w${name.slice(1)}`,
      }),
    ),
};

/** Child process: the registrar API (kind = a CA key type) or the baseline, on a free port. */
async function serve(kind: string): Promise<void> {
  const now = new Date();
  const keyType = (kind === 'baseline' ? 'ec-p256' : kind) as MtlsCaKeyType;
  const active = await createAuthority(
    { keyType, trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream: undefined },
    now,
  );
  const view = { active, bundlePem: active.stored.certificate };
  const serving = await issueServingCertificate(
    view,
    { namespace: 'nginx-mesh', trustDomain: 'example.org', ttlMs: 3_600_000 },
    now,
  );
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
  const logger = createJsonLogger({
    level: 'error',
    out: { write: () => undefined },
    now: () => new Date(),
  });
  const issuer = createIssuer(
    {
      meshNamespace: 'nginx-mesh',
      trustDomain: 'example.org',
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit: { perSecond: 1e9, burst: 1e9 },
      // Every request comes from loopback, and all are in flight at once.
      clientRateLimit: { perSecond: 1e9, burst: 1e9 },
      maxReviewsInFlight: 1e9,
      maxBuckets: 1_000,
    },
    { directory, ca: () => view, now: () => new Date(), logger },
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

/** Sends count requests from CLIENTS clients; resolves to requests per second. */
async function load(port: number, csrs: readonly string[], count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS, rejectUnauthorized: false });
  let sent = 0;
  const one = (client: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ csr: csrs[client % csrs.length] });
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/svid',
          method: 'POST',
          agent,
          headers: { Authorization: `Bearer ${client}`, 'Content-Type': 'application/json' },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const client = async (index: number): Promise<void> => {
    while (sent < count) {
      sent += 1;
      await one(index);
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return count / seconds;
}

async function measure(kind: string, csrs: readonly string[]): Promise<number> {
  const server = await startChildServer(kind, 30_000);
  try {
    await load(server.port, csrs, WARMUP);
    return await load(server.port, csrs, REQUESTS);
  } finally {
    server.stop();
  }
}

async function main(): Promise<void> {
  const csrs = await Promise.all(
    Array.from({ length: CLIENTS }, async () => (await createKeyAndRequest('ec-p256')).csrPem),
  );
  const baseline = await measure('baseline', csrs);
  const ec = await measure('ec-p256', csrs);
  const rsa = await measure('rsa-2048', csrs);
  console.log(
    `registrar: ${REQUESTS} SVIDs per CA key type, ${CLIENTS} clients, HTTPS keep-alive on loopback, P-256 CSRs, Node ${process.versions.node}`,
  );
  console.log(`  fixed-answer HTTPS server  ${baseline.toFixed(0)}/s`);
  console.log(
    `  ec-p256 CA                 ${ec.toFixed(0)}/s  (${(ec / baseline).toFixed(2)}x the baseline)`,
  );
  console.log(
    `  rsa-2048 CA                ${rsa.toFixed(0)}/s  (${(rsa / baseline).toFixed(2)}x the baseline)`,
  );
  console.log(
    `  target ec-p256 >= ${TARGET_EC_P256}/s: ${ec >= TARGET_EC_P256 ? 'met' : 'NOT met'}`,
  );
  console.log(`svid_issuance_per_s_ec_p256 ${ec.toFixed(0)} /s`);
  console.log(`svid_issuance_per_s_rsa_2048 ${rsa.toFixed(0)} /s`);
  console.log(`svid_issuance_baseline_per_s ${baseline.toFixed(0)} /s`);
  console.log(`svid_issuance_ec_p256_ratio_to_baseline ${(ec / baseline).toFixed(2)} x`);
  process.exitCode = ec >= TARGET_EC_P256 ? 0 : 1;
}

const serveIndex = process.argv.indexOf('--serve');
if (serveIndex >= 0) void serve(process.argv[serveIndex + 1] ?? 'ec-p256');
else void main();
