// The real nats-server with the configuration the cert-reloader writes and SVIDs signed by the
// registrar's own code: only clients with an SVID of the mesh CA whose SPIFFE ID is a user get
// in; an agent identity may read configuration and its own inbox and publish on its own
// subscription subject only; the controller may publish configuration and read every agent's;
// and a renewed server SVID, loaded on SIGHUP as the cert-reloader sends it, keeps existing
// connections while new ones see the new certificate.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import type { NatsConnection, Status, TlsOptions } from 'nats';
import { connect, ErrorCode, Events, StringCodec } from 'nats';
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
  renderNatsConfig,
} from '../../src/manifests/install/nats-config';
import type { Authority } from '../../src/runtime/registrar/authority';
import { createAuthority } from '../../src/runtime/registrar/authority';
import { signalReload } from '../../src/runtime/cert-reloader/start-cert-reloader';
import { createJsonLogger } from '../../src/runtime/role/log';
import { writeFileAtomic } from '../../src/runtime/svid/files';
import { natsServerCertificate } from '../support/nats-tls';
import type { TestSvid } from '../support/svid';
import { issueTestSvid } from '../support/svid';
import { freePort } from '../support/prometheus';
import { waitForOutput } from '../support/processes';

const CONFIG = 'nginx.nsm.agent.config';
const WEB = { namespace: 'app', serviceAccount: 'web' };
/** The agent identity app/web's subject, and every agent's, as the controller reads them. */
const ACKS = agentSubscriptionSubject(WEB);
const ALL_ACKS = 'nginx.nsm.agent.subscription.*.*';
const PING = 'nginx.nsm.ctlr.ping';
const NATS_ID = 'spiffe://example.org/ns/nginx-mesh/sa/nats';
const codec = StringCodec();

/** signalReload's log lines are not under test. */
const quiet = createJsonLogger({
  level: 'error',
  out: { write: () => true },
  now: () => new Date(),
});

let dir: string;
let port: number;
let mesh: Authority;
let server: ResultPromise;
let serverLog = '';
const connections: NatsConnection[] = [];

/** Writes the server's files the way the cert-reloader does: chain and key in one file. */
async function installServerSvid(svid: TestSvid): Promise<void> {
  await writeFileAtomic(join(dir, 'tls', 'bundle.crt'), mesh.stored.certificate, 0o644);
  await writeFileAtomic(join(dir, 'tls', 'svid.pem'), svid.chain + svid.keyPem, 0o600);
}

/** Checks the server's identity by its SPIFFE ID, as mesh clients do. */
function checkNatsIdentity(_host: string, cert: PeerCertificate): Error | undefined {
  return cert.subjectaltname?.split(', ').includes(`URI:${NATS_ID}`) === true
    ? undefined
    : new Error(`NATS presented ${cert.subjectaltname ?? 'no names'}, not ${NATS_ID}`);
}

async function client(
  svid: TestSvid | undefined,
  inboxPrefix?: string,
): Promise<{ nc: NatsConnection; statuses: Status[] }> {
  // nats.js hands these to Node's tls.connect, which takes checkServerIdentity too.
  const tls: TlsOptions = {
    ca: mesh.stored.certificate,
    checkServerIdentity: checkNatsIdentity,
    ...(svid === undefined ? {} : { cert: svid.chain, key: svid.keyPem }),
  } as TlsOptions;
  const nc = await connect({
    servers: `127.0.0.1:${port}`,
    timeout: 3_000,
    reconnect: false,
    ...(inboxPrefix === undefined ? {} : { inboxPrefix }),
    tls,
  });
  connections.push(nc);
  const statuses: Status[] = [];
  void (async () => {
    for await (const status of nc.status()) statuses.push(status);
  })();
  return { nc, statuses };
}

/** The controller and the agent identity app/web, each known by its SPIFFE ID. */
async function controllerAndAgent() {
  const controllerSvid = await issueTestSvid(mesh, 'nginx-mesh', 'nginx-mesh-controller');
  return {
    controller: await client(controllerSvid),
    agent: await client(await issueTestSvid(mesh, 'app', 'web'), agentInboxPrefix(WEB)),
  };
}

/** Resolves with the next message on subject, or rejects after a bound. */
function nextMessage(nc: NatsConnection, subject: string, timeoutMs = 3_000): Promise<string> {
  const subscription = nc.subscribe(subject, { max: 1, timeout: timeoutMs });
  return (async () => {
    for await (const message of subscription) return codec.decode(message.data);
    throw new Error(`no message on ${subject}`);
  })();
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nats-tls-'));
  mkdirSync(join(dir, 'tls'));
  port = await freePort();
  mesh = await createAuthority(
    { keyType: 'ec-p256', trustDomain: 'example.org', ttlMs: 720 * 3_600_000, upstream: undefined },
    new Date(),
  );
  await installServerSvid(await issueTestSvid(mesh, 'nginx-mesh', 'nats'));
  const config = renderNatsConfig(
    {
      host: '127.0.0.1',
      clientPort: port,
      monitorPort: await freePort(),
      pidFile: join(dir, 'nats.pid'),
      tlsDir: join(dir, 'tls'),
    },
    {
      trustDomain: 'example.org',
      meshNamespace: 'nginx-mesh',
      identities: ['web', 'pinger', 'other', 'mallory'].map((serviceAccount) => ({
        namespace: 'app',
        serviceAccount,
      })),
    },
  );
  await writeFile(join(dir, 'nats.conf'), config);
  server = execa('/usr/sbin/nats-server', ['--config', join(dir, 'nats.conf')], {
    reject: false,
    timeout: 120_000,
  });
  server.stderr?.on('data', (chunk: Buffer) => (serverLog += chunk.toString()));
  await waitForOutput(server, 'Server is ready', 'nats-server');
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  server?.kill('SIGTERM');
  await server;
  rmSync(dir, { recursive: true, force: true });
});

describe('who may connect', () => {
  it('refuses a client without a certificate', async () => {
    await expect(client(undefined)).rejects.toThrow();
    expect(serverLog).toContain("client didn't provide a certificate");
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const other = await createAuthority(
      {
        keyType: 'ec-p256',
        trustDomain: 'example.org',
        ttlMs: 720 * 3_600_000,
        upstream: undefined,
      },
      new Date(),
    );
    await expect(client(await issueTestSvid(other, 'app', 'web'))).rejects.toThrow();
    expect(serverLog).toMatch(/TLS handshake error: .*certificate/);
  });

  it('refuses a mesh certificate whose SPIFFE ID is no user', async () => {
    const svid = await issueTestSvid(mesh, 'elsewhere', 'stranger');
    await expect(client(svid)).rejects.toThrow(/Authorization Violation/i);
  });
});

describe('permissions', () => {
  it('lets an agent read configuration and publish acks, and nothing else', async () => {
    const { controller, agent } = await controllerAndAgent();
    const ack = nextMessage(controller.nc, ALL_ACKS);
    const config = nextMessage(agent.nc, CONFIG);
    await controller.nc.flush();
    await agent.nc.flush();

    agent.nc.publish(ACKS, codec.encode('ack 1'));
    controller.nc.publish(CONFIG, codec.encode('generation 1'));
    await expect(ack).resolves.toBe('ack 1');
    await expect(config).resolves.toBe('generation 1');

    agent.nc.publish(CONFIG, codec.encode('forged'));
    await agent.nc.flush();
    await settle(200);
    expect(
      agent.statuses.some(
        (status) => status.type === Events.Error && status.data === ErrorCode.PermissionsViolation,
      ),
    ).toBe(true);
    expect(serverLog).toContain(
      'Publish Violation - User "spiffe://example.org/ns/app/sa/web", Subject "nginx.nsm.agent.config"',
    );
    expect(agent.nc.isClosed()).toBe(false);
  });

  it('lets the controller ping agents and answer their subscribe requests', async () => {
    const { controller, agent } = await controllerAndAgent();
    const ping = nextMessage(agent.nc, PING);
    const requests = controller.nc.subscribe(ALL_ACKS, { max: 1 });
    void (async () => {
      for await (const request of requests) request.respond(codec.encode('snapshot 1'));
    })();
    await agent.nc.flush();
    await controller.nc.flush();

    controller.nc.publish(PING, codec.encode('ping'));
    await expect(ping).resolves.toBe('ping');
    const reply = await agent.nc.request(ACKS, codec.encode('subscribe'), { timeout: 3_000 });
    expect(codec.decode(reply.data)).toBe('snapshot 1');
    expect(controller.statuses.map((status) => status.type)).not.toContain(Events.Error);
  });

  it('lets no agent ping the others', async () => {
    const agent = await client(await issueTestSvid(mesh, 'app', 'pinger'));
    agent.nc.publish(PING, codec.encode('forged'));
    await agent.nc.flush();
    await settle(200);
    expect(serverLog).toContain(
      'Publish Violation - User "spiffe://example.org/ns/app/sa/pinger", Subject "nginx.nsm.ctlr.ping"',
    );
  });

  it('lets no agent listen to the acknowledgements or replies of others', async () => {
    const agent = await client(await issueTestSvid(mesh, 'app', 'other'));
    const acks = agent.nc.subscribe('nginx.nsm.agent.subscription.>');
    const inboxes = agent.nc.subscribe('_INBOX.>');
    const webInbox = agent.nc.subscribe(`${agentInboxPrefix(WEB)}.>`);
    await agent.nc.flush();
    await settle(200);
    for (const subject of ['nginx.nsm.agent.subscription.>', '_INBOX.>', '_INBOX.app.web.>']) {
      expect(serverLog).toContain(
        `Subscription Violation - User "spiffe://example.org/ns/app/sa/other", Subject "${subject}"`,
      );
    }
    expect([acks, inboxes, webInbox].every((each) => each.isClosed())).toBe(true);
  });

  it("lets no agent publish on another identity's subject", async () => {
    const { controller } = await controllerAndAgent();
    const mallory = await client(await issueTestSvid(mesh, 'app', 'mallory'));
    const received = nextMessage(controller.nc, ALL_ACKS, 1_000);
    await controller.nc.flush();
    mallory.nc.publish(ACKS, codec.encode('forged ack of app/web'));
    await mallory.nc.flush();
    await expect(received).rejects.toThrow();
    expect(serverLog).toContain(
      `Publish Violation - User "spiffe://example.org/ns/app/sa/mallory", Subject "${ACKS}"`,
    );
  });
});

describe('certificate rotation', () => {
  it('reloads a renewed certificate on SIGHUP, keeping existing connections', async () => {
    const { controller, agent } = await controllerAndAgent();
    const before = await natsServerCertificate({ host: '127.0.0.1', port });

    await installServerSvid(await issueTestSvid(mesh, 'nginx-mesh', 'nats'));
    const reloaded = waitForOutput(server, 'Reloaded server configuration', 'the reload');
    await expect(signalReload(join(dir, 'nats.pid'), quiet)).resolves.toBe(true);
    await reloaded;

    const after = await natsServerCertificate({
      host: '127.0.0.1',
      port,
      ca: mesh.stored.certificate,
    });
    expect(after.fingerprint256).not.toBe(before.fingerprint256);
    expect(after.subjectaltname).toContain(`URI:${NATS_ID}`);

    const config = nextMessage(agent.nc, CONFIG);
    await agent.nc.flush();
    controller.nc.publish(CONFIG, codec.encode('generation 2'));
    await expect(config).resolves.toBe('generation 2');
    expect(agent.statuses.map((status) => status.type)).not.toContain('disconnect');
    expect(controller.statuses.map((status) => status.type)).not.toContain('disconnect');
  });

  it('says so when there is no process to reload yet', async () => {
    await expect(signalReload(join(dir, 'missing.pid'), quiet)).resolves.toBe(false);
  });
});
