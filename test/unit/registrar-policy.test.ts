import { nextPlanChange, planAuthorities } from '../../src/manifests/registrar/ca-plan';
import { takeToken } from '../../src/manifests/registrar/rate-limit';
import type { PodFacts, TokenReviewFacts } from '../../src/manifests/registrar/svid-policy';
import {
  authorizeWorkload,
  buildSvidTemplate,
  checkRequestedKey,
  checkRequestedNames,
  checkTtls,
  claimOfReview,
  identityOf,
  isRefusal,
} from '../../src/manifests/registrar/svid-policy';
import { controlPlanePodFacts, injectedPodFacts, TEST_IMAGES } from '../support/registrar-pods';
import { backoffMs, expiryConcern, renewalTime } from '../../src/runtime/svid/schedule';

const review: TokenReviewFacts = {
  authenticated: true,
  username: 'system:serviceaccount:app:web',
  extra: {
    'authentication.kubernetes.io/pod-name': ['web-1'],
    'authentication.kubernetes.io/pod-uid': ['uid-1'],
  },
  audiences: ['nginx-mesh-registrar'],
  error: '',
};
const pod: PodFacts = injectedPodFacts({
  namespace: 'app',
  name: 'web-1',
  uid: 'uid-1',
  serviceAccount: 'web',
});
const context = { meshNamespace: 'nginx-mesh', trustDomain: 'example.org', ...TEST_IMAGES };
function expectRefusal(result: unknown, status: number, reason: RegExp): void {
  expect(result).toMatchObject({ refused: true, status });
  expect((result as { reason: string }).reason).toMatch(reason);
}

const claim = { namespace: 'app', serviceAccount: 'web', podName: 'web-1', podUid: 'uid-1' };

describe('token claims', () => {
  it('takes the ServiceAccount and the bound pod from a review', () => {
    expect(claimOfReview(review, 'nginx-mesh-registrar')).toEqual(claim);
  });

  it.each([
    ['an unauthenticated token', { authenticated: false, error: 'token expired' }, /token expired/],
    ['another audience', { audiences: ['api'] }, /not for audience "nginx-mesh-registrar"/],
    ['a user that is no ServiceAccount', { username: 'alice' }, /"alice" is not a ServiceAccount/],
    ['a token bound to no pod', { extra: {} }, /not bound to a pod/],
  ])('refuses %s with 401', (_name, change, reason) => {
    const result = claimOfReview({ ...review, ...change }, 'nginx-mesh-registrar');
    expectRefusal(result, 401, reason);
  });
});

describe('workload authorisation', () => {
  it('grants an injected pod the identity of its ServiceAccount', () => {
    expect(authorizeWorkload(claim, pod, context)).toEqual({
      namespace: 'app',
      serviceAccount: 'web',
      spiffeId: 'spiffe://example.org/ns/app/sa/web',
      dnsName: 'web.app.svc',
    });
  });

  it('grants the controller its identity without a sidecar', () => {
    const control = controlPlanePodFacts('nginx-mesh-controller', 'uid-1');
    const result = authorizeWorkload(
      {
        namespace: 'nginx-mesh',
        serviceAccount: 'nginx-mesh-controller',
        podName: control.name,
        podUid: 'uid-1',
      },
      control,
      context,
    );
    expect(isRefusal(result)).toBe(false);
  });

  it.each([
    ['a pod that does not exist', undefined, /does not exist/],
    ['a recreated pod of the same name', { ...pod, uid: 'uid-2' }, /has uid uid-2/],
    [
      'a pod running as another ServiceAccount',
      { ...pod, serviceAccountName: 'admin' },
      /runs as ServiceAccount "admin"/,
    ],
    ['a pod being deleted', { ...pod, deleting: true }, /being deleted/],
    [
      'a pod outside the mesh',
      { ...pod, containers: pod.containers.filter((c) => c.name !== 'nginx-mesh-sidecar') },
      /not in the mesh: it has no container nginx-mesh-sidecar/,
    ],
  ])('refuses %s with 403', (_name, facts, reason) => {
    expectRefusal(authorizeWorkload(claim, facts, context), 403, reason);
  });
});

describe('requested keys and names', () => {
  it.each([
    [{ type: 'ec', curve: 'prime256v1' } as const],
    [{ type: 'ec', curve: 'secp384r1' } as const],
    [{ type: 'rsa', modulusBits: 2048 } as const],
  ])('accepts %j', (key) => expect(checkRequestedKey(key)).toBeUndefined());

  it.each([
    [{ type: 'ec', curve: 'secp521r1' } as const, /curve secp521r1/],
    [{ type: 'rsa', modulusBits: 1024 } as const, /1024 bits/],
    [{ type: 'other', name: 'ed25519' } as const, /ed25519/],
  ])('refuses %j', (key, reason) => {
    expectRefusal(checkRequestedKey(key), 400, reason);
  });

  const identity = identityOf('example.org', 'app', 'web');
  it('accepts no names, or exactly the identity', () => {
    expect(
      checkRequestedNames({ uris: [], dnsNames: [], otherNames: 0 }, identity),
    ).toBeUndefined();
    expect(
      checkRequestedNames(
        { uris: [identity.spiffeId], dnsNames: ['web.app.svc'], otherNames: 0 },
        identity,
      ),
    ).toBeUndefined();
  });

  it('refuses another identity, another DNS name and IP names', () => {
    const other = { uris: ['spiffe://example.org/ns/app/sa/admin'], dnsNames: [], otherNames: 0 };
    expect(checkRequestedNames(other, identity)).toMatchObject({ status: 403 });
    expect(
      checkRequestedNames({ uris: [], dnsNames: ['db.app.svc'], otherNames: 0 }, identity),
    ).toMatchObject({ status: 403 });
    expect(checkRequestedNames({ uris: [], dnsNames: [], otherNames: 1 }, identity)).toMatchObject({
      status: 400,
    });
  });
});

describe('SVID template', () => {
  const issuer = {
    subject: Uint8Array.of(0x30, 0),
    issuer: Uint8Array.of(0x30, 0),
    subjectPublicKeyInfo: Uint8Array.of(),
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-01-31T00:00:00Z'),
    subjectKeyId: Uint8Array.of(1, 2),
    ca: true,
    uris: [],
    dnsNames: [],
  };
  const base = {
    identity: identityOf('example.org', 'app', 'web'),
    subjectPublicKeyInfo: Uint8Array.of(),
    issuer,
    signatureAlgorithm: 'ecdsa-sha256' as const,
    serial: Uint8Array.of(1),
    now: new Date('2026-01-10T00:00:00Z'),
    ttlMs: 3_600_000,
  };

  it('is a leaf for the SPIFFE ID and its DNS name, for servers and clients', () => {
    const template = buildSvidTemplate({ ...base, key: { type: 'ec', curve: 'prime256v1' } });
    expect(template).toMatchObject({
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature', 'keyAgreement'],
      extendedKeyUsages: ['serverAuth', 'clientAuth'],
      uris: ['spiffe://example.org/ns/app/sa/web'],
      dnsNames: ['web.app.svc'],
      notBefore: new Date('2026-01-09T23:59:00Z'),
      notAfter: new Date('2026-01-10T01:00:00Z'),
      authorityKeyId: Uint8Array.of(1, 2),
    });
  });

  it('uses key encipherment for RSA keys', () => {
    const template = buildSvidTemplate({ ...base, key: { type: 'rsa', modulusBits: 2048 } });
    expect(template.keyUsages).toEqual(['digitalSignature', 'keyEncipherment']);
  });

  it('never outlives its issuer', () => {
    const now = new Date('2026-01-30T23:30:00Z');
    const template = buildSvidTemplate({ ...base, now, key: { type: 'ec', curve: 'prime256v1' } });
    expect(template.notAfter).toEqual(issuer.notAfter);
  });

  it('requires the CA to live at least six SVID lifetimes', () => {
    expect(checkTtls(6 * 3_600_000, 3_600_000)).toBeUndefined();
    expect(checkTtls(5 * 3_600_000, 3_600_000)).toMatch(/--ca-ttl/);
  });
});

describe('CA rotation plan', () => {
  const hours = (n: number): Date => new Date(Date.UTC(2026, 0, 1) + n * 3_600_000);
  const a = { notBefore: hours(0), notAfter: hours(60) };
  const b = { notBefore: hours(30), notAfter: hours(90) };

  it('asks for a first authority when there is none', () => {
    expect(planAuthorities([], hours(0))).toEqual({ live: [], active: undefined, needNext: true });
  });

  it('signs with the only authority until half-way, then asks for the next', () => {
    expect(planAuthorities([a], hours(29))).toEqual({ live: [0], active: 0, needNext: false });
    expect(planAuthorities([a], hours(30))).toEqual({ live: [0], active: 0, needNext: true });
  });

  it('publishes the next authority a sixth of the life before it signs', () => {
    expect(planAuthorities([a, b], hours(39))).toMatchObject({ live: [0, 1], active: 0 });
    expect(planAuthorities([a, b], hours(40))).toMatchObject({ live: [0, 1], active: 1 });
  });

  it('delays the handover when the successor was created late', () => {
    const late = { notBefore: hours(45), notAfter: hours(105) };
    expect(planAuthorities([a, late], hours(50))).toMatchObject({ active: 0 });
    expect(planAuthorities([a, late], hours(55))).toMatchObject({ active: 1 });
  });

  it('drops expired authorities', () => {
    expect(planAuthorities([a, b], hours(60))).toEqual({ live: [1], active: 1, needNext: true });
  });

  it('names the next moment the plan changes', () => {
    expect(nextPlanChange([a], hours(1))).toBe(hours(10).getTime());
    expect(nextPlanChange([a], hours(31))).toBe(hours(40).getTime());
  });
});

describe('rate limit', () => {
  const limit = { perSecond: 2, burst: 3 };
  it('allows a burst, then the steady rate', () => {
    let bucket = undefined;
    const allowed: boolean[] = [];
    for (let i = 0; i < 4; i += 1) {
      const result = takeToken(bucket, 1000, limit);
      bucket = result.bucket;
      allowed.push(result.allowed);
    }
    expect(allowed).toEqual([true, true, true, false]);
    expect(takeToken(bucket, 1000, limit).retryAfterMs).toBe(500);
    expect(takeToken(bucket, 1500, limit).allowed).toBe(true);
  });
});

describe('SVID client schedule', () => {
  it('renews between 40% and 50% of the lifetime', () => {
    expect(renewalTime(0, 1000, 0, 0)).toBe(500);
    expect(renewalTime(0, 1000, 0, 0.999)).toBeCloseTo(400.1);
  });

  it('counts the lifetime of a backdated certificate from its arrival', () => {
    // Dated back 60 s, valid 8 s from arrival at 60 000: renew 4 s after arrival, not at once.
    expect(renewalTime(0, 68_000, 60_000, 0)).toBe(64_000);
    expect(renewalTime(0, 68_000, 60_000, 0.999)).toBeCloseTo(63_200.8);
    // A notBefore later than arrival (a clock behind the registrar's) still starts the life.
    expect(renewalTime(2_000, 4_000, 1_000, 0)).toBe(3_000);
  });

  it('backs off exponentially, bounded', () => {
    expect([1, 2, 3].map((n) => backoffMs(n, 1))).toEqual([500, 1000, 2000]);
    expect(backoffMs(40, 1)).toBe(30_000);
    expect(backoffMs(1, 0)).toBe(250);
  });

  it('grows louder as expiry nears', () => {
    expect(expiryConcern(0, 100, 0, 10)).toBe('none');
    expect(expiryConcern(0, 100, 0, 80)).toBe('expiring');
    expect(expiryConcern(0, 100, 0, 100)).toBe('expired');
    // Dated back 60 s, valid 8 s from arrival: not expiring at once.
    expect(expiryConcern(0, 68_000, 60_000, 61_000)).toBe('none');
    expect(expiryConcern(0, 68_000, 60_000, 66_000)).toBe('expiring');
  });
});
