// A flood of SVID requests costs the API server nothing beyond a fixed budget: one client
// address is limited before any TokenReview, and reviews in flight are capped, each answered
// 429 with a time to retry. The limiter's memory is bounded whatever the number of addresses.
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenReviewFacts } from '../../src/manifests/registrar/svid-policy';
import { loadAuthority } from '../../src/runtime/registrar/authority';
import type { IssueOutcome, WorkloadDirectory } from '../../src/runtime/registrar/issuer';
import { BUSY_RETRY_AFTER_MS, createIssuer } from '../../src/runtime/registrar/issuer';
import { createBucketLimiter } from '../../src/runtime/registrar/limiter';
import { createJsonLogger } from '../../src/runtime/role/log';
import { injectedPodFacts, TEST_IMAGES, tokenReviewOf, WEB } from '../support/registrar-pods';

const fixture = (name: string): string =>
  readFileSync(join(__dirname, '..', 'fixtures', 'registrar', name), 'utf8');
const caPem = fixture('ca-p256.crt');
const authority = loadAuthority(
  { certificate: caPem, chain: '', key: fixture('ca-p256.key') },
  'fixture CA',
);
const csrPem = fixture('csr-p256.pem');
const now = new Date('2030-06-01T12:00:00Z');

const review: TokenReviewFacts = tokenReviewOf(WEB);
const pod = injectedPodFacts(WEB);

/** Counts the API calls; while held, reviews wait until released. */
function countingDirectory() {
  let release: () => void = () => undefined;
  let held: Promise<void> | undefined;
  const api = {
    reviews: 0,
    podReads: 0,
    hold() {
      held = new Promise<void>((resolve) => (release = resolve));
    },
    release: () => release(),
    directory: {
      reviewToken: async () => {
        api.reviews += 1;
        await held;
        return review;
      },
      readPod: () => {
        api.podReads += 1;
        return Promise.resolve(pod);
      },
    } satisfies WorkloadDirectory,
  };
  return api;
}

function issuerFor(directory: WorkloadDirectory, maxReviewsInFlight = 100) {
  return createIssuer(
    {
      meshNamespace: 'nginx-mesh',
      trustDomain: 'example.org',
      ...TEST_IMAGES,
      svidTtlMs: 3_600_000,
      rateLimit: { perSecond: 1000, burst: 1000 },
      clientRateLimit: { perSecond: 1, burst: 5 },
      maxReviewsInFlight,
      maxBuckets: 100,
    },
    {
      directory,
      ca: () => ({ active: authority, bundlePem: caPem }),
      now: () => now,
      logger: createJsonLogger({ level: 'error', out: { write: () => undefined }, now: () => now }),
    },
  );
}

const statusOf = (outcome: IssueOutcome): number => (outcome.ok ? 200 : outcome.refusal.status);

describe('a flood from one client address', () => {
  it('is answered 429 with Retry-After beyond its burst, without a TokenReview', async () => {
    const api = countingDirectory();
    const issuer = issuerFor(api.directory);
    const outcomes: IssueOutcome[] = [];
    for (let i = 0; i < 50; i += 1) {
      outcomes.push(await issuer.issue({ token: 't', csrPem, client: '198.18.0.66' }));
    }
    expect(outcomes.slice(0, 5).map(statusOf)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(outcomes.slice(5).map(statusOf))).toEqual(new Set([429]));
    expect(outcomes[5]).toMatchObject({
      refusal: { reason: 'rate limit for client 198.18.0.66' },
      retryAfterMs: 1000,
    });
    expect(api.reviews).toBe(5);
    expect(api.podReads).toBe(5);
  });

  it('is limited before its CSR is even read', async () => {
    const api = countingDirectory();
    const issuer = issuerFor(api.directory);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      statuses.push(statusOf(await issuer.issue({ token: 't', csrPem: 'junk', client: 'a' })));
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429, 429]);
    expect(api.reviews).toBe(0);
  });

  it('leaves other addresses alone', async () => {
    const api = countingDirectory();
    const issuer = issuerFor(api.directory);
    for (let i = 0; i < 20; i += 1) await issuer.issue({ token: 't', csrPem, client: 'flooder' });
    const other = await issuer.issue({ token: 't', csrPem, client: '198.18.0.7' });
    expect(other.ok).toBe(true);
  });
});

describe('token reviews in flight', () => {
  it('are capped: a request beyond the cap is answered 429 at once, without a review', async () => {
    const api = countingDirectory();
    api.hold();
    const issuer = issuerFor(api.directory, 2);
    const first = issuer.issue({ token: 't', csrPem, client: 'a' });
    const second = issuer.issue({ token: 't', csrPem, client: 'b' });
    const third = await issuer.issue({ token: 't', csrPem, client: 'c' });
    expect(third).toMatchObject({
      ok: false,
      refusal: { status: 429, reason: '2 token reviews in flight already' },
      retryAfterMs: BUSY_RETRY_AFTER_MS,
    });
    expect(api.reviews).toBe(2);
    api.release();
    expect((await Promise.all([first, second])).map(statusOf)).toEqual([200, 200]);
    // The slots are free again once the reviews have answered.
    expect(statusOf(await issuer.issue({ token: 't', csrPem, client: 'd' }))).toBe(200);
  });

  it('free their slot when the API server fails', async () => {
    let reviews = 0;
    const failing: WorkloadDirectory = {
      reviewToken: () => {
        reviews += 1;
        return Promise.reject(new Error('connection refused'));
      },
      readPod: () => Promise.resolve(pod),
    };
    const issuer = issuerFor(failing, 1);
    for (const client of ['a', 'b', 'c']) {
      expect(statusOf(await issuer.issue({ token: 't', csrPem, client }))).toBe(503);
    }
    expect(reviews).toBe(3);
  });
});

describe('the bucket limiter', () => {
  it('keeps at most maxBuckets, dropping the least recently used', () => {
    const limiter = createBucketLimiter({ perSecond: 1, burst: 1 }, 3);
    for (let i = 0; i < 1000; i += 1) limiter.take(`198.18.${i >> 8}.${i & 255}`, 0);
    expect(limiter.size()).toBe(3);
    expect(limiter.take('198.18.3.231', 0)).toBe(1000);
    expect(limiter.take('198.18.0.0', 0)).toBeUndefined();
  });
});
