// The sidecar's mesh configuration against the real nginx: every golden file passes `nginx -t`
// with our module, a 2,000-Service mesh does too, and a running nginx serves the inbound HTTP
// path (PROXY protocol in, app on loopback) with access control.
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSidecarConfig } from '../../src/render/sidecar';
import type { MeshSnapshot } from '../../src/manifests/snapshot/types';
import { largeSnapshot, shopContext, shopSnapshot, withMesh } from '../support/sidecar-snapshots';
import { startNginx } from '../../src/runtime/agent/nginx-process';
import type { Logger } from '../../src/runtime/role/log';
import { stopChild } from '../support/processes';

const root = join(__dirname, '..', '..');
const goldenDir = join(root, 'test', 'golden', 'data', 'sidecar-nginx');
let dir: string;
let meshModule: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sidecar-nginx-'));
  prepareStatsSocket(dir);
  meshModule =
    execFileSync('bash', [join(root, 'scripts', 'build-ngx-mesh.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1) ?? '';
  // A throwaway self-signed EC certificate stands in for the SVID and the trust bundle.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'bundle.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=test',
    ],
    { stdio: 'pipe' },
  );
  writeFileSync(
    join(dir, 'svid.pem'),
    readFileSync(join(dir, 'bundle.crt'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8'),
  );
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a configuration with this machine's paths; returns its path. */
function place(name: string, text: string): string {
  const path = join(dir, `${name}.conf`);
  writeFileSync(
    path,
    text
      .replace('/usr/lib/nginx/modules/ngx_mesh_module.so', meshModule)
      .replaceAll('/etc/nginx-mesh', dir),
  );
  return path;
}

const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  with: () => quietLogger,
};

function nginxTest(config: string): void {
  execFileSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', config], { stdio: 'pipe' });
}

const goldens = readdirSync(goldenDir)
  .filter((file) => file.endsWith('.conf'))
  .sort();

it('has golden configurations to check', () => {
  expect(goldens.length).toBeGreaterThanOrEqual(15);
});

it.each(goldens)('golden %s passes nginx -t with our module', (file) => {
  const config = place(file.replace(/\.conf$/, ''), readFileSync(join(goldenDir, file), 'utf8'));
  expect(() => nginxTest(config)).not.toThrow();
});

it('a mesh of 2,000 services with 3 endpoints each and 300 policies passes nginx -t', () => {
  const started = process.hrtime.bigint();
  const { text } = renderSidecarConfig(largeSnapshot(2000, 300), shopContext());
  const renderMs = Number(process.hrtime.bigint() - started) / 1e6;
  const config = place('large', text);
  const checked = process.hrtime.bigint();
  expect(() => nginxTest(config)).not.toThrow();
  const checkMs = Number(process.hrtime.bigint() - checked) / 1e6;
  process.stderr.write(
    `large sidecar config: render ${renderMs.toFixed(0)} ms, ${text.length} bytes, nginx -t ${checkMs.toFixed(0)} ms\n`,
  );
  expect(text).toContain('upstream mesh_ns18__svc1998_80');
}, 120_000);

describe('a sidecar nginx started as the agent starts it', () => {
  /** The master's heap, resident, in KiB; once its worker runs. */
  async function masterHeapKib(pid: number): Promise<number> {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (children !== '') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
    return Number(heap?.[1] ?? 0);
  }

  it('keeps what it freed reading the configuration off the heap', async () => {
    const { text } = renderSidecarConfig(shopSnapshot(), shopContext());
    const config = place('memory', text);
    const plain = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
      stdio: 'ignore',
    });
    const plainKib = await masterHeapKib(plain.pid ?? 0);
    await stopChild(plain);
    const running = startNginx({ nginx: 'nginx', prefix: dir, config }, quietLogger);
    const agentKib = await masterHeapKib(running.pid);
    await running.stop(5_000);
    process.stderr.write(`nginx master heap: ${plainKib} KiB plain, ${agentKib} KiB as started\n`);
    // About 1.9 MiB of freed blocks stay resident when glibc's threshold is left to rise.
    expect(agentKib).toBeLessThan(plainKib - 1024);
  });
});

describe('a running sidecar nginx, inbound HTTP', () => {
  let app: Server;
  let nginx: ChildProcess;
  let appPort: number;

  async function request(
    headers: Record<string, string>,
    head = 'GET /items/7 HTTP/1.1\r\nHost: web\r\n',
  ): Promise<string> {
    // The inbound redirect hands connections over with a PROXY header and the port in the
    // loopback address; send what it would send.
    const loopback = `127.1.${appPort >> 8}.${appPort & 255}`;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: loopback, port: 8890 }, () => {
        const extra = Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
        socket.write(
          `PROXY TCP4 10.1.0.7 10.1.0.5 40000 ${appPort}\r\n${head}${extra}Connection: close\r\n\r\n`,
        );
      });
      let data = '';
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
  }

  /** The shop's web (port 8080 in the fixture) on the test app's random port instead. */
  function withAppPort(text: string): string {
    return text
      .replaceAll('127.1.31.144', `127.1.${appPort >> 8}.${appPort & 255}`)
      .replace(/ 8080;\n(\s+\})/, ` ${appPort};\n$1`)
      .replaceAll('mesh_inbound_8080', `mesh_inbound_${appPort}`)
      .replace('127.0.0.1:8080 max_fails', `127.0.0.1:${appPort} max_fails`);
  }

  async function startNginx(text: string): Promise<void> {
    const config = place('running', text);
    nginx = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    nginx.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let attempt = 0; attempt < 100; attempt += 1) {
      try {
        await new Promise<void>((resolve, reject) => {
          const probe = connect({ host: '127.0.0.1', port: 8890 }, () => {
            probe.destroy();
            resolve();
          });
          probe.on('error', reject);
        });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`nginx did not listen on 8890: ${stderr}`);
  }

  /** Starts nginx with the shop's configuration under these mesh settings, on the test app. */
  async function startWith(mesh: Partial<MeshSnapshot['mesh']>): Promise<void> {
    const { text } = renderSidecarConfig(withMesh(mesh), shopContext({ containerPorts: [] }));
    await startNginx(withAppPort(text));
  }

  beforeAll(async () => {
    app = createServer((req, res) =>
      res.end(`app saw ${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}`),
    );
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await stopChild(nginx);
  });

  afterAll(async () => {
    await new Promise((resolve) => app.close(resolve));
  });

  it('forwards plaintext to the app port named by the loopback address, keeping Host', async () => {
    await startWith({ mtlsMode: 'off' });
    const response = await request({});
    expect(response).toMatch(/^HTTP\/1.1 200/);
    expect(response).toContain('app saw GET /items/7 host=web');
  }, 30_000);

  it('lets an idle connection to the app go after 4 s, before a Node app (5 s) drops it', async () => {
    await startWith({ mtlsMode: 'off' });
    // This app keeps idle connections long: whoever closes within 4.6 s is the sidecar.
    app.keepAliveTimeout = 30_000;
    let connections = 0;
    const count = (): void => void (connections += 1);
    app.on('connection', count);
    try {
      expect(await request({})).toMatch(/^HTTP\/1.1 200/);
      await new Promise((resolve) => setTimeout(resolve, 4_600));
      expect(await request({})).toMatch(/^HTTP\/1.1 200/);
      expect(connections).toBe(2);
    } finally {
      app.off('connection', count);
      app.keepAliveTimeout = 5_000;
    }
  }, 30_000);

  it('gives an HTTP/1.0 request without Host one naming the app, which HTTP/1.1 apps require', async () => {
    await startWith({ mtlsMode: 'permissive' });
    // Node's HTTP server answers 400 to an HTTP/1.1 request without Host, as nginx does.
    const response = await request({}, 'GET /from-a-job HTTP/1.0\r\n');
    expect(response).toMatch(/^HTTP\/1.1 200/);
    expect(response).toContain(`app saw GET /from-a-job host=127.0.0.1:${appPort}`);
  }, 30_000);

  /** An upgrade request through the inbound server; what came back, and the echo of payload. */
  async function upgrade(payload: string): Promise<{ head: string; echoed: string }> {
    const loopback = `127.1.${appPort >> 8}.${appPort & 255}`;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: loopback, port: 8890 }, () => {
        socket.write(
          `PROXY TCP4 10.1.0.7 10.1.0.5 40000 ${appPort}\r\nGET /ws HTTP/1.1\r\nHost: web\r\n` +
            'Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
        );
      });
      let data = '';
      let sent = false;
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString();
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = data.slice(0, end);
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          resolve({ head, echoed: '' });
          return;
        }
        if (!sent) {
          sent = true;
          socket.write(payload);
        }
        const echoed = data.slice(end + 4);
        if (echoed.length >= payload.length) {
          socket.destroy();
          resolve({ head, echoed });
        }
      });
      socket.on('error', reject);
      setTimeout(() => {
        socket.destroy();
        resolve({ head: data, echoed: '' });
      }, 5_000).unref();
    });
  }

  it('passes a WebSocket upgrade to the app, and the tunnel both ways', async () => {
    await startWith({ mtlsMode: 'off' });
    const seen: string[] = [];
    const onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
      seen.push(`${req.headers.upgrade ?? ''} ${req.headers.connection ?? ''}`);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
      socket.pipe(socket);
    };
    app.on('upgrade', onUpgrade);
    try {
      const { head, echoed } = await upgrade('ping through the tunnel');
      expect(head).toMatch(/^HTTP\/1.1 101/);
      expect(echoed).toBe('ping through the tunnel');
      expect(seen).toEqual(['websocket upgrade']);
      // A plain request on the same server still goes to the app with keep-alive, not upgrade.
      expect(await request({})).toContain('app saw GET /items/7 host=web');
    } finally {
      app.off('upgrade', onUpgrade);
    }
  }, 30_000);

  it('refuses an upgrade under deny before it reaches the app', async () => {
    await startWith({ mtlsMode: 'permissive', accessControlMode: 'deny' });
    let upgrades = 0;
    const onUpgrade = (_: IncomingMessage, socket: Duplex): void => {
      upgrades += 1;
      socket.destroy();
    };
    app.on('upgrade', onUpgrade);
    try {
      expect((await upgrade('x')).head).toMatch(/^HTTP\/1.1 403/);
      expect(upgrades).toBe(0);
    } finally {
      app.off('upgrade', onUpgrade);
    }
  }, 30_000);

  it('answers 403 under deny to a plaintext peer, which has no identity', async () => {
    await startWith({ mtlsMode: 'permissive', accessControlMode: 'deny' });
    const response = await request({});
    expect(response).toMatch(/^HTTP\/1.1 403/);
  }, 30_000);
});
