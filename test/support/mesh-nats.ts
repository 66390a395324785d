// A real nats-server configured as deploy configures it (renderNatsConfig: TLS with SVIDs,
// verify, the controller's password, the agents' permissions), with SVIDs from the registrar's
// own code written the way the SVID client writes them, and a restart on the same port.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { renderNatsConfig } from '../../src/manifests/install/workloads';
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

export const NATS_CONTROLLER_PASSWORD = 'nIntegrationPassword0123';
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
  await writeFile(
    join(dir, 'nats.conf'),
    renderNatsConfig({
      host: '127.0.0.1',
      clientPort: port,
      monitorPort,
      pidFile: join(dir, 'nats.pid'),
      tlsDir: join(dir, 'tls'),
    }),
  );
  let server: ResultPromise | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    const child = execa('/usr/sbin/nats-server', ['--config', join(dir, 'nats.conf')], {
      env: { NATS_CONTROLLER_PASSWORD },
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

/** How the controller dials: its own SVID, the controller user and password. */
export async function controllerDial(nats: MeshNats, logger: Logger): Promise<BusConnectOptions> {
  return {
    servers: [nats.server],
    name: 'controller',
    svidFile: await nats.issueSvidFile('controller', 'nginx-mesh', 'nginx-mesh-controller'),
    bundleFile: nats.bundleFile,
    expectedServerId: NATS_SERVER_ID,
    user: 'nginx-mesh-controller',
    pass: NATS_CONTROLLER_PASSWORD,
    logger,
  };
}

/** A connection as the controller makes it. */
export async function connectController(nats: MeshNats, logger: Logger): Promise<NatsConnection> {
  return connectBus(await controllerDial(nats, logger));
}
