// The sidecar's nginx module (images/sidecar/ngx_mesh/), built by scripts/build-ngx-mesh.sh and
// loaded into Debian's real nginx, answering its variables to real clients.
//
//   netns nmm-<id>: lo, and a veth pair whose end "a" holds the "remote" addresses
//     198.18.251.2, 198.18.251.3, 2001:2:0:251::2, 2001:2:0:251::3
//   nat OUTPUT: tcp to 198.18.251.2:80 → 15001 (stream), :8080 → 15002 (http), :81 → 15009
//     (dual-stack stream listener), 198.18.251.3:7000 → 15003 (stream proxy_pass); the same for
//     IPv6 except :81. nginx's workers (uid 65534) are exempt, so its upstream connections are not.
//   a backend on 198.18.251.3:7000 and [2001:2:0:251::3]:7000 that names the address it answered on
//
// nginx answers each variable in its response, so a client sees what the module computed.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { waitForOutput } from '../support/processes';

const REPO = join(__dirname, '..', '..');
const BUILD_SCRIPT = join(REPO, 'scripts', 'build-ngx-mesh.sh');
const id = randomBytes(3).toString('hex');
const NETNS = `nmm-${id}`;
const LINK = `nmm${id}a`;
const LINK_PEER = `nmm${id}b`;
const DST4 = '198.18.251.2';
const BACKEND4 = '198.18.251.3';
const DST6 = '2001:2:0:251::2';
const BACKEND6 = '2001:2:0:251::3';
const NGINX_WORKER_UID = 65534;
const SPIFFE_ID = 'spiffe://example.org/ns/default/sa/client';
const node = process.execPath;

const STREAM_ORIGINAL_DST = 15001;
const HTTP_ORIGINAL_DST = 15002;
const STREAM_PROXY = 15003;
const STREAM_TLS = 15004;
const HTTP_TLS = 15005;
const HTTP_TLS_OPTIONAL = 15006;
const STREAM_TLS_OPTIONAL = 15007;
const STREAM_UDP = 15008;
const STREAM_DUAL_STACK = 15009;
const BACKEND_PORT = 7000;

/** What nginx answers for the original-destination variables. */
const DST_ANSWER =
  'dst=$mesh_original_dst addr=$mesh_original_dst_addr port=$mesh_original_dst_port';
const ID_ANSWER = 'id=$mesh_peer_spiffe_id verify=$ssl_client_verify';

/**
 * Connects once (TCP, TLS or UDP), optionally sends a request, and prints one JSON line:
 * {"data": everything received until the server closed} or {"error": code or message}.
 */
const CLIENT = `
const net = require('node:net');
const tls = require('node:tls');
const dgram = require('node:dgram');
const fs = require('node:fs');
const o = JSON.parse(process.argv[1]);
let data = '';
let done = false;
const finish = (result) => {
  if (done) return;
  done = true;
  console.log(JSON.stringify(result));
  process.exit(0);
};
setTimeout(() => finish({ error: 'timeout', data }), 5000).unref();
if (o.udp) {
  const socket = dgram.createSocket(o.host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (message) => finish({ data: message.toString() }));
  socket.on('error', (error) => finish({ error: error.code || error.message }));
  socket.send(o.send, o.port, o.host);
} else {
  const target = { host: o.host, port: o.port };
  const socket = o.tls
    ? tls.connect({
        ...target,
        servername: 'server.test',
        ca: fs.readFileSync(o.tls.ca),
        ...(o.tls.cert ? { cert: fs.readFileSync(o.tls.cert), key: fs.readFileSync(o.tls.key) } : {}),
      })
    : net.connect(target);
  socket.on(o.tls ? 'secureConnect' : 'connect', () => { if (o.send) socket.write(o.send); });
  socket.on('data', (chunk) => (data += chunk));
  socket.on('end', () => finish({ data }));
  socket.on('close', () => finish({ data }));
  socket.on('error', (error) => finish({ error: error.code || error.message, data }));
}`;

/** Answers every connection on each address with "backend <address>:<port> got <request>". */
const BACKEND = `
const net = require('node:net');
const addresses = JSON.parse(process.argv[1]);
let pending = addresses.length;
for (const [host, port] of addresses) {
  net.createServer((socket) => {
    socket.once('data', (chunk) => {
      socket.end('backend ' + socket.localAddress + ':' + socket.localPort + ' got ' + chunk);
    });
  }).listen({ host, port }, () => { if (--pending === 0) console.log('ready'); });
}`;

interface ClientResult {
  readonly data?: string;
  readonly error?: string;
}

interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
}

let workDir = '';
let modulePath = '';
let confPath = '';
let nginx: ChildProcess | undefined;
let nginxOutput = '';
let backend: ChildProcess | undefined;

function run(file: string, args: readonly string[], timeout = 15_000) {
  return execa(file, args, { reject: false, timeout, all: true });
}

async function mustRun(file: string, args: readonly string[]): Promise<string> {
  const result = await run(file, args);
  if (result.exitCode !== 0) {
    throw new Error(`${[file, ...args].join(' ')} failed (${result.exitCode}): ${result.all}`);
  }
  return result.stdout;
}

function inNetns(file: string, args: readonly string[]): Promise<string> {
  return mustRun('ip', ['netns', 'exec', NETNS, file, ...args]);
}

async function connect(options: {
  readonly host: string;
  readonly port: number;
  readonly send?: string;
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
  readonly udp?: boolean;
}): Promise<ClientResult> {
  const stdout = await inNetns(node, ['-e', CLIENT, JSON.stringify(options)]);
  return JSON.parse(stdout) as ClientResult;
}

/** The body of an HTTP/1.0 response, or the client's error. */
async function httpGet(
  host: string,
  port: number,
  tls?: { readonly ca: string; readonly cert?: string; readonly key?: string },
): Promise<string> {
  const result = await connect({
    host,
    port,
    tls,
    send: 'GET / HTTP/1.0\r\nHost: server.test\r\n\r\n',
  });
  if (result.data === undefined || result.error !== undefined) {
    return `error ${result.error ?? '?'}: ${result.data ?? ''}`;
  }
  const [head = '', body = ''] = result.data.split('\r\n\r\n');
  const status = head.split('\r\n')[0] ?? '';
  return status.includes(' 200 ') ? body : `${status}\n${body}`;
}

async function streamAnswer(host: string, port: number): Promise<string> {
  const result = await connect({ host, port });
  return result.error === undefined ? (result.data ?? '') : `error ${result.error}`;
}

// ---- test PKI (openssl, in the test's directory) ----------------------------------------------

async function makeKeyAndCsr(name: string, subject: string): Promise<void> {
  await mustRun('openssl', [
    ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', pki(`${name}.key`), '-out', pki(`${name}.csr`), '-subj', subject],
  ]);
}

async function makeCa(name: string): Promise<void> {
  await mustRun('openssl', [
    ...['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', pki(`${name}.key`), '-out', pki(`${name}.crt`), '-days', '2'],
    ...['-subj', `/O=nginx-meshctl test/CN=${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
}

/** A leaf signed by `ca` with the given subjectAltName (an openssl extension value). */
async function makeLeaf(name: string, ca: string, subjectAltName: string): Promise<TlsIdentity> {
  await makeKeyAndCsr(name, `/O=nginx-meshctl test/CN=${name}`);
  const extensions = pki(`${name}.ext`);
  writeFileSync(
    extensions,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${subjectAltName}`,
      '',
    ].join('\n'),
  );
  await mustRun('openssl', [
    ...['x509', '-req', '-in', pki(`${name}.csr`), '-CA', pki(`${ca}.crt`)],
    ...['-CAkey', pki(`${ca}.key`), '-set_serial', `0x${randomBytes(8).toString('hex')}`],
    ...['-days', '2', '-extfile', extensions, '-out', pki(`${name}.crt`)],
  ]);
  return { cert: pki(`${name}.crt`), key: pki(`${name}.key`) };
}

function pki(file: string): string {
  return join(workDir, 'pki', file);
}

// ---- nginx --------------------------------------------------------------------------------------

function nginxConf(stream: string, http: string): string {
  return `
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module ${modulePath};
user nobody nogroup;
worker_processes 1;
pid ${workDir}/nginx.pid;
error_log ${workDir}/error.log info;
events { worker_connections 64; }
stream {
    ssl_certificate ${pki('server.crt')};
    ssl_certificate_key ${pki('server.key')};
    ssl_client_certificate ${pki('ca.crt')};
${stream}
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path ${workDir}/temp/body;
    proxy_temp_path ${workDir}/temp/proxy;
    fastcgi_temp_path ${workDir}/temp/fastcgi;
    uwsgi_temp_path ${workDir}/temp/uwsgi;
    scgi_temp_path ${workDir}/temp/scgi;
    ssl_certificate ${pki('server.crt')};
    ssl_certificate_key ${pki('server.key')};
    ssl_client_certificate ${pki('ca.crt')};
${http}
}
`;
}

const STREAM_SERVERS = `
    server {
        listen ${STREAM_ORIGINAL_DST};
        listen [::]:${STREAM_ORIGINAL_DST};
        return "${DST_ANSWER}\\n";
    }
    server {
        listen [::]:${STREAM_DUAL_STACK} ipv6only=off;
        return "${DST_ANSWER}\\n";
    }
    server {
        listen ${STREAM_UDP} udp;
        return "${DST_ANSWER}\\n";
    }
    server {
        listen ${STREAM_PROXY};
        listen [::]:${STREAM_PROXY};
        proxy_pass $mesh_original_dst;
        proxy_connect_timeout 2s;
    }
    server {
        listen ${STREAM_TLS} ssl;
        listen [::]:${STREAM_TLS} ssl;
        ssl_verify_client on;
        return "${ID_ANSWER}\\n";
    }
    server {
        listen ${STREAM_TLS_OPTIONAL} ssl;
        ssl_verify_client optional_no_ca;
        return "${ID_ANSWER}\\n";
    }`;

const HTTP_SERVERS = `
    server {
        listen ${HTTP_ORIGINAL_DST};
        listen [::]:${HTTP_ORIGINAL_DST};
        return 200 "${DST_ANSWER}\\n";
    }
    server {
        listen ${HTTP_TLS} ssl;
        ssl_verify_client on;
        return 200 "${ID_ANSWER}\\n";
    }
    server {
        listen ${HTTP_TLS_OPTIONAL} ssl;
        ssl_verify_client optional_no_ca;
        return 200 "${ID_ANSWER}\\n";
    }`;

/** Starts nginx in the namespace; resolves once its master has bound the listeners. */
async function startNginx(): Promise<void> {
  const child = spawn(
    'ip',
    ['netns', 'exec', NETNS, 'nginx', '-p', workDir, '-c', confPath, '-g', 'daemon off;'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  nginx = child;
  const collect = (chunk: Buffer): void => {
    nginxOutput += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const pidFile = join(workDir, 'nginx.pid');
  // nginx writes its pid file after binding every listener, before it starts workers; the
  // kernel queues connections meanwhile.
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (existsSync(pidFile)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nginx did not start: ${nginxOutput}\n${errorLog()}`);
}

function errorLog(): string {
  const file = join(workDir, 'error.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '(no error.log)';
}

/** Stops a child: SIGTERM, then SIGKILL after a bounded wait. */
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), 5000);
  });
  const late = await Promise.race([exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await exited;
  }
}

async function startBackend(): Promise<void> {
  const addresses = [
    [BACKEND4, BACKEND_PORT],
    [BACKEND6, BACKEND_PORT],
  ];
  const child = spawn(
    'ip',
    ['netns', 'exec', NETNS, node, '-e', BACKEND, JSON.stringify(addresses)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  backend = child;
  await waitForOutput(child, 'ready', 'backend');
}

// ---- namespace ----------------------------------------------------------------------------------

async function namespaceExists(): Promise<boolean> {
  const listed = await mustRun('ip', ['netns', 'list']);
  return listed.split('\n').some((line) => line.split(' ')[0] === NETNS);
}

/** Kills what is left in the namespace (nginx workers after a killed master), then removes it. */
async function removeNamespace(): Promise<void> {
  if (!(await namespaceExists())) return;
  const pids = (await run('ip', ['netns', 'pids', NETNS])).stdout.split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await mustRun('ip', ['netns', 'delete', NETNS]);
}

async function setUpNamespace(): Promise<void> {
  await mustRun('ip', ['netns', 'add', NETNS]);
  const ip = (args: readonly string[]) => mustRun('ip', ['-n', NETNS, ...args]);
  await ip(['link', 'set', 'lo', 'up']);
  // A veth pair rather than a dummy link: some kernels (this one) lack the dummy driver.
  await ip(['link', 'add', LINK, 'type', 'veth', 'peer', 'name', LINK_PEER]);
  for (const address of [`${DST4}/32`, `${BACKEND4}/32`]) {
    await ip(['address', 'add', address, 'dev', LINK]);
  }
  for (const address of [`${DST6}/64`, `${BACKEND6}/64`]) {
    await ip(['address', 'add', address, 'dev', LINK, 'nodad']);
  }
  await ip(['link', 'set', LINK, 'up']);
  await ip(['link', 'set', LINK_PEER, 'up']);

  const redirects: readonly (readonly [string, string, number, number])[] = [
    ['iptables', DST4, 80, STREAM_ORIGINAL_DST],
    ['iptables', DST4, 8080, HTTP_ORIGINAL_DST],
    ['iptables', DST4, 81, STREAM_DUAL_STACK],
    ['iptables', BACKEND4, BACKEND_PORT, STREAM_PROXY],
    ['ip6tables', DST6, 80, STREAM_ORIGINAL_DST],
    ['ip6tables', DST6, 8080, HTTP_ORIGINAL_DST],
    ['ip6tables', BACKEND6, BACKEND_PORT, STREAM_PROXY],
  ];
  for (const tool of ['iptables', 'ip6tables']) {
    await inNetns(tool, [
      ...['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-m', 'owner'],
      ...['--uid-owner', String(NGINX_WORKER_UID), '-j', 'RETURN'],
    ]);
  }
  for (const [tool, address, port, target] of redirects) {
    await inNetns(tool, [
      ...['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', address, '--dport', String(port)],
      ...['-j', 'REDIRECT', '--to-ports', String(target)],
    ]);
  }
}

// ---- lifecycle ----------------------------------------------------------------------------------

beforeAll(async () => {
  const build = await execa('bash', [BUILD_SCRIPT], { reject: false, timeout: 300_000 });
  if (build.exitCode !== 0) {
    throw new Error(`scripts/build-ngx-mesh.sh failed (${build.exitCode}):\n${build.stderr}`);
  }
  modulePath = build.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(modulePath)) {
    throw new Error(`the build printed "${modulePath}", which does not exist`);
  }

  workDir = mkdtempSync(join(tmpdir(), 'nmm-ngx-mesh-'));
  // nginx's workers (nobody) never read here, but its temp directories live below.
  chmodSync(workDir, 0o755);
  mkdirSync(join(workDir, 'pki'), { mode: 0o700 });
  mkdirSync(join(workDir, 'temp'));

  await makeCa('ca');
  await makeCa('rogue-ca');
  await makeLeaf('server', 'ca', 'DNS:server.test');
  confPath = join(workDir, 'nginx.conf');
  writeFileSync(confPath, nginxConf(STREAM_SERVERS, HTTP_SERVERS));

  await removeNamespace();
  await setUpNamespace();
  await startBackend();
  await startNginx();
}, 300_000);

afterAll(async () => {
  try {
    await stop(nginx);
    await stop(backend);
    await removeNamespace();
  } finally {
    if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
  }
}, 30_000);

afterEach(() => {
  // A crashed worker would make later answers meaningless; say so where it happened.
  expect(errorLog()).not.toMatch(/exited on signal|\[alert\]|\[crit\]/);
});

// ---- tests --------------------------------------------------------------------------------------

describe('ngx_mesh module in Debian nginx', () => {
  describe('$mesh_original_dst', () => {
    it('gives stream the IPv4 destination the client dialled before REDIRECT', async () => {
      expect(await streamAnswer(DST4, 80)).toBe(`dst=${DST4}:80 addr=${DST4} port=80\n`);
    });

    it('gives stream the IPv6 destination, bracketed in addr:port form', async () => {
      expect(await streamAnswer(DST6, 80)).toBe(`dst=[${DST6}]:80 addr=${DST6} port=80\n`);
    });

    it('gives http the IPv4 and IPv6 destinations before REDIRECT', async () => {
      expect(await httpGet(DST4, 8080)).toBe(`dst=${DST4}:8080 addr=${DST4} port=8080\n`);
      expect(await httpGet(DST6, 8080)).toBe(`dst=[${DST6}]:8080 addr=${DST6} port=8080\n`);
    });

    it('gives a dual-stack listener the IPv4 destination of an IPv4 client', async () => {
      expect(await streamAnswer(DST4, 81)).toBe(`dst=${DST4}:81 addr=${DST4} port=81\n`);
    });

    it('is empty for connections made straight to the listener', async () => {
      const none = 'dst= addr= port=\n';
      expect(await streamAnswer('127.0.0.1', STREAM_ORIGINAL_DST)).toBe(none);
      expect(await streamAnswer('::1', STREAM_ORIGINAL_DST)).toBe(none);
      // Tracked by conntrack but not rewritten: the kernel reports the local address itself.
      expect(await streamAnswer(DST4, STREAM_ORIGINAL_DST)).toBe(none);
      expect(await streamAnswer(DST6, STREAM_ORIGINAL_DST)).toBe(none);
      expect(await streamAnswer('127.0.0.1', STREAM_DUAL_STACK)).toBe(none);
      expect(await httpGet('127.0.0.1', HTTP_ORIGINAL_DST)).toBe(none);
      expect(await httpGet(DST6, HTTP_ORIGINAL_DST)).toBe(none);
    });

    it('is empty for UDP sessions', async () => {
      const result = await connect({ host: '127.0.0.1', port: STREAM_UDP, udp: true, send: 'x' });
      expect(result).toEqual({ data: 'dst= addr= port=\n' });
    });

    it('works as a stream proxy_pass target, reaching the original IPv4 and IPv6 backend', async () => {
      expect(await connect({ host: BACKEND4, port: BACKEND_PORT, send: 'ping' })).toEqual({
        data: `backend ${BACKEND4}:${BACKEND_PORT} got ping`,
      });
      expect(await connect({ host: BACKEND6, port: BACKEND_PORT, send: 'ping6' })).toEqual({
        data: `backend ${BACKEND6}:${BACKEND_PORT} got ping6`,
      });
    });
    it('closes a proxy_pass session that has no original destination, logging why', async () => {
      const result = await connect({ host: '127.0.0.1', port: STREAM_PROXY, send: 'ping' });
      expect(result.data).toBe('');
      expect(errorLog()).toContain('no host in upstream ""');
    });
  });

  describe('$mesh_peer_spiffe_id', () => {
    const clients: Record<string, TlsIdentity> = {};
    const ca = (): string => pki('ca.crt');

    beforeAll(async () => {
      clients.spiffe = await makeLeaf('client', 'ca', `URI:${SPIFFE_ID},DNS:client.default.svc`);
      clients.plain = await makeLeaf('plain', 'ca', 'DNS:plain.default.svc');
      clients.otherUri = await makeLeaf('other-uri', 'ca', 'URI:https://example.org/client');
      clients.twoIds = await makeLeaf(
        'two-ids',
        'ca',
        `URI:${SPIFFE_ID},URI:spiffe://example.org/ns/default/sa/other`,
      );
      clients.rogue = await makeLeaf('rogue', 'rogue-ca', `URI:${SPIFFE_ID}`);
    }, 60_000);

    const tlsFor = (name: string) => {
      const client = clients[name];
      if (client === undefined) throw new Error(`no client certificate "${name}"`);
      return { ca: ca(), cert: client.cert, key: client.key };
    };

    it('gives http the URI SAN of a verified client certificate', async () => {
      expect(await httpGet('127.0.0.1', HTTP_TLS, tlsFor('spiffe'))).toBe(
        `id=${SPIFFE_ID} verify=SUCCESS\n`,
      );
    });

    it('gives stream the URI SAN of a verified client certificate, over IPv6 too', async () => {
      const answer = `id=${SPIFFE_ID} verify=SUCCESS\n`;
      expect(await connect({ host: '127.0.0.1', port: STREAM_TLS, tls: tlsFor('spiffe') })).toEqual(
        { data: answer },
      );
      expect(await connect({ host: '::1', port: STREAM_TLS, tls: tlsFor('spiffe') })).toEqual({
        data: answer,
      });
    });

    it('is empty for a certificate without a spiffe:// URI SAN', async () => {
      for (const name of ['plain', 'otherUri']) {
        expect(await httpGet('127.0.0.1', HTTP_TLS, tlsFor(name))).toBe('id= verify=SUCCESS\n');
        expect(await connect({ host: '127.0.0.1', port: STREAM_TLS, tls: tlsFor(name) })).toEqual({
          data: 'id= verify=SUCCESS\n',
        });
      }
    });

    it('answers every request of a kept-alive connection for that connection alone', async () => {
      // The ID is worked out once per TLS connection and kept with it: never another's.
      const pipelined = (name: string) =>
        connect({
          host: '127.0.0.1',
          port: HTTP_TLS,
          tls: tlsFor(name),
          send:
            'GET / HTTP/1.1\r\nHost: server.test\r\n\r\n'.repeat(3) +
            'GET / HTTP/1.1\r\nHost: server.test\r\nConnection: close\r\n\r\n',
        });
      const answers = (data = '', answer: string) => data.split(answer).length - 1;
      const spiffe = await pipelined('spiffe');
      const plain = await pipelined('plain');
      expect(answers(spiffe.data, `id=${SPIFFE_ID} verify=SUCCESS\n`)).toBe(4);
      expect(answers(plain.data, 'id= verify=SUCCESS\n')).toBe(4);
    });

    it('is empty when the certificate carries two SPIFFE IDs', async () => {
      expect(await httpGet('127.0.0.1', HTTP_TLS, tlsFor('twoIds'))).toBe('id= verify=SUCCESS\n');
      expect(await connect({ host: '127.0.0.1', port: STREAM_TLS, tls: tlsFor('twoIds') })).toEqual(
        { data: 'id= verify=SUCCESS\n' },
      );
    });

    it('is empty when the certificate did not verify (optional_no_ca lets it in)', async () => {
      const http = await httpGet('127.0.0.1', HTTP_TLS_OPTIONAL, tlsFor('rogue'));
      expect(http).toMatch(/^id= verify=FAILED:/);
      const stream = await connect({
        host: '127.0.0.1',
        port: STREAM_TLS_OPTIONAL,
        tls: tlsFor('rogue'),
      });
      expect(stream.data).toMatch(/^id= verify=FAILED:/);
      // The same listener does show a verified identity.
      expect(await httpGet('127.0.0.1', HTTP_TLS_OPTIONAL, tlsFor('spiffe'))).toBe(
        `id=${SPIFFE_ID} verify=SUCCESS\n`,
      );
    });

    it('is empty without a client certificate, and plain TCP has none', async () => {
      expect(await httpGet('127.0.0.1', HTTP_TLS_OPTIONAL, { ca: ca() })).toBe('id= verify=NONE\n');
      expect(await httpGet('127.0.0.1', HTTP_ORIGINAL_DST)).toBe('dst= addr= port=\n');
    });
  });

  describe('nginx -t', () => {
    async function configTest(conf: string) {
      const file = join(workDir, `test-${randomBytes(3).toString('hex')}.conf`);
      writeFileSync(file, conf);
      return run('nginx', ['-t', '-p', workDir, '-c', file]);
    }

    it('accepts a configuration using every variable in http and stream', async () => {
      const result = await configTest(readFileSync(confPath, 'utf8'));
      expect(result.all).toContain('test is successful');
      expect(result.exitCode).toBe(0);
    });

    it('rejects a variable the module does not define', async () => {
      const result = await configTest(
        nginxConf('server { listen 1; return "$mesh_original_dest"; }', ''),
      );
      expect(result.exitCode).toBe(1);
      expect(result.all).toContain('unknown "mesh_original_dest" variable');
    });

    it('names the missing stream core when ngx_stream_module.so is not loaded first', async () => {
      const conf = readFileSync(confPath, 'utf8').replace(
        'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n',
        '',
      );
      const result = await configTest(conf);
      expect(result.exitCode).toBe(1);
      expect(result.all).toMatch(/ngx_mesh_module\.so.*undefined symbol: ngx_stream/);
    });
  });
});
