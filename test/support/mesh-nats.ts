// A real nats-server configured as the cert-reloader configures it (renderNatsConfig: TLS with
// SVIDs, each client the user its SPIFFE ID names, the controller's and each agent identity's
// permissions), with SVIDs from the registrar's own code written the way the SVID client writes
// them, agent identities added (and the server reloaded) as tests need them, and a restart on
// the same port.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import type { BusIdentity } from '../../src/manifests/install/nats-config';
import { renderNatsConfig } from '../../src/manifests/install/nats-config';
import type { BusConnectOptions } from '../../src/runtime/bus/connect';
import { connectBus } from '../../src/runtime/bus/connect';
import type { Logger } from '../../src/runtime/role/log';
import type { Authority } from '../../src/runtime/registrar/authority';
import { createAuthority } from '../../src/runtime/registrar/authority';
import { writeFileAtomic } from '../../src/runtime/svid/files';
import { freePort } from './prometheus';
import { waitForOutput } from './processes';
import type { TestSvid } from './svid';
import { issueTestSvid } from './svid';

export const NATS_SERVER_ID = 'spiffe://example.org/ns/nginx-mesh/sa/nats';

export interface MeshNats {
  readonly dir: string;
  readonly port: number;
  readonly monitorPort: number;
  /** host:port for clients. */
  readonly server: string;
  readonly authority: Authority;
  /** The mesh CA's bundle, as a file for clients. */
  readonly bundleFile: string;
  /** Everything the server printed on stderr since it first started. */
  log(): string;
  /** Makes identities NATS users (as the cert-reloader does for new ServiceAccounts). */
  allow(...identities: BusIdentity[]): Promise<void>;
  /** Writes an SVID file (chain, then key) the way the SVID client does; returns its path. */
  writeSvid(name: string, svid: TestSvid): Promise<string>;
  /** Issues an SVID for <namespace>/<account> into the file <name>.pem; returns its path. */
  issueSvidFile(name: string, namespace: string, account: string, ttlMs?: number): Promise<string>;
  /** Kills the server (SIGKILL: no goodbye to the clients). */
  kill(): Promise<void>;
  /** Starts the server again on the same ports. */
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  dispose(): Promise<void>;
}

export async function startMeshNats(): Promise<MeshNats> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-nats-'));
  mkdirSync(join(dir, 'tls'));
  const port = await freePort();
  const monitorPort = await freePort();
  const authority = await createAuthority(
    { keyType: 'ec-p256', trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream: undefined },
    new Date(),
  );
  const bundleFile = join(dir, 'bundle.crt');
  await writeFileAtomic(bundleFile, authority.stored.certificate, 0o644);
  await writeFileAtomic(join(dir, 'tls', 'bundle.crt'), authority.stored.certificate, 0o644);
  const serverSvid = await issueTestSvid(authority, 'nginx-mesh', 'nats');
  await writeFileAtomic(join(dir, 'tls', 'svid.pem'), serverSvid.chain + serverSvid.keyPem, 0o600);
  const identities = new Map<string, BusIdentity>();
  const writeConfig = (): Promise<void> =>
    writeFileAtomic(
      join(dir, 'nats.conf'),
      renderNatsConfig(
        {
          host: '127.0.0.1',
          clientPort: port,
          monitorPort,
          pidFile: join(dir, 'nats.pid'),
          tlsDir: join(dir, 'tls'),
        },
        {
          trustDomain: 'example.org',
          meshNamespace: 'nginx-mesh',
          identities: [...identities.values()],
        },
      ),
      0o644,
    );
  await writeConfig();
  let server: ResultPromise | undefined;
  let log = '';
  // One change at a time: concurrent callers would otherwise interleave writes and reloads.
  let allowing = Promise.resolve();
  const allow = (...more: BusIdentity[]): Promise<void> => {
    const next = allowing.then(() => allowNow(...more));
    allowing = next.catch(() => undefined);
    return next;
  };
  const allowNow = async (...more: BusIdentity[]): Promise<void> => {
    const before = identities.size;
    for (const identity of more)
      identities.set(`${identity.namespace}/${identity.serviceAccount}`, identity);
    if (identities.size === before) return;
    await writeConfig();
    if (server === undefined) return;
    const reloads = log.split('Reloaded server configuration').length;
    server.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (log.split('Reloaded server configuration').length === reloads) {
      if (Date.now() > deadline) throw new Error(`nats-server did not reload:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const start = async (): Promise<void> => {
    const child = execa('/usr/sbin/nats-server', ['--config', join(dir, 'nats.conf')], {
      reject: false,
      timeout: 300_000,
    });
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    server = child;
    await waitForOutput(child, 'Server is ready', 'nats-server');
  };
  const kill = async (): Promise<void> => {
    server?.kill('SIGKILL');
    await server;
    server = undefined;
  };
  const writeSvid = async (name: string, svid: TestSvid): Promise<string> => {
    const path = join(dir, `${name}.pem`);
    await writeFileAtomic(path, svid.chain + svid.keyPem, 0o600);
    return path;
  };
  await start();
  return {
    dir,
    port,
    monitorPort,
    server: `127.0.0.1:${port}`,
    authority,
    bundleFile,
    log: () => log,
    allow,
    writeSvid,
    issueSvidFile: async (name, namespace, account, ttlMs) =>
      writeSvid(name, await issueTestSvid(authority, namespace, account, 'ec-p256', ttlMs)),
    kill,
    start,
    dispose: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How the controller dials: its own SVID, whose SPIFFE ID is the controller's user. */
export async function controllerDial(nats: MeshNats, logger: Logger): Promise<BusConnectOptions> {
  return {
    servers: [nats.server],
    name: 'controller',
    svidFile: await nats.issueSvidFile('controller', 'nginx-mesh', 'nginx-mesh-controller'),
    bundleFile: nats.bundleFile,
    expectedServerId: NATS_SERVER_ID,
    logger,
  };
}

/** A connection as the controller makes it. */
export async function connectController(nats: MeshNats, logger: Logger): Promise<NatsConnection> {
  return connectBus(await controllerDial(nats, logger));
}

/**
 * The ServiceAccount of a test pod "<namespace>/<name>": tests name pods after their account,
 * as issueSvidFile issues them; what the controller's accountOf answers for known pods.
 */
export function testAccountOf(pod: string): string {
  return pod;
}

/** The bus identity of a test pod "<namespace>/<name>" (its account has the pod's name). */
export function testIdentityOf(pod: string): BusIdentity {
  const [namespace = '', name = ''] = pod.split('/');
  return { namespace, serviceAccount: name };
}
