// The agent's nginx configuration against the real nginx, and what the agent does with a bad one.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { isolateBinary } from '../support/binary';
import type { IsolatedBinary } from '../support/binary';

const root = join(__dirname, '..', '..');
let dir: string;
let binary: IsolatedBinary;
let meshModule: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agent-nginx-'));
  binary = isolateBinary();
  meshModule =
    execFileSync('bash', [join(root, 'scripts', 'build-ngx-mesh.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1) ?? '';
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  binary.remove();
});

it('the golden transparent configuration passes nginx -t with our module', () => {
  const golden = readFileSync(
    join(root, 'test', 'golden', 'data', 'agent-nginx', 'transparent.conf'),
    'utf8',
  );
  const config = join(dir, 'nginx.conf');
  writeFileSync(
    config,
    golden
      .replace('/usr/lib/nginx/modules/ngx_mesh_module.so', meshModule)
      .replaceAll('/etc/nginx-mesh', dir),
  );
  expect(() =>
    execFileSync('nginx', ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', config], { stdio: 'pipe' }),
  ).not.toThrow();
});

it('refuses to start on a configuration nginx rejects, and writes none', async () => {
  const runDir = join(dir, 'run');
  const result = await execa(
    binary.path,
    [
      'run',
      '--role',
      'agent',
      '--run-dir',
      runDir,
      '--status-bind-address',
      '127.0.0.1:0',
      '--nginx-modules',
      '/usr/lib/nginx/modules/ngx_stream_module.so,/bin/true',
    ],
    { reject: false, timeout: 20_000 },
  );
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain(`nginx rejected ${join(runDir, 'nginx.conf.new')}`);
  expect(existsSync(join(runDir, 'nginx.conf'))).toBe(false);
});

it('refuses a malformed redirect table, naming it', async () => {
  const result = await execa(
    binary.path,
    [
      'run',
      '--role',
      'agent',
      '--run-dir',
      join(dir, 'run2'),
      '--health-redirects',
      '{"/x":{"port":0}}',
      '--nginx-modules',
      `/usr/lib/nginx/modules/ngx_stream_module.so,${meshModule}`,
    ],
    { reject: false, timeout: 20_000 },
  );
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain('--health-redirects: invalid entry for \\"/x\\"');
});
