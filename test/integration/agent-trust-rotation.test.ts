// A CA handover as a quiet sidecar lives it, with the real nginx: the SVID client renews against
// the registrar's own code, which starts handing out the next root in the trust bundle and then
// signs with it. nginx reads the bundle only when it loads its configuration, so the agent must
// reload it when the bundle changes on disk, though no snapshot changes the configuration;
// otherwise peers whose certificates come from the next root are refused.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import {
  SIDECAR_INBOUND_HTTP_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
} from '../../src/manifests/constants';
import { DEFAULT_SNAPSHOT_MESH } from '../../src/manifests/snapshot/mesh-base';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import type { SidecarContext } from '../../src/render/sidecar';
import type { Clock } from '../../src/runtime/clock';
import type { ConfigApplier } from '../../src/runtime/agent/config-applier';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import { listNginxChildren } from '../../src/runtime/agent/nginx-process';
import type { NginxPaths } from '../../src/runtime/agent/nginx-process';
import type { SnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { createSnapshotApplier } from '../../src/runtime/agent/snapshot-applier';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import type { Authority } from '../../src/runtime/registrar/authority';
import type { LogFields, Logger } from '../../src/runtime/role/log';
import { writeFileAtomic } from '../../src/runtime/svid/files';
import type { SvidClient } from '../../src/runtime/svid/svid-client';
import { startSvidClient } from '../../src/runtime/svid/svid-client';
import { buildMeshModule, prepareSidecarDir } from '../support/sidecar-dir';
import {
  endpoint,
  httpPort,
  service,
  shopContext,
  shopSnapshot,
} from '../support/sidecar-snapshots';
import type { TestSvid } from '../support/svid';
import { issueTestSvid } from '../support/svid';
import type { TestRegistrar } from '../support/test-registrar';
import { createTestAuthority, startTestRegistrar } from '../support/test-registrar';

interface LogLine {
  readonly msg: string;
  readonly fields: LogFields;
}

const logLines: LogLine[] = [];
function recordingLogger(): Logger {
  const record = (msg: string, fields: LogFields = {}): void => void logLines.push({ msg, fields });
  return {
    debug: record,
    info: record,
    warn: record,
    error: record,
    with: () => recordingLogger(),
  };
}

/** The real time, with sleeps that end only when the test says so: renewals happen on cue. */
function cueClock(): Clock & { cue(): void } {
  const sleepers = new Set<() => void>();
  return {
    now: () => new Date(),
    sleep: (_ms, signal) =>
      new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          sleepers.delete(wake);
          resolve();
        };
        sleepers.add(wake);
        signal?.addEventListener(
          'abort',
          () => {
            sleepers.delete(wake);
            reject(signal.reason as Error);
          },
          { once: true },
        );
      }),
    cue: () => {
      for (const wake of [...sleepers]) wake();
    },
  };
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Answer {
  /** The HTTP status, or 0 when the connection ended without one. */
  readonly status: number;
  readonly body: string;
  /** The certificate the sidecar presented. */
  readonly server: X509Certificate | undefined;
}

let dir: string;
let tlsDir: string;
let meshModule: string;
let app: http.Server;
let appPort: number;
let rootA: Authority;
let rootB: Authority;
let registrar: TestRegistrar;
let clock: ReturnType<typeof cueClock>;
let svids: SvidClient;
let written = 0;
let paths: NginxPaths;
let supervisor: Supervisor;
let applier: ConfigApplier;
let snapshots: SnapshotApplier;
let reloadsRunning = 0;
let reloadsAtOnce = 0;
let clientA: TestSvid;
let clientB: TestSvid;

/**
 * One request through the inbound mTLS listener, as a peer's sidecar sends it: the PROXY header
 * the redirect adds, then TLS with the peer's SVID, to the loopback address naming the app port.
 */
function mtlsGet(peer: TestSvid): Promise<Answer> {
  const host = `127.1.${appPort >> 8}.${appPort & 255}`;
  return new Promise((resolve, reject) => {
    const raw = connect({ host, port: SIDECAR_INBOUND_HTTP_PORT }, () => {
      raw.write(`PROXY TCP4 10.1.0.7 10.1.0.5 40000 ${appPort}\r\n`);
      const socket = tls.connect({
        socket: raw,
        cert: peer.chain,
        key: peer.keyPem,
        rejectUnauthorized: false,
      });
      let server: X509Certificate | undefined;
      let data = '';
      socket.once('secureConnect', () => {
        server = socket.getPeerX509Certificate();
        socket.write('GET /hello HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
      });
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      const finish = (): void => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
        resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4), server });
      };
      socket.once('end', finish);
      socket.once('close', finish);
      socket.once('error', finish);
    });
    raw.once('error', reject);
  });
}

const issuedBy = (certificate: X509Certificate | undefined, root: Authority): boolean =>
  certificate?.verify(new X509Certificate(root.stored.certificate).publicKey) ?? false;

function svidLeaf(): X509Certificate {
  return new X509Certificate(readFileSync(join(tlsDir, SVID_FILE_NAME), 'utf8'));
}

/** The workers serving the configuration nginx loaded last (not those shutting down). */
function workerPids(): number[] {
  return listNginxChildren(supervisor.masterPid() ?? 0)
    .filter((child) => child.title === 'nginx: worker process')
    .map((child) => child.pid)
    .sort();
}

/** Lets the SVID client renew once; resolves once the new SVID is on disk. */
async function renew(): Promise<void> {
  const before = written;
  clock.cue();
  await until(() => Promise.resolve(written > before), 'the renewed SVID written');
}

/** Resolves once every apply and reload queued so far has finished. */
async function settled(): Promise<void> {
  await applier.apply(applier.current(), 'probe');
}

const count = (msg: string): number => logLines.filter((line) => line.msg === msg).length;

function snapshotFor(change: Partial<MeshSnapshot['mesh']> = {}): MeshSnapshot {
  return shopSnapshot({
    mesh: { ...DEFAULT_SNAPSHOT_MESH, mtlsMode: 'strict', ...change },
    services: {
      ...shopSnapshot().services,
      ...service(
        'shop/web',
        '10.96.0.10',
        [httpPort(80)],
        [endpoint('10.1.0.5', { http: appPort }, 'shop/web-1', 'shop/web')],
      ),
    },
  });
}

/**
 * nginx whose workers run as the user that owns the SVID files, as in the pod (where the agent
 * and nginx are one non-root user): root here, who would otherwise give the workers to nobody.
 */
function nginxAsRoot(directory: string): string {
  const path = join(directory, 'nginx-as-root.sh');
  writeFileSync(
    path,
    [
      '#!/bin/bash',
      'args=()',
      'for arg in "$@"; do',
      '  if [ "$arg" = "daemon off;" ]; then args+=("daemon off; user root;"); else args+=("$arg"); fi',
      'done',
      'exec /usr/sbin/nginx "${args[@]}"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return path;
}

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('agent-trust-');
  tlsDir = join(dir, 'tls');
  mkdirSync(tlsDir, { mode: 0o700 });
  app = http.createServer((req, res) => res.end(`app saw ${req.url ?? ''}`));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appPort = (app.address() as AddressInfo).port;
  [rootA, rootB] = await Promise.all([createTestAuthority(), createTestAuthority()]);
  [clientA, clientB] = await Promise.all([
    issueTestSvid(rootA, 'shop', 'api'),
    issueTestSvid(rootB, 'shop', 'api'),
  ]);
  const logger = recordingLogger();
  registrar = await startTestRegistrar({
    ca: rootA,
    namespace: 'shop',
    pod: 'web-1',
    account: 'web',
    svidTtlMs: 3_600_000,
    logger,
  });
  paths = { nginx: nginxAsRoot(dir), prefix: dir, config: join(dir, 'nginx.conf') };
  supervisor = new Supervisor({
    paths,
    logger,
    readyPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
    reloadTimeoutMs: 5_000,
  });
  applier = createConfigApplier({
    paths,
    logger,
    retry: { initialMs: 100, maxMs: 400 },
    supervisor: {
      reload: async () => {
        reloadsRunning += 1;
        reloadsAtOnce = Math.max(reloadsAtOnce, reloadsRunning);
        try {
          await supervisor.reload();
        } finally {
          reloadsRunning -= 1;
        }
      },
    },
  });
  clock = cueClock();
  svids = startSvidClient(
    {
      tokenPath: registrar.tokenPath,
      bundlePath: registrar.bundlePath,
      registrarUrl: registrar.url,
      serverName: registrar.serverName,
      outputDir: tlsDir,
    },
    {
      clock,
      logger,
      random: () => 0.5,
      onWritten: () => void (written += 1),
      // What the agent does with a new trust bundle.
      onBundleChanged: (path) => void applier.reloadFile(path),
    },
  );
  await svids.ready;
  const context: SidecarContext = shopContext({
    containerPorts: [],
    healthRedirects: {},
    modules: ['/usr/lib/nginx/modules/ngx_stream_module.so', meshModule],
    runDir: dir,
    svidFile: join(tlsDir, SVID_FILE_NAME),
    bundleFile: join(tlsDir, SVID_BUNDLE_FILE_NAME),
  });
  snapshots = createSnapshotApplier({
    context,
    logger,
    apply: (text, label) => applier.apply(text, label),
    check: (text) => applier.check(text),
    onApplied: () => undefined,
  });
  expect(await snapshots.apply(snapshotFor(), 1, false)).toBeUndefined();
  await supervisor.start();
}, 120_000);

afterAll(async () => {
  // nginx first: it must not outlive a failed test.
  await supervisor?.stop();
  applier?.close();
  await svids?.stop();
  await registrar?.close();
  await new Promise((resolve) => app?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

it('admits peers of the root in the bundle and refuses those of another', async () => {
  const fromA = await mtlsGet(clientA);
  expect(fromA.status).toBe(200);
  expect(fromA.body).toBe('app saw /hello');
  expect(issuedBy(fromA.server, rootA)).toBe(true);
  expect((await mtlsGet(clientB)).status).toBe(400);
});

it('after a renewal brings the next root and an SVID from it, admits its peers with no new configuration', async () => {
  const config = applier.current();
  registrar.setCa({
    active: rootB,
    bundlePem: rootA.stored.certificate + rootB.stored.certificate,
  });
  await renew();
  expect(issuedBy(svidLeaf(), rootB)).toBe(true);
  expect(readFileSync(join(tlsDir, SVID_BUNDLE_FILE_NAME), 'utf8')).toBe(
    rootA.stored.certificate + rootB.stored.certificate,
  );
  let last: Answer | undefined;
  await until(async () => {
    last = await mtlsGet(clientB);
    return last.status === 200;
  }, 'a peer of the next root admitted');
  expect(last?.body).toBe('app saw /hello');
  // The sidecar presents the renewed SVID, and peers of the old root still pass.
  expect(issuedBy(last?.server, rootB)).toBe(true);
  expect((await mtlsGet(clientA)).status).toBe(200);
  // New workers accept before the reload is done with the old ones.
  await settled();
  expect(snapshots.renders()).toBe(1);
  expect(applier.current()).toBe(config);
  expect(applier.filesPending()).toBe(false);
  const logged = logLines.filter((line) => line.msg === 'nginx reloaded for changed files');
  expect(logged).toHaveLength(1);
  expect(logged[0]?.fields.files).toEqual([join(tlsDir, SVID_BUNDLE_FILE_NAME)]);
  expect(count('trust bundle changed')).toBe(2);
});

it('does not reload nginx for a renewal that leaves the bundle as it was', async () => {
  const workers = workerPids();
  expect(workers.length).toBeGreaterThan(0);
  const leaf = svidLeaf().serialNumber;
  await renew();
  await settled();
  expect(svidLeaf().serialNumber).not.toBe(leaf);
  expect(workerPids()).toEqual(workers);
  expect(count('nginx reloaded for changed files')).toBe(1);
});

it('takes turns between reloads for changed files and for new configurations', async () => {
  const bundle = join(tlsDir, SVID_BUNDLE_FILE_NAME);
  const outcomes = await Promise.all([
    snapshots.apply(snapshotFor({ clientMaxBodySize: '2m' }), 2, false),
    applier.reloadFile(bundle),
    snapshots.apply(snapshotFor(), 3, false),
    applier.reloadFile(bundle),
  ]);
  expect(outcomes).toEqual([undefined, { applied: true }, undefined, { applied: true }]);
  expect(reloadsAtOnce).toBe(1);
  expect((await mtlsGet(clientB)).status).toBe(200);
});

it('keeps what nginx loaded while the bundle fails nginx -t, and retries until it passes', async () => {
  const bundle = join(tlsDir, SVID_BUNDLE_FILE_NAME);
  await writeFileAtomic(bundle, 'not a certificate\n', 0o644);
  const outcome = await applier.reloadFile(bundle);
  expect(outcome.applied).toBe(false);
  expect(outcome.error).toContain(`nginx rejected ${paths.config}`);
  expect(outcome.error).not.toContain('\n');
  expect(applier.filesPending()).toBe(true);
  // nginx still runs on the bundle it loaded last, with both roots.
  expect((await mtlsGet(clientB)).status).toBe(200);
  // A good bundle (the first root alone) is picked up by the retry, with no further call.
  await writeFileAtomic(bundle, rootA.stored.certificate, 0o644);
  await until(() => Promise.resolve(!applier.filesPending()), 'the retried reload');
  expect((await mtlsGet(clientB)).status).toBe(400);
  expect((await mtlsGet(clientA)).status).toBe(200);
  const failed = logLines.find(
    (line) => line.msg === 'nginx not reloaded for changed files; keeping what it loaded last',
  );
  expect(failed?.fields).toMatchObject({ files: [bundle], attempt: 1 });
  expect(reloadsAtOnce).toBe(1);
});
