// What running the sidecar's rendered nginx outside a pod needs: our nginx module (built once by
// its script, which says where it is), and a run directory with nginx's temp directories and a
// throwaway certificate as svid.pem and bundle.crt, for configurations that name them without
// mTLS in play.
import { prepareStatsSocket } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The checkout: the first directory up from here with the module's build script. Tests run from
 * their source; benches from a bundle under node_modules/.cache, so a fixed climb would not do.
 */
function checkoutRoot(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir))
    if (existsSync(join(dir, 'scripts', 'build-ngx-mesh.sh'))) return dir;
  return process.cwd();
}

/** Builds the ngx_mesh module if it is stale; its path. */
export function buildMeshModule(): string {
  return (
    execFileSync('bash', [join(checkoutRoot(), 'scripts', 'build-ngx-mesh.sh')], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .at(-1) ?? ''
  );
}

/**
 * A new run directory under the system's temp directory, named from prefix, with nginx's temp
 * directories and the stats socket's directory, as the agent prepares its own; others may open
 * its files but not list them.
 */
export function prepareSidecarDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // nginx's workers run as another user when the master is root, and open the members file here.
  chmodSync(dir, 0o711);
  for (const temp of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, temp));
  prepareStatsSocket(dir);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
      .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'bundle.crt')])
      .concat(['-days', '1', '-subj', '/CN=sidecar-test']),
    { stdio: 'pipe' },
  );
  writeFileSync(
    join(dir, 'svid.pem'),
    readFileSync(join(dir, 'bundle.crt'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8'),
  );
  return dir;
}

/**
 * The rendered configuration with the run directory's paths and the built module, and its
 * members file (the endpoints of its upstreams, as the agent writes it); the configuration's path.
 */
export function writeSidecarConfig(
  dir: string,
  meshModule: string,
  text: string,
  members = '',
): string {
  writeFileSync(join(dir, 'members'), members);
  const config = join(dir, 'nginx.conf');
  writeFileSync(
    config,
    text
      .replace('/usr/lib/nginx/modules/ngx_mesh_module.so', meshModule)
      .replaceAll('/etc/nginx-mesh', dir),
  );
  return config;
}

/** Starts nginx in the foreground on a written configuration; resolves once port answers. */
export async function startSidecarNginx(
  dir: string,
  config: string,
  port: number,
): Promise<ChildProcess> {
  const child = spawn('nginx', ['-e', 'stderr', '-p', dir, '-c', config, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (await listensSoon(port)) return child;
  child.kill('SIGKILL');
  throw new Error(`nginx did not listen on ${port}: ${stderr}`);
}

/** Whether something accepts connections on 127.0.0.1:port within about five seconds. */
export async function listensSoon(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const probe = connect({ host: '127.0.0.1', port }, () => {
        probe.destroy();
        resolve(true);
      });
      probe.on('error', () => resolve(false));
    });
    if (up) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

/** Waits until 127.0.0.1:port accepts connections; throws naming the port when it never does. */
export async function waitForPort(port: number): Promise<void> {
  if (!(await listensSoon(port))) throw new Error(`nothing listens on ${port}`);
}

/**
 * The start of a hand-written configuration for nginx with the stream module and ngx_mesh: the
 * pid file in dir, and the http block opened with its temporary paths in dir and no access log.
 */
export function moduleConfigPreamble(
  dir: string,
  meshModule: string,
  options: { readonly pid?: string; readonly workers?: number } = {},
): string {
  return `
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module ${meshModule};
pid ${dir}/${options.pid ?? 'nginx.pid'};
worker_processes ${options.workers ?? 1};
events {}
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;`;
}

/** `nginx -t` of a rendered configuration in a scratch directory; throws with nginx's message. */
export function nginxTestConfig(text: string, members: string): void {
  const dir = prepareSidecarDir('sidecar-nginx-t-');
  try {
    const config = writeSidecarConfig(dir, buildMeshModule(), text, members);
    execFileSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', config], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
