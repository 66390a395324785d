// The registrar's own issuing code and HTTPS API on loopback, for integration tests of the SVID
// client: one workload (an injected pod) whose token it accepts without an API server, CAs the
// test switches between (a handover), and a server that can be stopped and started again on
// the same port (the registrar down and back).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IDENTITY_TOKEN_AUDIENCE,
  REGISTRAR_NAME,
  TOKEN_POD_NAME_EXTRA,
  TOKEN_POD_UID_EXTRA,
} from '../../src/manifests/constants';
import type { ApiServer } from '../../src/runtime/registrar/api-server';
import { startApiServer } from '../../src/runtime/registrar/api-server';
import type { Authority } from '../../src/runtime/registrar/authority';
import { createAuthority } from '../../src/runtime/registrar/authority';
import type { CaView } from '../../src/runtime/registrar/issuer';
import { createIssuer } from '../../src/runtime/registrar/issuer';
import { issueServingCertificate } from '../../src/runtime/registrar/serving';
import type { Logger } from '../../src/runtime/role/log';
import { injectedPodFacts, TEST_IMAGES } from './registrar-pods';

export const TEST_TRUST_DOMAIN = 'example.org';
export const TEST_MESH_NAMESPACE = 'nginx-mesh';

/** A new self-signed CA of the test trust domain, valid for a day from from (default now). */
export function createTestAuthority(from = new Date()): Promise<Authority> {
  return createAuthority(
    { keyType: 'ec-p256', trustDomain: TEST_TRUST_DOMAIN, ttlMs: 86_400_000, upstream: undefined },
    from,
  );
}

export interface TestRegistrar {
  readonly url: string;
  readonly serverName: string;
  /** The workload's token file and the mounted trust bundle (the first CA's root). */
  readonly tokenPath: string;
  readonly bundlePath: string;
  /** Signs with active from now on and hands out bundlePem with every SVID. */
  setCa(view: CaView): void;
  /** The time the registrar issues at (and checks its CA against) from now on. */
  setClock(now: () => Date): void;
  /** Stops answering: connections to its port are refused. */
  stop(): Promise<void>;
  /** Answers again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A registrar for pod <namespace>/<pod> running as <account>, signing with ca (its serving
 * certificate stays from ca), issuing SVIDs that live svidTtlMs.
 */
export async function startTestRegistrar(settings: {
  readonly ca: Authority;
  readonly namespace: string;
  readonly pod: string;
  readonly account: string;
  readonly svidTtlMs: number;
  readonly logger: Logger;
}): Promise<TestRegistrar> {
  const dir = mkdtempSync(join(tmpdir(), 'test-registrar-'));
  const tokenPath = join(dir, 'token');
  const bundlePath = join(dir, 'bundle.crt');
  writeFileSync(tokenPath, 'workload-token\n');
  writeFileSync(bundlePath, settings.ca.stored.certificate);
  let view: CaView = { active: settings.ca, bundlePem: settings.ca.stored.certificate };
  let clock = (): Date => new Date();
  const uid = 'uid-1';
  const issuer = createIssuer(
    {
      meshNamespace: TEST_MESH_NAMESPACE,
      trustDomain: TEST_TRUST_DOMAIN,
      ...TEST_IMAGES,
      svidTtlMs: settings.svidTtlMs,
      rateLimit: { perSecond: 100, burst: 100 },
      clientRateLimit: { perSecond: 100, burst: 100 },
      maxReviewsInFlight: 10,
      maxBuckets: 10,
    },
    {
      directory: {
        reviewToken: (token, audience) =>
          Promise.resolve({
            authenticated: token === 'workload-token',
            username: `system:serviceaccount:${settings.namespace}:${settings.account}`,
            extra: { [TOKEN_POD_NAME_EXTRA]: [settings.pod], [TOKEN_POD_UID_EXTRA]: [uid] },
            audiences: audience === IDENTITY_TOKEN_AUDIENCE ? [audience] : [],
            error: '',
          }),
        readPod: (namespace, name) =>
          Promise.resolve(
            namespace === settings.namespace && name === settings.pod
              ? injectedPodFacts({ namespace, name, uid, serviceAccount: settings.account })
              : undefined,
          ),
      },
      ca: () => view,
      now: () => clock(),
      logger: settings.logger,
    },
  );
  const serving = await issueServingCertificate(
    view,
    { namespace: TEST_MESH_NAMESPACE, trustDomain: TEST_TRUST_DOMAIN, ttlMs: 86_400_000 },
    new Date(),
  );
  let port = 0;
  let server: ApiServer | undefined;
  const start = async (): Promise<void> => {
    server = await startApiServer({
      host: '127.0.0.1',
      port,
      certificateChainPem: serving.chainPem,
      privateKeyPem: serving.keyPem,
      issuer,
      logger: settings.logger,
    });
    port = server.port;
  };
  const stop = async (): Promise<void> => {
    await server?.close();
    server = undefined;
  };
  await start();
  return {
    url: `https://127.0.0.1:${port}`,
    serverName: `${REGISTRAR_NAME}.${TEST_MESH_NAMESPACE}.svc`,
    tokenPath,
    bundlePath,
    setCa: (next) => (view = next),
    setClock: (now) => (clock = now),
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
