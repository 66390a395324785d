// Webhook latency: the controller's real HTTPS webhook server on loopback, in its own process
// as in a cluster, answering AdmissionReviews for a Deployment's pod with 50 requests in
// flight, for a bounded count. Target: p99 under 10 ms. The baseline in the same run is an
// HTTPS server in its own process on the same kind of certificate that answers a fixed body,
// so the figures show what review and injection add.
import { createServer, request, Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { reviewPodAdmission } from '../src/manifests/admission';
import { injectPodTemplate } from '../src/manifests/inject/inject-pod';
import { createServingCertificate } from '../src/runtime/pki/serving-certificate';
import { startWebhookServer } from '../src/runtime/controller/webhook-server';
import { createJsonLogger } from '../src/runtime/role/log';
import type { InjectionSettings } from '../src/manifests/inject/types';
import { startChildServer } from './support/child-server';
import type { Target } from './support/targets.mjs';
import { targetLine } from './support/targets.mjs';

const CONCURRENCY = 50;
const REQUESTS = 4_000;
const WARMUP = 500;
const TARGET_P99_MS: Target = { how: '<', limit: 10 };

const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 'example/nginx-mesh-sidecar:1',
  initImage: 'example/nginx-mesh-init:1',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

const review = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: 'web-7d4b9c5f6-',
        labels: { app: 'web', 'pod-template-hash': '7d4b9c5f6' },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'web-7d4b9c5f6',
            controller: true,
            uid: 'x',
          },
        ],
      },
      spec: {
        serviceAccountName: 'web',
        containers: [
          {
            name: 'web',
            image: 'example/web:1',
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/ready', port: 'http' } },
          },
        ],
      },
    },
  },
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function load(port: number, agent: Agent, count: number): Promise<number[]> {
  const latencies: number[] = [];
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/inject',
          method: 'POST',
          agent,
          rejectUnauthorized: false,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(review);
    });
  const worker = async (): Promise<void> => {
    while (sent < count) {
      sent += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return latencies.sort((a, b) => a - b);
}

/** Child process: serve one kind of server on a free loopback port and print the port. */
async function serve(kind: string): Promise<void> {
  const certificate = await createServingCertificate('bench', ['localhost'], new Date(), 1);
  if (kind === 'webhook') {
    const logger = createJsonLogger({
      level: 'error',
      out: { write: () => undefined },
      now: () => new Date(),
    });
    const webhook = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      path: '/inject',
      certificatePem: certificate.certificatePem,
      privateKeyPem: certificate.privateKeyPem,
      decide: (body) => reviewPodAdmission(body, settings, injectPodTemplate),
      logger,
    });
    process.stdout.write(`${webhook.port}\n`);
    return;
  }
  const fixedBody =
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}';
  const baseline = createServer(
    { cert: certificate.certificatePem, key: certificate.privateKeyPem },
    (req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(fixedBody),
      );
    },
  );
  await new Promise<void>((resolve) => baseline.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${(baseline.address() as AddressInfo).port}\n`);
}

async function main(): Promise<void> {
  const webhook = await startChildServer('webhook', 20_000);
  const baseline = await startChildServer('baseline', 20_000);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    await load(webhook.port, agent, WARMUP);
    await load(baseline.port, agent, WARMUP);
    const base = await load(baseline.port, agent, REQUESTS);
    const hook = await load(webhook.port, agent, REQUESTS);
    const p50 = percentile(hook, 50);
    const p99 = percentile(hook, 99);
    const baseP99 = percentile(base, 99);
    console.log(
      `webhook: ${REQUESTS} reviews, ${CONCURRENCY} in flight, HTTPS on loopback, Node ${process.versions.node}`,
    );
    console.log(
      `  fixed-answer HTTPS server  p50 ${percentile(base, 50).toFixed(2)} ms  p99 ${baseP99.toFixed(2)} ms`,
    );
    console.log(
      `  injection webhook          p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  (${(p99 / baseP99).toFixed(2)}x the baseline p99)`,
    );
    console.log(`webhook_p50_ms ${p50.toFixed(2)} ms`);
    console.log(`webhook_p99_ms ${p99.toFixed(2)} ms`);
    console.log(`webhook_baseline_p99_ms ${baseP99.toFixed(2)} ms`);
    console.log(`webhook_p99_ratio_to_baseline ${(p99 / baseP99).toFixed(2)} x`);
    console.log(targetLine('webhook_p99_ms', p99, TARGET_P99_MS, 2));
  } finally {
    agent.destroy();
    webhook.stop();
    baseline.stop();
  }
}

const serveIndex = process.argv.indexOf('--serve');
if (serveIndex >= 0) void serve(process.argv[serveIndex + 1] ?? 'webhook');
else void main();
