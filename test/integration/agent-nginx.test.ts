// The agent's nginx configuration against the real nginx, and what the agent does with a bad one.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { isolateBinary } from '../support/binary';
import type { IsolatedBinary } from '../support/binary';
import { writeSidecarConfig } from '../support/sidecar-dir';

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
  const config = writeSidecarConfig(dir, meshModule, golden);
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

/**
 * The agent in a network namespace of its own (the proxy's fixed ports cannot collide with
 * anything else), with a registrar nothing answers for: it never gets a configuration.
 */
function startLonelyAgent(
  name: string,
  runDir: string,
  extraArgs: readonly string[],
): {
  readonly agent: ReturnType<typeof execa>;
  /** Runs a Node script in the namespace; its stdout, trimmed. */
  readonly inNetns: (script: string) => Promise<string>;
  /** "<status> <body>" of a GET on the status server, or "down". */
  readonly probe: (path: string) => Promise<string>;
  /** Waits for the proxy to listen; "200 ok" once it does. */
  proxyReady(timeoutMs: number): Promise<string>;
  /** SIGTERM, the agent's stderr, and the namespace removed. */
  stop(): Promise<string>;
} {
  const netns = `nmk-agent-${name}-${process.pid}`;
  execFileSync('ip', ['netns', 'add', netns]);
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const agent = execa(
    'ip',
    [
      'netns',
      'exec',
      netns,
      binary.path,
      'run',
      '--role',
      'agent',
      '--run-dir',
      runDir,
      '--status-bind-address',
      '127.0.0.1:8887',
      ...extraArgs,
      '--registrar-url',
      'https://127.0.0.1:1',
      '--token-path',
      join(dir, 'no-token'),
      '--nginx-modules',
      `/usr/lib/nginx/modules/ngx_stream_module.so,${meshModule}`,
    ],
    { reject: false, timeout: 30_000 },
  );
  const inNetns = async (script: string): Promise<string> =>
    (
      await execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
        reject: false,
      })
    ).stdout.trim();
  const probe = (path: string): Promise<string> =>
    inNetns(
      `fetch('http://127.0.0.1:8887${path}').then(async (r) => console.log(r.status, (await r.text()).trim()), () => console.log('down'))`,
    );
  return {
    agent,
    inNetns,
    probe,
    async proxyReady(timeoutMs) {
      const started = Date.now();
      let proxy = 'down';
      while (proxy !== '200 ok' && Date.now() - started < timeoutMs) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        proxy = await probe('/readyz/proxy');
      }
      return proxy;
    },
    async stop() {
      agent.kill('SIGTERM');
      const ended = await agent;
      execFileSync('ip', ['netns', 'delete', netns]);
      return String(ended.stderr);
    },
  };
}

it('reports the proxy ready at once, and the pod ready only after --config-wait without a controller', async () => {
  const lonely = startLonelyAgent('ready', join(dir, 'run3'), ['--config-wait', '3s']);
  const { probe } = lonely;
  let stderr = '';
  try {
    const started = Date.now();
    expect(await lonely.proxyReady(15_000)).toBe('200 ok');
    const early = await probe('/readyz');
    const earlyMs = Date.now() - started;
    let late = early;
    while (late !== '200 ok' && Date.now() - started < 15_000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      late = await probe('/readyz');
    }
    const lateMs = Date.now() - started;
    process.stderr.write(`proxy ready, then pod ready ${lateMs} ms after start\n`);
    // Still inside the wait when the proxy came up: not ready for the mesh's traffic yet.
    expect(earlyMs).toBeLessThan(3_000);
    expect(early).toMatch(/^503 not ready: waiting for the mesh configuration: /);
    expect(late).toBe('200 ok');
    expect(lateMs).toBeGreaterThanOrEqual(2_500);
    // The same server answers /metrics; the transparent proxy has counted nothing yet.
    const metrics = await probe('/metrics');
    expect(metrics).toMatch(/^200 # HELP nginx_mesh_requests_total /);
    expect(metrics).toContain('\nnginx_mesh_stats_unreadable_total 0');
  } finally {
    stderr = await lonely.stop();
  }
  expect(stderr).toContain('no mesh configuration yet; reporting the transparent proxy ready');
});

it('in strict mTLS stays closed and not ready without a configuration, past --config-wait', async () => {
  const runDir = join(dir, 'run4');
  const lonely = startLonelyAgent('strict', runDir, [
    '--config-wait',
    '1s',
    '--mtls-mode',
    'strict',
  ]);
  let stderr = '';
  try {
    expect(await lonely.proxyReady(15_000)).toBe('200 ok');
    // Well past --config-wait: a strict sidecar never turns ready on its own.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await lonely.probe('/readyz')).toMatch(
      /^503 not ready: waiting for the mesh configuration: .*\(strict mTLS: closed until then\)$/,
    );
    // Both redirect ports accept a connection and close it without passing a byte on.
    const config = readFileSync(join(runDir, 'nginx.conf'), 'utf8');
    expect(config).not.toContain('proxy_pass');
    expect(config.match(/return "";/g)).toHaveLength(2);
    const answer = await lonely.inNetns(
      `const s = require('net').connect(8901, '127.0.0.1'); let got = 0; let accepted = false; s.on('connect', () => (accepted = true)); s.on('data', (b) => (got += b.length)); s.on('close', () => { console.log(accepted ? 'accepted' : 'refused', 'closed', got); process.exit(0); }); s.on('error', () => undefined); s.write('GET / HTTP/1.0\\r\\n\\r\\n'); setTimeout(() => { console.log('open'); process.exit(0); }, 3000);`,
    );
    // Closed with the request unread, the connection may end in a reset rather than a FIN: either
    // way not a byte came back.
    expect(answer).toBe('accepted closed 0');
  } finally {
    stderr = await lonely.stop();
  }
  expect(stderr).toContain('strict mTLS: the proxy stays closed and not ready');
});

it('after SIGTERM serves on, not ready, for --drain-duration, then stops', async () => {
  const lonely = startLonelyAgent('drain', join(dir, 'run5'), ['--drain-duration', '2s']);
  let stderr = '';
  try {
    expect(await lonely.proxyReady(15_000)).toBe('200 ok');
    const signalled = Date.now();
    lonely.agent.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 700));
    // A peer that has not heard yet still reaches the pod: its connection is taken and passed on.
    const accepted = await lonely.inNetns(
      `const s = require('net').connect(8901, '127.0.0.1', () => { console.log('accepted'); s.destroy(); }); s.on('error', (e) => console.log('error', e.code));`,
    );
    expect(accepted).toBe('accepted');
    expect(await lonely.probe('/readyz')).toBe('503 not ready: draining before the pod stops');
    await lonely.agent;
    const stoppedMs = Date.now() - signalled;
    process.stderr.write(`agent stopped ${stoppedMs} ms after SIGTERM with a 2 s drain\n`);
    expect(stoppedMs).toBeGreaterThanOrEqual(2_000);
    expect(stoppedMs).toBeLessThan(8_000);
  } finally {
    stderr = await lonely.stop();
  }
  expect(stderr).toContain('draining: the proxy serves on');
});

it('with --drain-duration 0 stops at once', async () => {
  const lonely = startLonelyAgent('nodrain', join(dir, 'run6'), ['--drain-duration', '0s']);
  try {
    expect(await lonely.proxyReady(15_000)).toBe('200 ok');
    const signalled = Date.now();
    lonely.agent.kill('SIGTERM');
    await lonely.agent;
    expect(Date.now() - signalled).toBeLessThan(1_500);
  } finally {
    await lonely.stop();
  }
});
