// The agent's apply loop against the real nginx: new configurations are checked, loaded with a
// graceful reload, refused without harm, and survive a master that is killed outright (which
// leaves the file of its unix socket behind, as the sidecar's stats socket).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfigApplier } from '../../src/runtime/agent/config-applier';
import type { ConfigApplier } from '../../src/runtime/agent/config-applier';
import { listNginxChildren } from '../../src/runtime/agent/nginx-process';
import type { NginxPaths } from '../../src/runtime/agent/nginx-process';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import type { LogFields, Logger } from '../../src/runtime/role/log';
import { freePort } from '../support/prometheus';

interface LogLine {
  readonly msg: string;
  readonly fields: LogFields;
}

function recordingLogger(lines: LogLine[]): Logger {
  const record = (msg: string, fields: LogFields = {}): void => {
    lines.push({ msg, fields });
  };
  return {
    debug: record,
    info: record,
    warn: record,
    error: record,
    with: () => recordingLogger(lines),
  };
}

/** One request on a fresh connection: the answer says which configuration served it. */
function get(port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

let dir: string;
let port: number;
let upstreamPort: number;
let upstream: http.Server;
/** Requests to the upstream wait here until the test lets them finish. */
const heldResponses: http.ServerResponse[] = [];
const logLines: LogLine[] = [];
let paths: NginxPaths;
let supervisor: Supervisor;
let applier: ConfigApplier;

/** A configuration whose / answers `body`; /stream proxies to the test's upstream, unbuffered. */
function config(body: string, extraListen?: number): string {
  const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
  return [
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    'error_log stderr notice;',
    'events {}',
    'http {',
    '  access_log off;',
    `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    listen unix:${join(dir, 'nginx.sock')};`,
    extraListen === undefined ? '' : `    listen 127.0.0.1:${extraListen};`,
    `    location / { return 200 "${body}"; }`,
    `    location /stream { proxy_pass http://127.0.0.1:${upstreamPort}; proxy_buffering off; }`,
    '  }',
    '}',
    '',
  ].join('\n');
}

function workerPids(): number[] {
  return listNginxChildren(masterPid()).map((child) => child.pid);
}

/** The fields of the last log line with this message (and label, if given). */
function fieldsOf(msg: string, label?: string): LogFields | undefined {
  return logLines
    .filter((line) => line.msg === msg && (label === undefined || line.fields.label === label))
    .at(-1)?.fields;
}

function masterPid(): number {
  const pid = supervisor.masterPid();
  if (pid === undefined) throw new Error('no nginx master');
  return pid;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-apply-'));
  for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, name));
  port = await freePort();
  upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('first,');
    heldResponses.push(res);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
  paths = { nginx: '/usr/sbin/nginx', prefix: dir, config: join(dir, 'nginx.conf') };
  const logger = recordingLogger(logLines);
  supervisor = new Supervisor({
    paths,
    logger,
    readyPort: port,
    backoff: { initialMs: 100, maxMs: 1_000 },
    reloadTimeoutMs: 5_000,
    beforeStart: () => rmSync(join(dir, 'nginx.sock'), { force: true }),
  });
  applier = createConfigApplier({ paths, supervisor, logger });
  expect(await applier.apply(config('A'), 'A')).toEqual({ applied: true });
  await supervisor.start();
});

afterAll(async () => {
  await supervisor.stop();
  for (const res of heldResponses) res.end();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

it('serves the configuration it started with', async () => {
  expect(supervisor.readiness()).toEqual({ ready: true });
  expect(await get(port)).toBe('A');
  expect(applier.current()).toBe(config('A'));
});

it('switches to a new configuration with a graceful reload, keeping the master', async () => {
  const master = masterPid();
  const workersBefore = workerPids();
  expect(await applier.apply(config('B'), '2')).toEqual({ applied: true });
  expect(await get(port)).toBe('B');
  expect(masterPid()).toBe(master);
  // reload() resolved only once a worker for the new configuration ran.
  expect(workerPids().some((pid) => !workersBefore.includes(pid))).toBe(true);
  const logged = fieldsOf('configuration applied', '2');
  expect(logged).toMatchObject({ applied: true, unchanged: false });
  expect(typeof logged?.durationMs).toBe('number');
});

it('refuses a configuration nginx rejects, keeping the live one and no candidate', async () => {
  const outcome = await applier.apply(config('C').replace('events {}', 'events {} bogus;'), '3');
  expect(outcome.applied).toBe(false);
  expect(outcome.error).toContain(`nginx rejected ${paths.config}.new`);
  expect(outcome.error).toContain('unknown directive "bogus"');
  expect(outcome.error).not.toContain('\n');
  expect(await get(port)).toBe('B');
  expect(readFileSync(paths.config, 'utf8')).toBe(config('B'));
  expect(existsSync(`${paths.config}.new`)).toBe(false);
  expect(applier.current()).toBe(config('B'));
});

it('does not reload for the configuration already in use', async () => {
  const workers = workerPids();
  expect(await applier.apply(config('B'), '4')).toEqual({ applied: true });
  expect(workerPids()).toEqual(workers);
  expect(fieldsOf('configuration applied', '4')).toMatchObject({ applied: true, unchanged: true });
});

it('restores the live file when nginx refuses the reload itself', async () => {
  // nginx -t does not bind, so a port in use only shows when the master reloads.
  const taken = http.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const takenPort = (taken.address() as AddressInfo).port;
    const outcome = await applier.apply(config('D', takenPort), '5');
    expect(outcome.applied).toBe(false);
    expect(outcome.error).toContain(`nginx refused to reload ${paths.config}`);
    expect(outcome.error).toContain('Address already in use');
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
  expect(await get(port)).toBe('B');
  expect(readFileSync(paths.config, 'utf8')).toBe(config('B'));
  expect(applier.current()).toBe(config('B'));
  expect(existsSync(`${paths.config}.new`)).toBe(false);
});

it('serializes concurrent applies: the later one ends up live', async () => {
  const outcomes = await Promise.all([
    applier.apply(config('E1'), '6'),
    applier.apply(config('E2'), '7'),
  ]);
  expect(outcomes).toEqual([{ applied: true }, { applied: true }]);
  expect(await get(port)).toBe('E2');
  expect(readFileSync(paths.config, 'utf8')).toBe(config('E2'));
  const labels = logLines
    .filter((line) => line.msg === 'configuration applied')
    .map((line) => line.fields.label);
  expect(labels.slice(-2)).toEqual(['6', '7']);
});

it('lets a response in flight finish across a reload', async () => {
  const streamed = get(port, '/stream');
  await until(() => heldResponses.length === 1, 5_000);
  expect(await applier.apply(config('F'), '8')).toEqual({ applied: true });
  expect(await get(port)).toBe('F');
  heldResponses[0]?.end('last');
  expect(await streamed).toBe('first,last');
});

it('restarts a master killed outright on the live configuration', async () => {
  const killed = masterPid();
  process.kill(killed, 'SIGKILL');
  await until(() => !supervisor.readiness().ready, 5_000);
  await until(() => supervisor.readiness().ready, 10_000);
  expect(masterPid()).not.toBe(killed);
  expect(await get(port)).toBe('F');
  expect(fieldsOf('nginx exited; restarting')).toMatchObject({ reason: 'SIGKILL' });
});

it('does not lose a configuration applied while the master is being restarted', async () => {
  process.kill(masterPid(), 'SIGKILL');
  await until(() => !supervisor.readiness().ready, 5_000);
  expect(await applier.apply(config('G'), '9')).toEqual({ applied: true });
  await until(() => supervisor.readiness().ready, 10_000);
  expect(await get(port)).toBe('G');
  expect(readFileSync(paths.config, 'utf8')).toBe(config('G'));
});
