// The registrar's HTTPS API under a flood from one address: beyond the address's burst every
// request is answered 429 with Retry-After, and the directory behind it (the API server's
// TokenReview and pod lookup) is asked no more than the burst, whatever the flood's size.
import 'reflect-metadata';
import * as https from 'node:https';
import { IDENTITY_TOKEN_AUDIENCE, REGISTRAR_NAME } from '../../src/manifests/constants';
import type { ApiServer } from '../../src/runtime/registrar/api-server';
import { startApiServer } from '../../src/runtime/registrar/api-server';
import type { WorkloadDirectory } from '../../src/runtime/registrar/issuer';
import { createIssuer } from '../../src/runtime/registrar/issuer';
import { issueServingCertificate } from '../../src/runtime/registrar/serving';
import { createJsonLogger } from '../../src/runtime/role/log';
import { createKeyAndRequest } from '../../src/runtime/svid/csr';
import { injectedPodFacts, TEST_IMAGES, tokenReviewOf, WEB } from '../support/registrar-pods';
import {
  createTestAuthority,
  TEST_MESH_NAMESPACE,
  TEST_TRUST_DOMAIN,
} from '../support/test-registrar';

const BURST = 4;
let server: ApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function post(
  port: number,
  ca: string,
  body: string,
): Promise<{ status: number; retryAfter: string | undefined; error: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/svid',
        ca,
        servername: `${REGISTRAR_NAME}.${TEST_MESH_NAMESPACE}.svc`,
        headers: { Authorization: 'Bearer web-token', 'Content-Type': 'application/json' },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const retry = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: typeof retry === 'string' ? retry : undefined,
            error: (JSON.parse(text) as { error?: string }).error ?? '',
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

it('answers a flood from one address with 429 and Retry-After, asking the API server only for the burst', async () => {
  const authority = await createTestAuthority();
  const view = { active: authority, bundlePem: authority.stored.certificate };
  let reviews = 0;
  const directory: WorkloadDirectory = {
    reviewToken: (_token, audience) => {
      reviews += 1;
      return Promise.resolve(
        tokenReviewOf(WEB, { audiences: [audience === IDENTITY_TOKEN_AUDIENCE ? audience : ''] }),
      );
    },
    readPod: () => Promise.resolve(injectedPodFacts(WEB)),
  };
  const logger = createJsonLogger({
    level: 'error',
    out: { write: () => undefined },
    now: () => new Date(),
  });
  const issuer = createIssuer(
    {
      meshNamespace: TEST_MESH_NAMESPACE,
      trustDomain: TEST_TRUST_DOMAIN,
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit: { perSecond: 1000, burst: 1000 },
      clientRateLimit: { perSecond: 0.1, burst: BURST },
      maxReviewsInFlight: 100,
      maxBuckets: 100,
    },
    { directory, ca: () => view, now: () => new Date(), logger },
  );
  const serving = await issueServingCertificate(
    view,
    { namespace: TEST_MESH_NAMESPACE, trustDomain: TEST_TRUST_DOMAIN, ttlMs: 86_400_000 },
    new Date(),
  );
  server = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    certificateChainPem: serving.chainPem,
    privateKeyPem: serving.keyPem,
    issuer,
    logger,
  });
  const { csrPem } = await createKeyAndRequest('ec-p256');
  const body = JSON.stringify({ csr: csrPem });
  const port = server.port;
  const answers = await Promise.all(
    Array.from({ length: 40 }, () => post(port, authority.stored.certificate, body)),
  );
  const statuses = answers.map((answer) => answer.status);
  expect(statuses.filter((status) => status === 200)).toHaveLength(BURST);
  expect(statuses.filter((status) => status === 429)).toHaveLength(40 - BURST);
  const limited = answers.find((answer) => answer.status === 429);
  expect(limited?.error).toBe('rate limit for client 127.0.0.1');
  expect(Number(limited?.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(reviews).toBe(BURST);
});
