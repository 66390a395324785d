// Connections handed between nginx's own servers in the worker (images/sidecar/ngx_mesh/
// ngx_mesh_handoff.c), in Debian's real nginx. Every target below listens on 127.0.0.1 only, and
// each value names another loopback address: a real proxied hop to it would be refused, so an
// answer proves the handoff. The target sees what the loopback hop showed it: its local address
// is the value, its peer 127.0.0.1, and with proxy_protocol the client as the PROXY header would
// have named it; plain HTTP, TLS and stream targets, keep-alive on a handed-off connection, and
// every value that must be proxied instead (an address elsewhere, a port nginx does not listen
// on, an upstream's name); and mesh_peek_client, which tells TLS from plaintext by a first byte
// it leaves unread, or goes on as plaintext when the client sends nothing in time.
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { stopChild } from '../support/processes';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  startSidecarNginx,
} from '../support/sidecar-dir';

const HOST = '127.0.0.1';
/** The redirect-like front servers, one per case. */
const FRONT = {
  plain: 15_601,
  proxyProtocol: 15_602,
  tls: 15_603,
  stream: 15_604,
  streamReturn: 15_605,
  notOurs: 15_606,
  elsewhere: 15_607,
  upstream: 15_608,
  wildcard: 15_609,
} as const;
/** Front servers that look at the client's first byte first (mesh_peek_client). */
const PEEK = { tlsOrPlain: 15_631, serverFirst: 15_632, clientFirst: 15_633 } as const;
/** The targets, bound to 127.0.0.1 alone. */
const TARGET = {
  plain: 15_611,
  proxyProtocol: 15_612,
  tls: 15_613,
  stream: 15_614,
  sink: 15_615,
  streamProxy: 15_616,
  /** On the wildcard address, as the sidecar's own servers listen: an address ends this hop. */
  wildcard: 15_617,
};
/** A TCP server of the test's own: a loopback address and port nginx does not listen on. */
const ECHO = 15_620;
/** The client's own source address. */
const CLIENT = '127.0.0.7';

let dir: string;
let nginx: ChildProcess | undefined;
let stderr = '';
let echo: Server;

function config(meshModule: string): string {
  return `${moduleConfigPreamble(dir, meshModule)}
    map $server_addr $which {
        default none;
        127.9.0.1 one;
        127.9.0.2 two;
        127.9.0.3 three;
    }
    server {
        listen ${HOST}:${TARGET.plain};
        allow 127.0.0.0/8;
        deny all;
        location / {
            return 200 "plain $which $server_addr:$server_port remote=$remote_addr pp=$proxy_protocol_addr\\n";
        }
    }
    server {
        listen ${TARGET.wildcard};
        allow 127.0.0.0/8;
        deny all;
        location / {
            return 200 "wildcard $server_addr:$server_port remote=$remote_addr\\n";
        }
    }
    server {
        listen ${HOST}:${TARGET.proxyProtocol} proxy_protocol;
        allow 127.0.0.0/8;
        deny all;
        location / {
            return 200 "pp $which remote=$remote_addr pp=$proxy_protocol_addr:$proxy_protocol_port to=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n";
        }
    }
    server {
        listen ${HOST}:${TARGET.tls} ssl proxy_protocol;
        ssl_certificate ${dir}/server.pem;
        ssl_certificate_key ${dir}/server.pem;
        location / {
            return 200 "tls $which remote=$remote_addr pp=$proxy_protocol_addr $ssl_protocol\\n";
        }
    }
}
stream {
    upstream echo_upstream {
        server ${HOST}:${ECHO};
    }
    map $server_port $target {
        ${FRONT.plain} 127.9.0.1:${TARGET.plain};
        ${FRONT.proxyProtocol} 127.9.0.2:${TARGET.proxyProtocol};
        ${FRONT.tls} 127.9.0.3:${TARGET.tls};
        ${FRONT.stream} 127.9.0.4:${TARGET.stream};
        ${FRONT.streamReturn} 127.9.0.5:${TARGET.sink};
        ${FRONT.notOurs} ${HOST}:${ECHO};
        ${FRONT.elsewhere} 192.0.2.1:${TARGET.plain};
        ${FRONT.upstream} echo_upstream;
        ${FRONT.wildcard} 127.9.0.8:${TARGET.wildcard};
    }
    server {
        ${Object.values(FRONT)
          .map((port) => `listen ${HOST}:${port};`)
          .join('\n        ')}
        mesh_handoff $target;
        proxy_pass $target;
        proxy_connect_timeout 1s;
    }
    map $server_port:$mesh_client_tls $peeked {
        ${PEEK.tlsOrPlain}:1 127.9.0.3:${TARGET.tls};
        ${PEEK.tlsOrPlain}: 127.9.0.1:${TARGET.plain};
        ${PEEK.serverFirst}: 127.9.0.5:${TARGET.sink};
        ${PEEK.clientFirst}: 127.9.0.6:${TARGET.streamProxy};
    }
    server {
        listen ${HOST}:${PEEK.tlsOrPlain};
        listen ${HOST}:${PEEK.serverFirst};
        listen ${HOST}:${PEEK.clientFirst};
        mesh_peek_client 1s;
        mesh_handoff $peeked;
        proxy_pass $peeked;
    }
    server {
        listen ${HOST}:${TARGET.stream} proxy_protocol;
        allow 127.0.0.0/8;
        deny all;
        return "stream $server_addr:$server_port remote=$remote_addr pp=$proxy_protocol_addr:$proxy_protocol_port\\n";
    }
    server {
        listen ${HOST}:${TARGET.streamProxy} proxy_protocol;
        proxy_pass echo_upstream;
    }
    server {
        listen ${HOST}:${TARGET.sink};
        return "sink $server_addr\\n";
    }
}
`;
}

/** One GET on a new connection from CLIENT to a front port, or through agent's connections. */
function get(port: number, agent?: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: HOST, port, path: '/', localAddress: CLIENT, agent: agent ?? false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body.trim()));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET to ${port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Everything a raw TCP connection from CLIENT to port reads until the other side closes it. */
function readAll(port: number, send = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = connect({ host: HOST, port, localAddress: CLIENT }, () => socket.write(send));
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no end from ${port}`)));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('end', () => resolve(data.trim()));
    socket.on('close', () => resolve(data.trim()));
    socket.on('error', reject);
  });
}

/** Established connections to port whose line names address (by default the hops' 127.9.0.x). */
function ownLoopbackConnections(port: number, address = '127.9.0.'): number {
  const out = spawnSync('ss', ['-Htn', 'state', 'established', `( dport = :${port} )`]);
  if (out.status !== 0) throw new Error(`ss: ${out.stderr.toString()}`);
  return out.stdout
    .toString()
    .split('\n')
    .filter((line) => line.includes(address)).length;
}

/** One GET over TLS (certificate not verified) through a front port; the body. */
function tlsGet(port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let data = '';
    const tcp = connect({ host: HOST, port, localAddress: CLIENT });
    const socket = tlsConnect({ socket: tcp, rejectUnauthorized: false }, () =>
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
    );
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no TLS answer through ${port}`)));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.on('end', () => resolve(data.split('\r\n\r\n')[1]?.trim() ?? ''));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  const meshModule = buildMeshModule();
  dir = prepareSidecarDir('nmk-handoff-');
  const made = spawnSync('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', join(dir, 'server.pem'), '-out', join(dir, 'server.crt')],
    ...['-days', '1', '-subj', '/CN=handoff'],
  ]);
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr.toString()}`);
  // nginx reads certificate and key from one file.
  spawnSync('sh', ['-c', `cat ${join(dir, 'server.crt')} >> ${join(dir, 'server.pem')}`]);
  echo = createServer((socket) =>
    socket.on('data', (chunk: Buffer) => socket.end(`echo ${chunk.toString()}`)),
  );
  await new Promise<void>((resolve) => echo.listen(ECHO, HOST, resolve));
  const path = join(dir, 'nginx.conf');
  spawnSync('sh', ['-c', `cat > ${path}`], { input: config(meshModule) });
  nginx = await startSidecarNginx(dir, path, FRONT.plain);
  nginx.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
});

afterAll(async () => {
  if (nginx !== undefined) await stopChild(nginx);
  echo.close();
});

describe('mesh_handoff', () => {
  it('hands a connection to an http server as the loopback hop would have reached it', async () => {
    expect(await get(FRONT.plain)).toBe(`plain one 127.9.0.1:${TARGET.plain} remote=127.0.0.1 pp=`);
  });

  it('finds a server on the wildcard address of the port, without a connection to it', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(FRONT.wildcard, agent)).toBe(
        `wildcard 127.9.0.8:${TARGET.wildcard} remote=127.0.0.1`,
      );
      // The client's connection is still open; a proxied hop would hold one from nginx to
      // 127.9.0.8 beside it, the handoff none.
      expect(ownLoopbackConnections(TARGET.wildcard)).toBe(0);
      expect(ownLoopbackConnections(FRONT.wildcard, CLIENT)).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('fills in the PROXY protocol fields for a target that reads them, with no header sent', async () => {
    let localPort = 0;
    const answer = await new Promise<string>((resolve, reject) => {
      let data = '';
      const socket = connect(
        { host: HOST, port: FRONT.proxyProtocol, localAddress: CLIENT },
        () => {
          localPort = socket.localPort ?? 0;
          socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        },
      );
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer.split('\r\n\r\n')[1]?.trim()).toBe(
      `pp two remote=127.0.0.1 pp=${CLIENT}:${localPort} to=${HOST}:${FRONT.proxyProtocol}`,
    );
  });

  it('serves many requests on one handed-off keep-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    agent.on('free', (socket) => ports.add((socket as { localPort?: number }).localPort ?? 0));
    try {
      for (let i = 0; i < 20; i += 1) expect(await get(FRONT.plain, agent)).toMatch(/^plain one /);
    } finally {
      agent.destroy();
    }
    expect(ports.size).toBe(1);
  });

  it('hands over to a TLS server, which does the handshake on the same connection', async () => {
    expect(await tlsGet(FRONT.tls)).toMatch(
      new RegExp(
        `^tls three remote=127\\.0\\.0\\.1 pp=${CLIENT.replaceAll('.', '\\.')} TLSv1\\.[23]$`,
      ),
    );
  });

  it('hands over to stream servers, with and without the PROXY protocol', async () => {
    expect(await readAll(FRONT.stream)).toMatch(
      new RegExp(
        `^stream 127\\.9\\.0\\.4:${TARGET.stream} remote=127\\.0\\.0\\.1 pp=127\\.0\\.0\\.7:\\d+$`,
      ),
    );
    expect(await readAll(FRONT.streamReturn)).toBe('sink 127.9.0.5');
  });

  it('proxies what is not one of its own listeners: another loopback port, an upstream', async () => {
    expect(await readAll(FRONT.notOurs, 'a')).toBe('echo a');
    expect(await readAll(FRONT.upstream, 'b')).toBe('echo b');
  });

  it('never hands over a connection whose value is not a loopback address', async () => {
    // nginx listens on that port, on 127.0.0.1; 192.0.2.1 is not it, and is not reachable.
    const answer = await get(FRONT.elsewhere).catch((error: Error) => `failed: ${error.message}`);
    expect(answer).toMatch(/^failed: /);
  });

  it('tells TLS from plaintext by the first byte, which the server it hands over to still reads', async () => {
    expect(await tlsGet(PEEK.tlsOrPlain)).toMatch(
      /^tls three remote=127\.0\.0\.1 pp=127\.0\.0\.7 /,
    );
    expect(await get(PEEK.tlsOrPlain)).toMatch(/^plain one 127\.9\.0\.1:/);
  });

  it('hands plaintext the client sent first to a stream server, which reads all of it', async () => {
    expect(await readAll(PEEK.clientFirst, 'first bytes')).toBe('echo first bytes');
  });

  it('goes on as plaintext when the client sends nothing in time (its server speaks first)', async () => {
    const started = Date.now();
    expect(await readAll(PEEK.serverFirst)).toBe('sink 127.9.0.5');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('loses no worker', () => {
    expect(stderr).not.toMatch(/exited on signal/);
  });
});
