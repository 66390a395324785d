// Certificates the registrar signs, read back with an independent parser (@peculiar/x509) and
// node:crypto, from fixed keys and requests (test/fixtures/registrar).
import 'reflect-metadata';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { PodFacts, TokenReviewFacts } from '../../src/manifests/registrar/svid-policy';
import { isRefusal } from '../../src/manifests/registrar/svid-policy';
import { loadAuthority } from '../../src/runtime/registrar/authority';
import type { WorkloadDirectory } from '../../src/runtime/registrar/issuer';
import { checkCsr, createIssuer } from '../../src/runtime/registrar/issuer';
import { createJsonLogger } from '../../src/runtime/role/log';
import { createRequest } from '../../src/runtime/svid/csr';
import { injectedPodFacts, TEST_IMAGES } from '../support/registrar-pods';

const fixture = (name: string): string =>
  readFileSync(join(__dirname, '..', 'fixtures', 'registrar', name), 'utf8');

const caPem = fixture('ca-p256.crt');
const authority = loadAuthority(
  { certificate: caPem, chain: '', key: fixture('ca-p256.key') },
  'fixture CA',
);
const now = new Date('2030-06-01T12:00:00Z');

function review(token: string): TokenReviewFacts {
  const [namespace = '', account = '', pod = '', uid = '', audience = 'nginx-mesh-registrar'] =
    token.split(':');
  return {
    authenticated: namespace !== 'forged',
    username: `system:serviceaccount:${namespace}:${account}`,
    extra: {
      'authentication.kubernetes.io/pod-name': [pod],
      'authentication.kubernetes.io/pod-uid': [uid],
    },
    audiences: [audience],
    error: 'invalid signature',
  };
}

const pods: Record<string, PodFacts> = {
  'app/web-1': injectedPodFacts({
    namespace: 'app',
    name: 'web-1',
    uid: 'u1',
    serviceAccount: 'web',
  }),
};

/** The API server's answers, for these tokens: "<ns>:<sa>:<pod>:<uid>[:<audience>]". */
const directory: WorkloadDirectory = {
  reviewToken: (token) => Promise.resolve(review(token)),
  readPod: (namespace, name) => Promise.resolve(pods[`${namespace}/${name}`]),
};

function issuer(rateLimit = { perSecond: 100, burst: 100 }) {
  const lines: string[] = [];
  const logger = createJsonLogger({
    level: 'debug',
    out: { write: (text) => void lines.push(text) },
    now: () => now,
  });
  return createIssuer(
    {
      meshNamespace: 'nginx-mesh',
      trustDomain: 'example.org',
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit,
      clientRateLimit: { perSecond: 100, burst: 100 },
      maxReviewsInFlight: 10,
      maxBuckets: 10,
    },
    { directory, ca: () => ({ active: authority, bundlePem: caPem }), now: () => now, logger },
  );
}

const TOKEN = 'app:web:web-1:u1';

async function issue(csr: string, token = TOKEN) {
  const outcome = await issuer().issue({
    token: token,
    csrPem: fixture(csr),
    client: '198.18.0.10',
  });
  if (!outcome.ok) throw new Error(outcome.refusal.reason);
  return outcome.response;
}

describe('issued SVID', () => {
  it('names the workload by SPIFFE ID and DNS name, and nothing else', async () => {
    const response = await issue('csr-p256.pem');
    const leaf = new x509.X509Certificate(response.certificateChain);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.toJSON()).toEqual([
      { type: 'dns', value: 'web.app.svc' },
      { type: 'url', value: 'spiffe://example.org/ns/app/sa/web' },
    ]);
    expect(response.spiffeId).toBe('spiffe://example.org/ns/app/sa/web');
    expect(leaf.subject).toBe('CN=web.app.svc');
  });

  it('is a leaf for servers and clients with critical constraints and key usages', async () => {
    const leaf = new x509.X509Certificate((await issue('csr-p256.pem')).certificateChain);
    const constraints = leaf.getExtension(x509.BasicConstraintsExtension);
    expect(constraints).toMatchObject({ ca: false, critical: true });
    const usages = leaf.getExtension(x509.KeyUsagesExtension);
    expect(usages?.critical).toBe(true);
    expect(usages?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
    );
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
  });

  it('uses key encipherment for an RSA key', async () => {
    const leaf = new x509.X509Certificate((await issue('csr-rsa2048.pem')).certificateChain);
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
  });

  it('is valid for the SVID TTL, back-dated a minute, and chains to the bundle', async () => {
    const response = await issue('csr-p384.pem');
    const leaf = new X509Certificate(response.certificateChain);
    const ca = new X509Certificate(response.trustBundle);
    expect(new Date(leaf.validFrom)).toEqual(new Date('2030-06-01T11:59:00Z'));
    expect(new Date(leaf.validTo)).toEqual(new Date('2030-06-01T13:00:00Z'));
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(response.certificateChain).toContain(caPem.trim());
  });

  it('certifies the key of the request', async () => {
    const leaf = new X509Certificate((await issue('csr-p256.pem')).certificateChain);
    const key = new x509.Pkcs10CertificateRequest(fixture('csr-p256.pem')).publicKey;
    expect(Buffer.from(leaf.publicKey.export({ type: 'spki', format: 'der' }))).toEqual(
      Buffer.from(key.rawData),
    );
  });

  it('certifies the same key again for a renewal that keeps it', () => {
    const key = createPrivateKey(fixture('key-p256.pem'));
    const first = createRequest(key);
    const renewal = createRequest(key);
    const spki = (pem: string): Buffer => {
      const csr = checkCsr(pem);
      if ('refused' in csr) throw new Error(csr.reason);
      return Buffer.from(csr.subjectPublicKeyInfo);
    };
    expect(renewal.keyPem).toBe(first.keyPem);
    expect(spki(renewal.csrPem)).toEqual(spki(first.csrPem));
    expect(spki(first.csrPem)).toEqual(
      createPublicKey(key).export({ type: 'spki', format: 'der' }),
    );
  });

  it('is issued when the request asks for exactly its own names', async () => {
    await expect(issue('csr-own.pem')).resolves.toMatchObject({
      spiffeId: 'spiffe://example.org/ns/app/sa/web',
    });
  });
});

describe('refused requests', () => {
  it.each([
    ['a forged token', 'csr-p256.pem', 'forged:web:web-1:u1', 401, /invalid signature/],
    ['a token for another audience', 'csr-p256.pem', 'app:web:web-1:u1:api', 401, /audience/],
    ['a token of a pod that is gone', 'csr-p256.pem', 'app:web:web-9:u9', 403, /does not exist/],
    ['a token of an older pod of the same name', 'csr-p256.pem', 'app:web:web-1:u0', 403, /uid/],
    ['another identity', 'csr-foreign.pem', TOKEN, 403, /ns\/other\/sa\/admin/],
    ['an IP address', 'csr-ip.pem', TOKEN, 400, /IP/],
    ['an RSA-1024 key', 'csr-rsa1024.pem', TOKEN, 400, /1024 bits/],
    ['a P-521 key', 'csr-p521.pem', TOKEN, 400, /secp521r1/],
    ['an Ed25519 key', 'csr-ed25519.pem', TOKEN, 400, /ed25519/],
    ['no token', 'csr-p256.pem', '', 401, /no bearer token/],
  ])('%s', async (_name, csr, token, status, reason) => {
    const outcome = await issuer().issue({
      token: token,
      csrPem: fixture(csr),
      client: '198.18.0.10',
    });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal.status).toBe(status);
    expect(outcome.refusal.reason).toMatch(reason);
  });

  it('a request whose signature does not match its key', () => {
    const pem = fixture('csr-p256.pem');
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(checkCsr(tampered)).toMatchObject({ status: 400 });
  });

  it.each([
    ['not PEM'],
    ['-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n'],
  ])('malformed request %#', (pem) => expect(isRefusal(checkCsr(pem))).toBe(true));

  it('more requests for one identity than its rate limit', async () => {
    const limited = issuer({ perSecond: 1, burst: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) {
      const outcome = await limited.issue({
        token: TOKEN,
        csrPem: fixture('csr-p256.pem'),
        client: '198.18.0.10',
      });
      statuses.push(outcome.ok ? 200 : outcome.refusal.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
  });
});
