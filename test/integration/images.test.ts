// The container images scripts/build-images.sh writes, each run once with buildah from its
// archive, as a node would import it: the executable in every mesh image, the sidecar's nginx
// loading both modules as the pods' uid without writing outside its run dir, iptables in init,
// nats-server, the echo server answering HTTP and TCP, curl and Node in the client, and the
// static pause program. The archives are cached by their inputs: once built, this takes seconds;
// the first run builds everything (minutes).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { DEFAULT_MODULES } from '../../src/runtime/agent/start-agent';

const root = join(__dirname, '..', '..');
const cache = process.env.NGINX_MESH_CACHE ?? join(homedir(), '.cache', 'nginx-meshctl');
/** The storage scripts/build-images.sh gives buildah, so the layers it has are reused. */
const STORAGE = [
  '--root',
  join(cache, 'containers', 'storage'),
  '--runroot',
  '/run/nginx-meshctl/containers',
];
const id = randomBytes(3).toString('hex');
const COLD_BUILD_MS = 30 * 60_000;
const engine = process.env.CONTAINER_ENGINE ?? 'buildah';
const haveBuildah = engine === 'buildah' && process.getuid?.() === 0 && commandExists('buildah');

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Image reference → archive, as the script prints them. */
const archives = new Map<string, string>();
/** Working containers by image, one each, removed after the tests. */
const containers = new Map<string, string>();

function buildah(args: string[], timeout = 60_000) {
  return execa('buildah', [...STORAGE, ...args], { reject: false, timeout });
}

/** The working container of the archived image whose reference contains name. */
async function fromArchive(name: string): Promise<string> {
  const existing = containers.get(name);
  if (existing !== undefined) return existing;
  const reference = [...archives.keys()].find((each) => each.includes(name));
  const archive = reference === undefined ? undefined : archives.get(reference);
  if (archive === undefined)
    throw new Error(`no archive for ${name} in ${[...archives.keys()].join(', ')}`);
  const container = `nginx-mesh-check-${name.replace(/[^a-z0-9]/g, '-')}-${id}`;
  const result = await buildah(['from', '--name', container, `docker-archive:${archive}`]);
  if (result.exitCode !== 0) throw new Error(`buildah from ${archive}: ${result.stderr}`);
  containers.set(name, container);
  return container;
}

/** Runs a command in a container in the host network, as the image's user unless given. */
async function run(container: string, command: string[], user?: string) {
  const options = ['--network', 'host', ...(user === undefined ? [] : ['--user', user])];
  const result = await buildah(['run', ...options, container, '--', ...command]);
  return { code: result.exitCode, output: `${result.stdout}${result.stderr}` };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function retry<T>(attempt: () => Promise<T>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

function tcpEcho(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

const describeImages = haveBuildah ? describe : describe.skip;

describeImages('the container images', () => {
  beforeAll(async () => {
    const result = await execa(
      join(root, 'scripts/build-images.sh'),
      ['--archive-dir', join(cache, 'images')],
      { cwd: root, reject: false, timeout: COLD_BUILD_MS, env: { CONTAINER_ENGINE: 'buildah' } },
    );
    if (result.exitCode !== 0)
      throw new Error(`build-images failed:\n${result.stderr.slice(-4000)}`);
    for (const line of result.stdout.split('\n').filter((each) => each !== '')) {
      const [reference, archive] = line.split('\t');
      if (reference === undefined || archive === undefined || !existsSync(archive)) {
        throw new Error(`unexpected output line: ${line}`);
      }
      archives.set(reference, archive);
    }
  }, COLD_BUILD_MS);

  afterAll(async () => {
    for (const container of containers.values()) await buildah(['rm', container]);
  });

  it('prints one archive per image, the pause image under the name containerd asks for', () => {
    expect([...archives.keys()].sort()).toEqual(
      [
        'localhost/nats:2.9',
        'localhost/nginx-mesh-controller:0.1.0',
        'localhost/nginx-mesh-init:0.1.0',
        'localhost/nginx-mesh-sidecar:0.1.0',
        'localhost/nginx-mesh-test-client:0.1.0',
        'localhost/nginx-mesh-test-echo-server:0.1.0',
        'registry.k8s.io/pause:3.10.1',
      ].map((each) => each.replace('0.1.0', version())),
    );
  });

  it.each(['controller', 'init', 'sidecar'])('nginx-mesh-%s runs the executable', async (name) => {
    const container = await fromArchive(`nginx-mesh-${name}:`);
    const result = await run(container, ['/usr/bin/nginx-meshctl', 'version']);
    expect(result.output).toContain(version());
    expect(result.code).toBe(0);
  });

  it('nginx-mesh-init has iptables, as root', async () => {
    const container = await fromArchive('nginx-mesh-init:');
    expect((await run(container, ['id', '-u'])).output.trim()).toBe('0');
    const result = await run(container, ['iptables', '--version']);
    expect(result.output).toMatch(/^iptables v1\.8\.\d+ \(nf_tables\)/);
  });

  it("nginx-mesh-sidecar's nginx loads both modules as the pods' uid and writes only in the run dir", async () => {
    const container = await fromArchive('nginx-mesh-sidecar:');
    const modules = DEFAULT_MODULES.split(',')
      .map((module) => `load_module ${module};`)
      .join(' ');
    const config = `${modules} pid nginx.pid; error_log stderr; events {} stream { server { listen 127.0.0.1:${await freePort()}; return ok; } }`;
    // The agent's way: prefix and every written file in the run dir, the log on stderr.
    const script = [
      'set -e',
      'touch /tmp/.before',
      `printf '%s\\n' '${config}' >/etc/nginx-mesh/nginx.conf`,
      'nginx -t -q -e stderr -p /etc/nginx-mesh -c /etc/nginx-mesh/nginx.conf',
      'nginx -e stderr -p /etc/nginx-mesh -c /etc/nginx-mesh/nginx.conf',
      'sleep 0.5',
      'kill -QUIT "$(cat /etc/nginx-mesh/nginx.pid)"',
      'id -u',
      'find / -xdev -newer /tmp/.before -not -path "/etc/nginx-mesh*" -not -path /tmp -not -path "/proc/*" -print 2>/dev/null || true',
    ].join('\n');
    const result = await run(container, ['sh', '-c', script]);
    expect(result.output.trim()).toBe('2102');
    expect(result.code).toBe(0);
  });

  it('nats has nats-server 2.9 at /nats-server and on the PATH', async () => {
    const container = await fromArchive('/nats:');
    for (const path of ['/nats-server', 'nats-server']) {
      const result = await run(container, [path, '--version']);
      expect(result.output).toMatch(/^nats-server: v2\.9\.\d+/);
    }
  });

  it('the echo server answers HTTP and echoes TCP on the ports it is given', async () => {
    const container = await fromArchive('nginx-mesh-test-echo-server:');
    const [httpPort, tcpPort] = [await freePort(), await freePort()];
    const server = spawn(
      'buildah',
      [
        ...STORAGE,
        'run',
        '--network',
        'host',
        '--env',
        `HTTP_PORT=${httpPort}`,
        '--env',
        `TCP_PORT=${tcpPort}`,
        '--env',
        'POD_NAME=echo-check',
        container,
        '--',
        '/usr/bin/node',
        '--enable-source-maps',
        '/opt/echo-server/echo-server.cjs',
      ],
      { stdio: 'ignore' },
    );
    try {
      const response = await retry(() => fetch(`http://127.0.0.1:${httpPort}/hello`), 20_000);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-served-by')).toBe('echo-check');
      expect(((await response.json()) as { path: string }).path).toBe('/hello');
      expect(await tcpEcho(tcpPort, 'ping')).toBe('ping');
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('the client has curl, ip and the pinned Node', async () => {
    const container = await fromArchive('nginx-mesh-test-client:');
    expect((await run(container, ['curl', '--version'])).output).toMatch(/^curl 7\./);
    expect((await run(container, ['ip', '-V'])).output).toMatch(/iproute2/);
    const nodeVersion = (await run(container, ['node', '--version'])).output.trim();
    expect(nodeVersion).toBe(`v${lockedNodeVersion()}`);
  });

  it('pause is static and runs as the upstream image does', async () => {
    const container = await fromArchive('pause:');
    const result = await run(container, ['/pause', '-v']);
    expect(result.output).toContain('pause');
    expect(result.code).toBe(0);
  });
});

function version(): string {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string })
    .version;
}

function lockedNodeVersion(): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  return lock.packages['node_modules/node']?.version ?? '?';
}
