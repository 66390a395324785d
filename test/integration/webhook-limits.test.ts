// The injection webhook's HTTPS server with the real admission decision: what a pod author can
// send it. A review nested deeper than the mesh walks is refused 400 naming the bound, before
// the decision sees it; an ordinary review of the same pod is still injected.
import * as https from 'node:https';
import { reviewPodAdmission } from '../../src/manifests/admission';
import { MAX_DOCUMENT_DEPTH } from '../../src/manifests/constants';
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import type { WebhookServer } from '../../src/runtime/controller/webhook-server';
import { startWebhookServer } from '../../src/runtime/controller/webhook-server';
import { createServingCertificate } from '../../src/runtime/pki/serving-certificate';
import { createJsonLogger } from '../../src/runtime/role/log';

const SERVER_NAME = 'nginx-mesh-webhook.nginx-mesh.svc';
const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 'registry.test/nginx-mesh-sidecar:1',
  initImage: 'registry.test/nginx-mesh-init:1',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

let server: WebhookServer;
let caPem: string;
let decisions = 0;

beforeAll(async () => {
  const serving = await createServingCertificate(SERVER_NAME, [SERVER_NAME], new Date(), 1);
  caPem = serving.caPem;
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    path: '/mutate',
    certificatePem: serving.certificatePem,
    privateKeyPem: serving.privateKeyPem,
    decide: (body) => {
      decisions += 1;
      return reviewPodAdmission(body, settings, injectPodTemplate);
    },
    logger: createJsonLogger({
      level: 'error',
      out: { write: () => true },
      now: () => new Date(0),
    }),
  });
});

afterAll(() => server.close());

/** An AdmissionReview of a pod whose spec carries `extra`. */
function review(extra: unknown): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'apps',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', namespace: 'apps' },
        spec: { containers: [{ name: 'a', image: 'a' }], extra },
      },
    },
  });
}

function post(body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/mutate',
        method: 'POST',
        servername: SERVER_NAME,
        ca: caPem,
        headers: { 'Content-Type': 'application/json' },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A JSON text of arrays nested depth deep, as a client sends it (no JSON.stringify). */
const nestedText = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

it('refuses a review nested 100000 deep with 400 naming the bound, without deciding it', async () => {
  decisions = 0;
  const body = review('EXTRA').replace('"EXTRA"', nestedText(100_000));
  const answer = await post(body);
  expect(answer).toEqual({
    status: 400,
    body: `AdmissionReview nested deeper than ${MAX_DOCUMENT_DEPTH} levels\n`,
  });
  expect(decisions).toBe(0);
});

it('still injects the same pod nested within the bound', async () => {
  decisions = 0;
  const answer = await post(review([[['shallow']]]));
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({
    kind: 'AdmissionReview',
    response: { uid: 'u-1', allowed: true, patchType: 'JSONPatch' },
  });
  expect(decisions).toBe(1);
});
