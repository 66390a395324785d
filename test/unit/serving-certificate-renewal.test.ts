// Renewal of the webhook's and metrics API's serving certificates: when a certificate falls due,
// when it is checked next, when the role stops being ready, and how replicas sharing one Secret
// settle who writes (the one that loses a race serves the winner's certificate).
import type { CertificateTools } from '../../src/runtime/pki/managed-certificate';
import { kubeCertificateStore } from '../../src/runtime/pki/kube-tls-api';
import {
  caBundleOf,
  reconcileServingCertificate,
  serviceDnsNames,
  startServingCertificate,
} from '../../src/runtime/pki/managed-certificate';
import type { CertificateFacts } from '../../src/runtime/pki/renewal-policy';
import {
  assessCertificate,
  buildCaBundle,
  nextCheckDelayMs,
  renewalDueAt,
  servingReadiness,
  splitPemCertificates,
} from '../../src/runtime/pki/renewal-policy';
import type { ServingCertificate } from '../../src/runtime/pki/serving-certificate';
import { createJsonLogger } from '../../src/runtime/role/log';
import { FAKE_OWNER, fakeClientNode } from '../support/fake-client-node';
import { fixedClock } from '../support/fakes';
import { memorySecrets } from '../support/memory-secrets';

const HOUR = 3_600_000;
const t0 = Date.parse('2030-01-01T00:00:00Z');
const at = (hours: number): Date => new Date(t0 + hours * HOUR);
const options = { namespace: 'nginx-mesh', secretName: 'webhook-tls', serviceName: 'webhook' };
const names = serviceDnsNames('webhook', 'nginx-mesh');

function facts(fromHours: number, toHours: number, dnsNames = names): CertificateFacts {
  return { notBefore: at(fromHours), notAfter: at(toHours), dnsNames };
}

const pem = (label: string): string =>
  `-----BEGIN CERTIFICATE-----\n${label}\n-----END CERTIFICATE-----\n`;

/**
 * Certificates without keys: "leaf-N" signed by "ca-N", valid for validity hours from the time of
 * issue; facts of certificates made by hand are registered with know().
 */
function fakeTools(validityHours = 30): CertificateTools & {
  know(pemText: string, value: CertificateFacts): void;
  issued: string[];
} {
  const table = new Map<string, CertificateFacts>();
  const issued: string[] = [];
  return {
    issued,
    know: (pemText, value) => void table.set(pemText.trim(), value),
    issue(commonName, dnsNames, now, validityMs) {
      const n = issued.length + 1;
      const leaf = pem(`leaf-${n}`);
      const ca = pem(`ca-${n}`);
      const notAfter = new Date(now.getTime() + Math.min(validityMs, validityHours * HOUR));
      table.set(leaf.trim(), { notBefore: now, notAfter, dnsNames });
      table.set(ca.trim(), { notBefore: now, notAfter, dnsNames: [] });
      issued.push(`leaf-${n}`);
      const certificate: ServingCertificate = {
        certificatePem: leaf,
        privateKeyPem: `key-${n}`,
        caPem: ca,
        notBefore: now,
        notAfter,
      };
      return Promise.resolve(certificate);
    },
    describe(pemText) {
      const found = table.get(pemText.trim());
      if (found === undefined) throw new Error('unreadable certificate');
      return found;
    },
    keyMatches: (cert, key) => cert.replace(/[\s\S]*leaf-(\d+)[\s\S]*/, 'key-$1') === key,
  };
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined): string =>
  Buffer.from(text ?? '', 'base64').toString('utf8');

function secretData(n: number, caPem = pem(`ca-${n}`)): Record<string, string> {
  return { 'tls.crt': b64(pem(`leaf-${n}`)), 'tls.key': b64(`key-${n}`), 'ca.crt': b64(caPem) };
}

function quietLogger(): { lines: string[]; logger: ReturnType<typeof createJsonLogger> } {
  const lines: string[] = [];
  const logger = createJsonLogger({
    level: 'debug',
    out: { write: (text) => void lines.push(text) },
    now: () => new Date(t0),
  });
  return { lines, logger };
}

describe('renewal schedule', () => {
  it('falls due two thirds into the lifetime', () => {
    expect(new Date(renewalDueAt(facts(0, 30), 2 / 3))).toEqual(at(20));
    expect(assessCertificate(facts(0, 30), names, at(19.9), 2 / 3)).toBe('fresh');
    expect(assessCertificate(facts(0, 30), names, at(20), 2 / 3)).toBe('due');
    expect(assessCertificate(facts(0, 30), names, at(30), 2 / 3)).toBe('expired');
  });

  it('replaces a certificate that lacks one of the service names', () => {
    const partial = facts(0, 30, names.slice(0, 2));
    expect(assessCertificate(partial, names, at(1), 2 / 3)).toBe('wrong-names');
  });

  it('checks at the interval, sooner when the certificate falls due or one waits to be served', () => {
    const base = { now: at(0), intervalMs: 30_000, minDelayMs: 1_000 };
    expect(nextCheckDelayMs({ ...base, dueAt: t0 + HOUR, serveAt: undefined })).toBe(30_000);
    expect(nextCheckDelayMs({ ...base, dueAt: t0 + 5_000, serveAt: undefined })).toBe(5_000);
    expect(nextCheckDelayMs({ ...base, dueAt: t0 + HOUR, serveAt: t0 + 2_000 })).toBe(2_000);
    // Never a busy loop, even for a certificate already due.
    expect(nextCheckDelayMs({ ...base, dueAt: t0 - 5_000, serveAt: undefined })).toBe(1_000);
  });
});

describe('serving readiness', () => {
  const source = 'Secret nginx-mesh/webhook-tls';
  const state = { source, expiringShare: 0.1 };

  it('waits for the Kubernetes API, naming the error, before the first certificate', () => {
    expect(
      servingReadiness({ ...state, serving: undefined, failure: 'connect ECONNREFUSED' }, at(0)),
    ).toEqual({ ready: false, reason: 'waiting for the Kubernetes API: connect ECONNREFUSED' });
  });

  it('stays ready while renewal fails with most of the lifetime left', () => {
    expect(servingReadiness({ ...state, serving: facts(0, 30), failure: 'boom' }, at(26))).toEqual({
      ready: true,
    });
  });

  it('is not ready in the last tenth of the lifetime while renewal fails', () => {
    expect(
      servingReadiness({ ...state, serving: facts(0, 30), failure: '503 etcd timeout' }, at(27.5)),
    ).toEqual({
      ready: false,
      reason: `the serving certificate from ${source} expires at 2030-01-02T06:00:00.000Z; renewing it fails: 503 etcd timeout`,
    });
    expect(
      servingReadiness({ ...state, serving: facts(0, 30), failure: undefined }, at(27.5)),
    ).toEqual({ ready: true });
  });

  it('is not ready once the certificate in use has expired', () => {
    expect(
      servingReadiness({ ...state, serving: facts(0, 30), failure: undefined }, at(30)),
    ).toEqual({
      ready: false,
      reason: `the serving certificate from ${source} expired at 2030-01-02T06:00:00.000Z`,
    });
  });
});

describe('CA bundle', () => {
  it('puts the new CA first and keeps earlier CAs only while they are valid', () => {
    const bundle = buildCaBundle(
      pem('new'),
      [
        { pem: pem('previous'), notAfter: at(10) },
        { pem: pem('expired'), notAfter: at(1) },
      ],
      at(2),
      3,
    );
    expect(splitPemCertificates(bundle)).toEqual([pem('new'), pem('previous')]);
  });

  it('holds at most the given number of CAs', () => {
    const earlier = [1, 2, 3, 4].map((n) => ({ pem: pem(`old-${n}`), notAfter: at(10) }));
    expect(splitPemCertificates(buildCaBundle(pem('new'), earlier, at(0), 3))).toHaveLength(3);
  });
});

describe('reconciling the Secret', () => {
  it('creates the Secret when there is none', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(0).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result.outcome).toBe('issued');
    expect(store.attempts).toEqual([
      { verb: 'create', resourceVersion: undefined, result: 'written' },
    ]);
    expect(unb64(store.peek()?.data['tls.crt'])).toBe(pem('leaf-1'));
  });

  it('serves a fresh stored certificate without writing', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    store.put(secretData(7));
    tools.know(pem('leaf-7'), facts(0, 30));
    tools.know(pem('ca-7'), facts(0, 30, []));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(19).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result).toMatchObject({
      outcome: 'stored',
      certificate: { certificatePem: pem('leaf-7') },
    });
    expect(store.attempts).toEqual([]);
  });

  it('renews a due certificate with an update naming the version it read, trusting both CAs', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    store.put(secretData(7));
    tools.know(pem('leaf-7'), facts(0, 30));
    tools.know(pem('ca-7'), facts(0, 30, []));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(21).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result.outcome).toBe('issued');
    expect(store.attempts).toEqual([{ verb: 'update', resourceVersion: '1', result: 'written' }]);
    expect(splitPemCertificates(unb64(store.peek()?.data['ca.crt']))).toEqual([
      pem('ca-1'),
      pem('ca-7'),
    ]);
    expect(caBundleOf(result.certificate)).toBe(store.peek()?.data['ca.crt']);
  });

  it('replaces a Secret whose key does not belong to its certificate', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    store.put({ ...secretData(7), 'tls.key': b64('key-8') });
    tools.know(pem('leaf-7'), facts(0, 30));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(1).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result.outcome).toBe('issued');
    expect(store.attempts).toEqual([{ verb: 'update', resourceVersion: '1', result: 'written' }]);
  });

  it('adopts the certificate of a replica that created the Secret first', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    tools.know(pem('leaf-9'), facts(0, 30));
    tools.know(pem('ca-9'), facts(0, 30, []));
    store.beforeNextWrite(() => store.put(secretData(9)));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(1).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result).toMatchObject({
      outcome: 'adopted',
      certificate: { certificatePem: pem('leaf-9'), caPem: pem('ca-9') },
    });
    expect(store.attempts).toEqual([
      { verb: 'create', resourceVersion: undefined, result: 'conflict' },
    ]);
    expect(unb64(store.peek()?.data['tls.crt'])).toBe(pem('leaf-9'));
  });

  it('adopts what another replica renewed meanwhile instead of overwriting it', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    store.put(secretData(7));
    tools.know(pem('leaf-7'), facts(0, 30));
    tools.know(pem('ca-7'), facts(0, 30, []));
    tools.know(pem('leaf-9'), facts(21, 51));
    tools.know(pem('ca-9'), facts(21, 51, []));
    store.beforeNextWrite(() => store.put(secretData(9, pem('ca-9') + pem('ca-7'))));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(21).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result).toMatchObject({
      outcome: 'adopted',
      certificate: { certificatePem: pem('leaf-9') },
    });
    expect(store.attempts).toEqual([{ verb: 'update', resourceVersion: '1', result: 'conflict' }]);
    expect(store.peek()?.resourceVersion).toBe('2');
    expect(unb64(store.peek()?.data['tls.crt'])).toBe(pem('leaf-9'));
  });

  it('writes again, over the new version, when the other replica left nothing usable', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    store.put(secretData(7));
    tools.know(pem('leaf-7'), facts(0, 30));
    store.beforeNextWrite(() => store.put({ unrelated: b64('x') }));
    const result = await reconcileServingCertificate(options, {
      store,
      tools,
      clock: fixedClock(at(25).toISOString()),
      logger: quietLogger().logger,
    });
    expect(result.outcome).toBe('issued');
    expect(store.attempts).toEqual([
      { verb: 'update', resourceVersion: '1', result: 'conflict' },
      { verb: 'update', resourceVersion: '2', result: 'written' },
    ]);
  });

  it('gives up a round, naming the Secret, when every write loses', async () => {
    const store = memorySecrets();
    const tools = fakeTools();
    const spoil = (): void => {
      store.put({ unrelated: b64(String(store.attempts.length)) });
      store.beforeNextWrite(spoil);
    };
    store.put({});
    store.beforeNextWrite(spoil);
    await expect(
      reconcileServingCertificate(options, {
        store,
        tools,
        clock: fixedClock(at(0).toISOString()),
        logger: quietLogger().logger,
      }),
    ).rejects.toThrow(
      'Secret nginx-mesh/webhook-tls changed under each of 3 attempts to write the serving certificate',
    );
    expect(store.attempts.map((attempt) => attempt.result)).toEqual([
      'conflict',
      'conflict',
      'conflict',
    ]);
  });
});

describe('the owner of the Secret at start', () => {
  /** Lets pending promise callbacks run until check() holds (or gives up). */
  async function settle(check: () => boolean): Promise<void> {
    for (let turn = 0; turn < 100 && !check(); turn += 1) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('while unreadable, keeps the role not ready and writes nothing; then the Secret is created owned', async () => {
    const notFound = (): never => {
      throw Object.assign(new Error('not found'), { code: 404 });
    };
    const fake = fakeClientNode({ readNamespacedSecret: notFound });
    fake.state.ownerDown = true;
    let nowMs = t0;
    let wake: (() => void) | undefined;
    const clock = {
      now: () => new Date(nowMs),
      sleep: (ms: number, signal?: AbortSignal) =>
        new Promise<void>((resolve, reject) => {
          wake = () => {
            nowMs += ms;
            resolve();
          };
          signal?.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    };
    const managed = startServingCertificate(
      { ...options, initialBackoffMs: 1_000, maxBackoffMs: 1_000 },
      {
        store: kubeCertificateStore(fake.k8s, fake.config, fake.owner),
        target: { description: 'test target', publish: () => Promise.resolve(true) },
        clock,
        random: () => 0.5,
        logger: quietLogger().logger,
        tools: fakeTools(),
      },
    );
    await settle(() => wake !== undefined);
    expect(managed.readiness()).toEqual({
      ready: false,
      reason: `waiting for the Kubernetes API: reading ClusterRole ${FAKE_OWNER.ROLE}, the owner of what this role writes: fetch failed`,
    });
    expect(fake.written('createNamespacedSecret')).toEqual([]);
    fake.state.ownerDown = false;
    wake?.();
    await managed.first;
    expect(managed.readiness()).toEqual({ ready: true });
    expect(fake.written('createNamespacedSecret')).toEqual([
      expect.objectContaining({ name: 'webhook-tls', ownerReferences: [FAKE_OWNER.OWNER] }),
    ]);
    await managed.stop();
  });
});
