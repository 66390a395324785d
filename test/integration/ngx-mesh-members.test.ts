// Upstream members that change without a reload (images/sidecar/ngx_mesh/ngx_mesh_members.c), in
// Debian's real nginx: upstreams with mesh_upstream_slots take their servers from the members
// file, under every balancing method the sidecar renders; a PUT to mesh_members_update makes the
// running worker follow a new file without a new worker; kept-alive connections never carry a
// request to an address that left; backups, empty upstreams, more members than slots, a file that
// does not parse, stream upstreams and mesh_members_map all behave as the module says; and
// requests under load lose nothing while the members change again and again.
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { stopChild } from '../support/processes';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  startSidecarNginx,
} from '../support/sidecar-dir';

const HOST = '127.0.0.1';
const PROXY = 15_451;
const STREAM = 15_452;
const STREAM_MAP = 15_453;
/** The backends, each answering its own name ("b0"…). */
const BACKEND_PORTS = [15_461, 15_462, 15_463, 15_464, 15_465];
const TCP_BACKEND_PORTS = [15_471, 15_472, 15_473];
/** Ports nothing listens on: connecting fails at once. */
const CLOSED_BASE = 15_500;

let dir: string;
let nginx: ChildProcess | undefined;
let stderr = '';
const backends: Server[] = [];
const tcpBackends: TcpServer[] = [];

const backend = (index: number): string => `${HOST}:${BACKEND_PORTS[index] ?? 0}`;
const tcpBackend = (index: number): string => `${HOST}:${TCP_BACKEND_PORTS[index] ?? 0}`;
const closed = (index: number): string => `${HOST}:${CLOSED_BASE + index}`;

const slots = (count: number, extra = ''): string =>
  Array.from({ length: count }, () => `server 127.0.0.1:1 down${extra};`).join('\n        ');

function config(meshModule: string): string {
  return `${moduleConfigPreamble(dir, meshModule)}
    mesh_members ${dir}/members;
    upstream rr {
        mesh_upstream_slots;
        ${slots(4)}
    }
    upstream lc {
        least_conn;
        mesh_upstream_slots;
        ${slots(4)}
        keepalive 8;
    }
    upstream rnd {
        random two least_conn;
        mesh_upstream_slots;
        ${slots(4)}
        keepalive 8;
    }
    upstream bk {
        least_conn;
        mesh_upstream_slots;
        ${slots(2, ' max_fails=1 fail_timeout=30s')}
        ${slots(2, ' backup')}
    }
    upstream wide {
        mesh_upstream_slots;
        ${slots(128, ' max_fails=0')}
    }
    upstream unlisted {
        mesh_upstream_slots;
        server ${backend(4)};
        server ${backend(4)};
    }
    server {
        listen ${HOST}:${PROXY};
        keepalive_requests 100000;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream error;
        proxy_next_upstream_tries 0;
        proxy_connect_timeout 1s;
        location ~ ^/(\\w+)$ { proxy_pass http://$1; }
    }
    server {
        listen unix:${dir}/ctl.sock;
        location = /members { mesh_members_update; }
    }
}
stream {
    mesh_members ${dir}/members;
    upstream tcp {
        random two least_conn;
        mesh_upstream_slots;
        ${slots(4)}
    }
    mesh_members_map outbound $server_port $mesh_dst "none:$server_port";
    server { listen ${HOST}:${STREAM}; proxy_pass tcp; }
    server { listen ${HOST}:${STREAM_MAP}; return "$mesh_dst"; }
}
`;
}

/** Writes the members file as the agent does: beside it, then renamed over it. */
function writeMembers(lines: readonly string[]): void {
  const file = join(dir, 'members');
  writeFileSync(`${file}.new`, `${lines.join('\n')}\n`);
  renameSync(`${file}.new`, file);
}

function put(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      // a connection of its own, closed after the answer, as the agent's
      { socketPath: join(dir, 'ctl.sock'), path: '/members', method: 'PUT', agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function update(lines: readonly string[]): Promise<void> {
  writeMembers(lines);
  const answer = await put();
  expect(answer).toEqual({ status: 204, body: '' });
}

/** GETs /<upstream> over a new connection; status and body. */
async function get(upstream: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${HOST}:${PROXY}/${upstream}`);
  return { status: response.status, body: await response.text() };
}

/** Which backends answer n requests (over one keep-alive pool), by name; any non-200 as "<status>". */
async function spread(upstream: string, n = 24): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i += 1) {
    const { status, body } = await get(upstream);
    seen.add(status === 200 ? body : String(status));
  }
  return seen;
}

function tcpRead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

function workers(): number[] {
  const pid = nginx?.pid ?? 0;
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((entry) => entry !== '')
      .map(Number);
  } catch {
    return [];
  }
}

beforeAll(async () => {
  const meshModule = buildMeshModule();
  dir = prepareSidecarDir('nmk-members-');
  // nginx's workers run as another user when the master is root: they read the members file
  chmodSync(dir, 0o755);
  for (const [index, port] of BACKEND_PORTS.entries()) {
    const server = createServer((_req, res) => res.end(`b${index}`));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
    backends.push(server);
  }
  for (const [index, port] of TCP_BACKEND_PORTS.entries()) {
    const server = createTcpServer((socket) => socket.end(`t${index}`));
    await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
    tcpBackends.push(server);
  }
  writeMembers([
    '# the members at start',
    `upstream rr ${backend(0)} ${backend(1)}`,
    `upstream lc ${backend(0)} ${backend(1)}`,
    `upstream rnd ${backend(0)} ${backend(1)}`,
    `upstream bk ${backend(0)} backup ${backend(3)}`,
    `upstream tcp ${tcpBackend(0)}`,
    `map outbound ${STREAM_MAP} first`,
  ]);
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config(meshModule));
  nginx = await startSidecarNginx(dir, file, PROXY);
  nginx.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
}, 120_000);

afterAll(async () => {
  if (nginx !== undefined) await stopChild(nginx);
  for (const server of [...backends, ...tcpBackends]) server.close();
});

describe('upstream members from the members file', () => {
  it('takes every method’s servers from the file at start, and only those', async () => {
    for (const upstream of ['rr', 'lc', 'rnd'])
      expect(await spread(upstream)).toEqual(new Set(['b0', 'b1']));
    expect(await tcpRead(STREAM)).toBe('t0');
    expect(await tcpRead(STREAM_MAP)).toBe('first');
  });

  it('keeps the configured servers of an upstream the file does not name', async () => {
    expect(await spread('unlisted', 4)).toEqual(new Set(['b4']));
  });

  it('follows a new file after a PUT, in the same worker, and no kept-alive connection goes to an address that left', async () => {
    const before = workers();
    expect(before).toHaveLength(1);
    // lc and rnd hold kept-alive connections to b0 and b1 now
    await update([
      `upstream rr ${backend(2)} ${backend(3)}`,
      `upstream lc ${backend(2)} ${backend(3)} ${backend(1)}`,
      `upstream rnd ${backend(3)}`,
      `upstream bk ${backend(0)} backup ${backend(3)}`,
      `upstream tcp ${tcpBackend(1)} ${tcpBackend(2)}`,
      `map outbound ${STREAM_MAP} second`,
    ]);
    expect(await spread('rr')).toEqual(new Set(['b2', 'b3']));
    expect(await spread('lc', 36)).toEqual(new Set(['b1', 'b2', 'b3']));
    expect(await spread('rnd')).toEqual(new Set(['b3']));
    const tcp = new Set<string>();
    for (let i = 0; i < 24; i += 1) tcp.add(await tcpRead(STREAM));
    expect(tcp).toEqual(new Set(['t1', 't2']));
    expect(await tcpRead(STREAM_MAP)).toBe('second');
    expect(workers()).toEqual(before);
  });

  it('answers 502 for an upstream with no members, and serves again when members return', async () => {
    await update([`upstream rr`, `upstream rnd`, `upstream tcp`]);
    expect(await spread('rr', 4)).toEqual(new Set(['502']));
    expect(await spread('rnd', 4)).toEqual(new Set(['502']));
    await expect(tcpRead(STREAM)).resolves.toBe('');
    // a key the file no longer has: the map's default
    expect(await tcpRead(STREAM_MAP)).toBe(`none:${STREAM_MAP}`);
    await update([`upstream rr ${backend(1)}`, `upstream rnd ${backend(0)} ${backend(2)}`]);
    expect(await spread('rr', 4)).toEqual(new Set(['b1']));
    expect(await spread('rnd')).toEqual(new Set(['b0', 'b2']));
  });

  it('fills the slots with the first members and logs the rest as left out', async () => {
    await update([
      `upstream rr ${backend(0)} ${backend(1)} ${backend(2)} ${backend(3)} ${backend(4)}`,
    ]);
    expect(await spread('rr', 30)).toEqual(new Set(['b0', 'b1', 'b2', 'b3']));
    expect(stderr).toMatch(/upstream "rr": 5 members, 4 slots; the rest left out/);
  });

  it('falls back to the backup members when the primary ones fail, and to none when none are listed', async () => {
    await update([`upstream bk ${closed(1)} ${closed(2)} backup ${backend(3)} ${backend(2)}`]);
    expect(await spread('bk', 12)).toEqual(new Set(['b2', 'b3']));
    // one primary member with backups is no "single" server: it fails over too
    await update([`upstream bk ${closed(4)} backup ${backend(1)}`]);
    expect(await spread('bk', 6)).toEqual(new Set(['b1']));
    await update([`upstream bk ${closed(3)}`]);
    expect(await spread('bk', 4)).toEqual(new Set(['502']));
  });

  it('tries past 64 members without overrunning nginx’s tried bits', async () => {
    const dead = Array.from({ length: 100 }, (_, index) => closed(10 + index));
    await update([`upstream wide ${dead.join(' ')} ${backend(4)}`]);
    // every request tries dead members until it reaches the live one
    expect(await spread('wide', 6)).toEqual(new Set(['b4']));
    await update([`upstream wide ${dead.slice(0, 70).join(' ')} ${backend(1)}`]);
    expect(await spread('wide', 6)).toEqual(new Set(['b1']));
  });

  it('refuses a file that does not parse with 422 naming its line, and keeps the members it has', async () => {
    await update([`upstream rr ${backend(0)}`]);
    writeMembers([`upstream rr ${backend(1)}`, 'upstream lc 127.0.0.1:notaport']);
    const answer = await put();
    expect(answer.status).toBe(422);
    expect(answer.body).toMatch(/members line 2: invalid address \(addr:port\)/);
    expect(await spread('rr', 4)).toEqual(new Set(['b0']));
    writeMembers([`upstream rr ${backend(1)}`, 'weight rr 3']);
    expect((await put()).body).toMatch(/members line 2: expected "upstream/);
    writeMembers([`upstream rr ${backend(1)}`, `upstream rr ${backend(2)}`]);
    expect((await put()).body).toMatch(/members line 2: upstream given twice/);
    expect(await spread('rr', 4)).toEqual(new Set(['b0']));
  });

  it('answers 405 to a GET of the update location', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: join(dir, 'ctl.sock'), path: '/members' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(405);
  });

  it('loses no request under load while the members change again and again', async () => {
    await update([`upstream lc ${backend(0)} ${backend(1)}`]);
    const plans = [[0, 1], [1, 2], [2], [2, 3, 0], [3, 0], [0, 1, 2, 3], [1]];
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const client = async (): Promise<void> => {
      for (let i = 0; i < 5_000 && !stop; i += 1) {
        try {
          const { status, body } = await get('lc');
          if (status === 200 && /^b[0-3]$/.test(body)) ok += 1;
          else failures.push(`${status} ${body}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, client));
    const before = workers();
    for (let round = 0; round < 40; round += 1) {
      const plan = plans[round % plans.length] ?? [0];
      await update([`upstream lc ${plan.map(backend).join(' ')}`]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    stop = true;
    await load;
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(200);
    expect(workers()).toEqual(before);
  }, 60_000);

  it('never lost a worker through all of the above', () => {
    expect(stderr).not.toMatch(/exited on signal/);
    expect(workers()).toHaveLength(1);
  });

  it('is refused by nginx -t where it cannot work', () => {
    const test = (body: string): string => {
      const file = join(dir, 'refused.conf');
      writeFileSync(
        file,
        `${moduleConfigPreamble(dir, buildMeshModule(), { pid: 'refused.pid' })}\n${body}\n}\n`,
      );
      const result = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
      return result.stderr;
    };
    expect(test('upstream u { mesh_upstream_slots; server 127.0.0.1:1 down; }')).toMatch(
      /upstream "u" has mesh_upstream_slots but http has no mesh_members/,
    );
    expect(test('server { listen 127.0.0.1:1; location / { mesh_members_update; } }')).toMatch(
      /"mesh_members_update" directive needs mesh_members before it/,
    );
  });
});
