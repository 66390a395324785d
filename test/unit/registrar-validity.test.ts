// The registrar signs only with a CA valid at the moment of signing, and only leaves inside the
// CA's own validity; failures read as one line. Fixed keys and requests (test/fixtures/registrar);
// the fixture CA is valid from 2026-11-26T02:51:24Z until 2126-11-02T02:51:24Z.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodFacts, TokenReviewFacts } from '../../src/manifests/registrar/svid-policy';
import { buildSvidTemplate, identityOf } from '../../src/manifests/registrar/svid-policy';
import type { UpstreamCa } from '../../src/runtime/registrar/authority';
import {
  AuthorityError,
  createAuthority,
  loadAuthority,
  signLeaf,
} from '../../src/runtime/registrar/authority';
import type { CaState } from '../../src/runtime/registrar/ca-state';
import { authorityInForce, caValidityProblem } from '../../src/runtime/registrar/ca-state';
import type { WorkloadDirectory } from '../../src/runtime/registrar/issuer';
import {
  checkCsr,
  createIssuer,
  UNAVAILABLE_RETRY_AFTER_MS,
} from '../../src/runtime/registrar/issuer';
import { describeKey } from '../../src/runtime/registrar/keys';
import { reasonOf } from '../../src/runtime/registrar/reason';
import { createJsonLogger } from '../../src/runtime/role/log';
import { injectedPodFacts, TEST_IMAGES, tokenReviewOf, WEB } from '../support/registrar-pods';

const fixture = (name: string): string =>
  readFileSync(join(__dirname, '..', 'fixtures', 'registrar', name), 'utf8');

const caPem = fixture('ca-p256.crt');
const authority = loadAuthority(
  { certificate: caPem, chain: '', key: fixture('ca-p256.key') },
  'fixture CA',
);
const NOT_BEFORE = '2026-11-26T02:51:24.000Z';
const NOT_AFTER = '2126-11-02T02:51:24.000Z';
const WINDOW = `valid from ${NOT_BEFORE} until ${NOT_AFTER}`;

const review: TokenReviewFacts = tokenReviewOf(WEB);
const pod: PodFacts = injectedPodFacts(WEB);

/** The API server's answers: every token is web-1's, unless the API is unreachable. */
function directory(reachable = true): WorkloadDirectory & { asked: number } {
  const api = {
    asked: 0,
    reviewToken: () => {
      api.asked += 1;
      return reachable
        ? Promise.resolve(review)
        : Promise.reject(
            new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') }),
          );
    },
    readPod: () => Promise.resolve(pod),
  };
  return api;
}

function issuerAt(now: Date, api: WorkloadDirectory = directory()) {
  return createIssuer(
    {
      meshNamespace: 'nginx-mesh',
      trustDomain: 'example.org',
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit: { perSecond: 100, burst: 100 },
      clientRateLimit: { perSecond: 100, burst: 100 },
      maxReviewsInFlight: 10,
      maxBuckets: 10,
    },
    {
      directory: api,
      ca: () => ({ active: authority, bundlePem: caPem }),
      now: () => now,
      logger: createJsonLogger({ level: 'error', out: { write: () => undefined }, now: () => now }),
    },
  );
}

describe('caValidityProblem', () => {
  it('names the window and the time when the CA expired', () => {
    expect(caValidityProblem(authority.fields, new Date('2127-01-01T00:00:00Z'))).toBe(
      `the CA expired: ${WINDOW}, now 2127-01-01T00:00:00.000Z`,
    );
  });

  it('names the window and the time when the CA is not valid yet', () => {
    expect(caValidityProblem(authority.fields, new Date('2026-01-01T00:00:00Z'))).toBe(
      `the CA is not valid yet: ${WINDOW}, now 2026-01-01T00:00:00.000Z`,
    );
  });

  it('takes a CA for expired from its notAfter on, as the rotation plan does', () => {
    expect(caValidityProblem(authority.fields, new Date(NOT_AFTER))).toMatch(/^the CA expired/);
    expect(caValidityProblem(authority.fields, new Date(Date.parse(NOT_AFTER) - 1))).toBe(
      undefined,
    );
    expect(caValidityProblem(authority.fields, new Date(NOT_BEFORE))).toBe(undefined);
  });
});

describe('an SVID request while the CA cannot sign', () => {
  it.each([
    ['expired', '2127-01-01T00:00:00Z', /^the CA expired: valid from .* until .*, now 2127/],
    ['not valid yet', '2026-01-01T00:00:00Z', /^the CA is not valid yet: valid from .* until /],
  ])('is answered 503 with the CA window when the CA is %s', async (_name, at, reason) => {
    const api = directory();
    const outcome = await issuerAt(new Date(at), api).issue({
      token: 'token',
      csrPem: fixture('csr-p256.pem'),
      client: '198.18.0.10',
    });
    expect(outcome).toMatchObject({
      ok: false,
      refusal: { status: 503, reason: expect.stringMatching(reason) as unknown },
      retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
    });
    expect(api.asked).toBe(0);
  });

  it('is answered 503, not 500, when the token cannot be checked with the API server', async () => {
    const outcome = await issuerAt(new Date('2030-06-01T12:00:00Z'), directory(false)).issue({
      token: 'token',
      csrPem: fixture('csr-p256.pem'),
      client: '198.18.0.10',
    });
    expect(outcome).toMatchObject({
      ok: false,
      refusal: {
        status: 503,
        reason:
          'cannot check the token with the Kubernetes API: fetch failed: connect ECONNREFUSED',
      },
    });
  });

  it('gets a leaf that ends with the CA, not after it, in the CA last minutes', async () => {
    const now = new Date(Date.parse(NOT_AFTER) - 10 * 60_000);
    const outcome = await issuerAt(now).issue({
      token: 'token',
      csrPem: fixture('csr-p256.pem'),
      client: '198.18.0.10',
    });
    if (!outcome.ok) throw new Error(outcome.refusal.reason);
    const leaf = new X509Certificate(outcome.response.certificateChain);
    expect(new Date(leaf.validTo).toISOString()).toBe(NOT_AFTER);
    expect(Date.parse(leaf.validFrom)).toBeLessThan(Date.parse(leaf.validTo));
  });
});

describe('signLeaf', () => {
  const csr = checkCsr(fixture('csr-p256.pem'));
  if ('refused' in csr) throw new Error(csr.reason);
  const template = (now: Date) =>
    buildSvidTemplate({
      identity: identityOf('example.org', 'app', 'web'),
      key: describeKey(
        createPublicKey({
          key: Buffer.from(csr.subjectPublicKeyInfo),
          format: 'der',
          type: 'spki',
        }),
      ),
      subjectPublicKeyInfo: csr.subjectPublicKeyInfo,
      issuer: authority.fields,
      signatureAlgorithm: authority.signatureAlgorithm,
      serial: new Uint8Array([1]),
      now,
      ttlMs: 3_600_000,
    });

  it('refuses a leaf whose notAfter would precede its notBefore (an expired CA)', () => {
    const late = template(new Date('2127-01-01T00:00:00Z'));
    expect(late.notAfter.getTime()).toBeLessThan(late.notBefore.getTime());
    expect(() => signLeaf(authority, late)).toThrow(AuthorityError);
    expect(() => signLeaf(authority, late)).toThrow(/refusing to sign a leaf valid from/);
  });

  it('refuses a leaf that outlives the CA or starts before it', () => {
    const valid = template(new Date('2030-06-01T12:00:00Z'));
    expect(() => signLeaf(authority, valid)).not.toThrow();
    const beyond = { ...valid, notAfter: new Date(Date.parse(NOT_AFTER) + 1) };
    expect(() => signLeaf(authority, beyond)).toThrow(AuthorityError);
    const before = { ...valid, notBefore: new Date(Date.parse(NOT_BEFORE) - 1) };
    expect(() => signLeaf(authority, before)).toThrow(AuthorityError);
  });
});

describe('createAuthority below an upstream CA', () => {
  const upstream: UpstreamCa = {
    certificatePem: caPem,
    fields: authority.fields,
    key: authority.key,
    bundlePem: caPem,
    chainPem: '',
  };
  it.each([
    ['expired', '2127-01-01T00:00:00Z'],
    ['not valid yet', '2026-01-01T00:00:00Z'],
  ])('refuses while the upstream CA is %s', async (_name, at) => {
    await expect(
      createAuthority(
        { keyType: 'ec-p256', trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream },
        new Date(at),
      ),
    ).rejects.toThrow(
      new AuthorityError(
        `the upstream CA cannot sign a new CA: it is ${WINDOW}, now ${new Date(at).toISOString()}`,
      ),
    );
  });
});

describe('authorityInForce', () => {
  it('is the last active authority when none is valid, so its window is what gets reported', () => {
    const state: CaState = {
      authorities: [authority],
      active: authority,
      bundlePem: caPem,
      nextChangeMs: 0,
    };
    expect(authorityInForce(state, new Date('2127-01-01T00:00:00Z'))).toBe(authority);
    expect(authorityInForce(state, new Date('2030-01-01T00:00:00Z'))).toBe(authority);
  });
});

describe('reasonOf', () => {
  it('adds the cause of an unreachable API server', () => {
    const error = new TypeError('fetch failed', {
      cause: new Error('connect ECONNREFUSED 127.0.0.1:6443'),
    });
    expect(reasonOf(error)).toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:6443');
  });

  it('gives the Status message of an error answer on one line', () => {
    const body = JSON.stringify({
      kind: 'Status',
      message: 'secrets "nginx-mesh-registrar-ca" is forbidden: User "x" cannot get',
      code: 403,
    });
    // As @kubernetes/client-node's ApiException carries it: the status code and the raw body.
    const error = Object.assign(
      new Error(`HTTP-Code: 403\nMessage: Unknown API Status Code!\nBody: ${JSON.stringify(body)}`),
      { code: 403, body },
    );
    expect(reasonOf(error)).toBe(
      'the API server answered 403: secrets "nginx-mesh-registrar-ca" is forbidden: User "x" cannot get',
    );
  });

  it('keeps any other failure to one line of bounded length', () => {
    expect(reasonOf(new Error(`first\nsecond ${'x'.repeat(400)}`))).toMatch(/^first second x+…$/);
    expect(reasonOf(new Error('x'.repeat(400)))).toHaveLength(300);
    expect(reasonOf('plain')).toBe('plain');
  });
});
