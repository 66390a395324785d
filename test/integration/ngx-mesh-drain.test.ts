// Keep-alive connections through a reload (images/sidecar/ngx_mesh/ngx_mesh_drain.c), in Debian's
// real nginx: with mesh_keepalive_drain on, the old worker answers one more request on an idle
// connection, with "Connection: close", instead of closing it unanswered; a request in flight is
// answered, with "Connection: close" as nginx itself says then; a server can turn it off; a silent
// client is still cut at worker_shutdown_timeout; and paced load over keep-alive connections loses
// nothing while nginx reloads.
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { stopChild } from '../support/processes';
import {
  buildMeshModule,
  moduleConfigPreamble,
  prepareSidecarDir,
  startSidecarNginx,
} from '../support/sidecar-dir';

const HOST = '127.0.0.1';
const DRAIN = 15_401;
const PLAIN = 15_402;
const APP = 15_403;
/** A server of the draining nginx that turns it off for itself. */
const DRAIN_OFF = 15_404;

let dir: string;
let meshModule: string;
let drain: ChildProcess | undefined;
let plain: ChildProcess | undefined;
let app: Server;

function config(name: string, port: number, on: boolean): string {
  return `${moduleConfigPreamble(dir, meshModule, { pid: `${name}.pid` })}
    ${on ? 'mesh_keepalive_drain on;' : ''}
    server {
        listen ${HOST}:${port};
        keepalive_requests 100000;
        location / { return 200 "ok"; }
        location /slow { proxy_pass http://${HOST}:${APP}; }
    }
    ${
      on
        ? `server {
        listen ${HOST}:${DRAIN_OFF};
        mesh_keepalive_drain off;
        location / { return 200 "ok"; }
    }`
        : ''
    }
}
`.replace('events {}', 'worker_shutdown_timeout 1500ms;\nevents {}');
}

function start(name: string, port: number, on: boolean): Promise<ChildProcess> {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, config(name, port, on));
  return startSidecarNginx(dir, file, port);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function workers(master: number): number[] {
  try {
    return readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((pid) => pid !== '')
      .map(Number);
  } catch {
    return [];
  }
}

function title(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/**
 * SIGHUP to the master; resolves with the old worker's pid once a new worker runs and the old
 * one is shutting down (or, with nothing left to serve, already gone).
 */
async function reload(master: ChildProcess): Promise<number> {
  const pid = master.pid ?? 0;
  const before = workers(pid);
  const old = before[0] ?? 0;
  master.kill('SIGHUP');
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const quitting = title(old) === '' || title(old).includes('shutting down');
    if (quitting && workers(pid).some((worker) => !before.includes(worker))) return old;
    await sleep(10);
  }
  throw new Error('nginx did not start a new worker within 2 s of SIGHUP');
}

/** A raw keep-alive connection that reads whole responses (Content-Length bodies). */
class Client {
  private buffer = '';
  private waiters: ((text: string) => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;
  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.drainBuffer();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: HOST, port }, () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends a GET; resolves with the whole response, or rejects when the connection ends first. */
  get(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const ended = (): void => reject(new Error('connection closed before the response'));
      if (this.ended) {
        ended();
        return;
      }
      this.socket.once('close', ended);
      this.waiters.push((text) => {
        this.socket.off('close', ended);
        resolve(text);
      });
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: drain.test\r\n\r\n`);
    });
  }

  private drainBuffer(): void {
    const head = this.buffer.indexOf('\r\n\r\n');
    if (head < 0) return;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(this.buffer.slice(0, head));
    const end = head + 4 + Number(length?.[1] ?? 0);
    if (this.buffer.length < end) return;
    const response = this.buffer.slice(0, end);
    this.buffer = this.buffer.slice(end);
    this.waiters.shift()?.(response);
  }
}

const connectionHeader = (response: string): string =>
  /\r\nconnection:\s*([^\r]*)/i.exec(response)?.[1]?.toLowerCase() ?? '';

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = prepareSidecarDir('nmk-drain-');
  app = createServer((_request, response) => {
    setTimeout(() => response.writeHead(200, { 'content-length': '4' }).end('slow'), 400);
  });
  await new Promise<void>((resolve) => app.listen(APP, HOST, resolve));
  drain = await start('drain', DRAIN, true);
  plain = await start('plain', PLAIN, false);
});

afterAll(async () => {
  await stopChild(drain);
  await stopChild(plain);
  await new Promise((resolve) => app.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

test('an idle keep-alive connection is answered once more after a reload, with Connection: close', async () => {
  const client = await Client.open(DRAIN);
  const first = await client.get('/');
  expect(first).toMatch(/^HTTP\/1\.1 200/);
  expect(connectionHeader(first)).toBe('keep-alive');

  await reload(drain as ChildProcess);
  await sleep(200);
  const second = await client.get('/');
  expect(second).toMatch(/^HTTP\/1\.1 200/);
  expect(connectionHeader(second)).toBe('close');
  await client.closed;
});

test.each([
  ['without mesh_keepalive_drain', PLAIN, () => plain],
  ['in a server that turns it off', DRAIN_OFF, () => drain],
])('%s, nginx closes the idle connection at the reload', async (_, port, master) => {
  const client = await Client.open(port);
  expect(await client.get('/')).toMatch(/^HTTP\/1\.1 200/);
  await reload(master() as ChildProcess);
  // Closed unanswered: a request sent now would be lost.
  await Promise.race([
    client.closed,
    sleep(2_000).then(() => {
      throw new Error('the idle connection stayed open');
    }),
  ]);
});

test('a request in flight at the reload is answered, with Connection: close as nginx says', async () => {
  const client = await Client.open(DRAIN);
  const pending = client.get('/slow');
  await sleep(100);
  await reload(drain as ChildProcess);
  const response = await pending;
  expect(response).toMatch(/^HTTP\/1\.1 200/);
  expect(response.endsWith('slow')).toBe(true);
  expect(connectionHeader(response)).toBe('close');
  await client.closed;
});

test('a silent client does not keep the old worker: worker_shutdown_timeout still ends it', async () => {
  const client = await Client.open(DRAIN);
  await client.get('/');
  const started = Date.now();
  const old = await reload(drain as ChildProcess);
  await client.closed;
  const waited = Date.now() - started;
  // Kept open past the reload, closed at worker_shutdown_timeout (1.5 s), the worker gone.
  expect(waited).toBeGreaterThanOrEqual(1_000);
  expect(waited).toBeLessThan(4_000);
  for (let attempt = 0; attempt < 100 && title(old) !== ''; attempt += 1) await sleep(20);
  expect(title(old)).toBe('');
});

test('paced requests over 16 keep-alive connections: none lost while nginx reloads 6 times', async () => {
  const connections = await Promise.all(Array.from({ length: 16 }, () => Client.open(DRAIN)));
  let answered = 0;
  let failed = 0;
  let reopened = 0;
  const deadline = Date.now() + 4_000;
  const loop = async (index: number): Promise<void> => {
    let client = connections[index] as Client;
    let open = true;
    void client.closed.then(() => (open = false));
    while (Date.now() < deadline) {
      if (!open) {
        client = await Client.open(DRAIN);
        reopened += 1;
        open = true;
        const current = client;
        void current.closed.then(() => {
          if (current === client) open = false;
        });
      }
      try {
        const response = await client.get('/');
        if (response.startsWith('HTTP/1.1 200')) answered += 1;
        else failed += 1;
        if (connectionHeader(response) === 'close') await client.closed;
      } catch {
        failed += 1;
        open = false;
      }
      await sleep(20);
    }
    client.socket.destroy();
  };
  const load = Promise.all(connections.map((_, index) => loop(index)));
  for (let round = 0; round < 6; round += 1) {
    await sleep(500);
    await reload(drain as ChildProcess);
  }
  await load;
  expect(failed).toBe(0);
  expect(answered).toBeGreaterThan(1_000);
  // Every reload ended the connections through an answer that said so.
  expect(reopened).toBeGreaterThanOrEqual(16 * 5);
}, 20_000);

test('nginx -t refuses the directive in a location', () => {
  const file = join(dir, 'bad.conf');
  writeFileSync(
    file,
    `${moduleConfigPreamble(dir, meshModule, { pid: 'bad.pid' })}
    server { listen ${HOST}:15409; location / { mesh_keepalive_drain on; } }
}
`,
  );
  const result = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
  expect(result.status).not.toBe(0);
  expect(result.stderr).toMatch(/"mesh_keepalive_drain" directive is not allowed here/);
});
