// The agent's apply loop with members files, against the real nginx and ngx_mesh: a change of
// members alone is taken without a reload (same workers, counted as an endpoint update); a change
// of the configuration reloads and brings its members; when nginx does not take the members it
// is reloaded instead; and a configuration nginx refuses still lets the one in force follow the
// new members.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applierExposition, createConfigApplier } from '../../src/runtime/agent/config-applier';
import type { ConfigApplier } from '../../src/runtime/agent/config-applier';
import { updateNginxMembers } from '../../src/runtime/agent/metrics/sidecar-metrics';
import { listNginxChildren } from '../../src/runtime/agent/nginx-process';
import type { NginxPaths } from '../../src/runtime/agent/nginx-process';
import { Supervisor } from '../../src/runtime/agent/supervisor';
import type { LogFields, Logger } from '../../src/runtime/role/log';
import { freePort } from '../support/prometheus';
import { buildMeshModule } from '../support/sidecar-dir';

const logLines: { msg: string; fields: LogFields }[] = [];
const logger: Logger = {
  debug: () => undefined,
  info: (msg, fields = {}) => void logLines.push({ msg, fields }),
  warn: (msg, fields = {}) => void logLines.push({ msg, fields }),
  error: (msg, fields = {}) => void logLines.push({ msg, fields }),
  with: () => logger,
};

let dir: string;
let port: number;
let meshModule: string;
let paths: NginxPaths;
let supervisor: Supervisor;
let applier: ConfigApplier;
/** Set to make the members update fail, as an nginx that does not answer would. */
let refuseUpdates = false;
const backends: http.Server[] = [];
const backendPorts: number[] = [];

function config(body: string): string {
  const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
  return [
    'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
    `load_module ${meshModule};`,
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    'error_log stderr notice;',
    'events {}',
    'http {',
    '  access_log off;',
    `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}`,
    `  mesh_members ${join(dir, 'members')};`,
    '  upstream app {',
    '    least_conn;',
    '    mesh_upstream_slots;',
    '    server 127.0.0.1:1 down;',
    '    server 127.0.0.1:1 down;',
    '    server 127.0.0.1:1 down;',
    '    server 127.0.0.1:1 down;',
    '    keepalive 4;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    location = /config { return 200 "${body}"; }`,
    '    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    '  }',
    '  server {',
    `    listen unix:${join(dir, 'nginx.sock')};`,
    '    location = /members { mesh_members_update; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

const members = (...indexes: number[]): string =>
  `upstream app ${indexes.map((index) => `127.0.0.1:${backendPorts[index] ?? 0}`).join(' ')}\n`;

/** One request on a new connection (none kept alive across a reload): its answer. */
function get(path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve(res.statusCode === 200 ? body : `${res.statusCode ?? 0} ${body}`);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Which backends answer 16 requests. */
async function answering(): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 16; i += 1) seen.add(await get());
  return [...seen].sort();
}

function workerPids(): number[] {
  return listNginxChildren(supervisor.masterPid() ?? 0).map((child) => child.pid);
}

beforeAll(async () => {
  meshModule = buildMeshModule();
  dir = mkdtempSync(join(tmpdir(), 'agent-members-'));
  // nginx's workers run as another user when the master is root: they read the members file
  chmodSync(dir, 0o755);
  for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, name));
  port = await freePort();
  for (let index = 0; index < 3; index += 1) {
    const server = http.createServer((_req, res) => res.end(`b${index}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    backends.push(server);
    backendPorts.push((server.address() as AddressInfo).port);
  }
  paths = { nginx: '/usr/sbin/nginx', prefix: dir, config: join(dir, 'nginx.conf') };
  supervisor = new Supervisor({
    paths,
    logger,
    readyPort: port,
    backoff: { initialMs: 100, maxMs: 1_000 },
    reloadTimeoutMs: 5_000,
    beforeStart: () => rmSync(join(dir, 'nginx.sock'), { force: true }),
  });
  applier = createConfigApplier({
    paths,
    supervisor,
    logger,
    members: {
      path: join(dir, 'members'),
      update: () =>
        refuseUpdates
          ? Promise.reject(new Error('nginx did not answer'))
          : updateNginxMembers(join(dir, 'nginx.sock'), '/members'),
    },
  });
  // Before nginx runs: the members file is written, and the first start reads it.
  expect((await applier.apply(config('A'), 'A', members(0))).applied).toBe(true);
  await supervisor.start();
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  for (const server of backends) server.close();
  rmSync(dir, { recursive: true, force: true });
});

it('starts with the members written before nginx ran', async () => {
  expect(await answering()).toEqual(['b0']);
});

it('takes a change of members alone without a reload, and counts it', async () => {
  const workers = workerPids();
  const before = applier.counts();
  const outcome = await applier.apply(config('A'), 'members-1', members(1, 2));
  expect(outcome).toEqual({ applied: true, membersOnly: true });
  expect(await answering()).toEqual(['b1', 'b2']);
  expect(workerPids()).toEqual(workers);
  expect(applier.counts()).toEqual({
    reloads: before.reloads,
    memberUpdates: before.memberUpdates + 1,
  });
  expect(logLines.at(-1)).toMatchObject({
    msg: 'endpoints updated without a reload',
    fields: { label: 'members-1' },
  });
  expect(applierExposition(applier)).toContain(
    `nginx_mesh_endpoint_updates_total ${before.memberUpdates + 1}\n`,
  );
});

it('does nothing for the same configuration and members', async () => {
  const before = applier.counts();
  expect(await applier.apply(config('A'), 'same', members(1, 2))).toEqual({ applied: true });
  expect(applier.counts()).toEqual(before);
});

it('reloads for a new configuration, which runs with its members', async () => {
  const before = applier.counts();
  const workers = workerPids();
  expect(await applier.apply(config('B'), 'config-B', members(0))).toEqual({ applied: true });
  expect(await get('/config')).toBe('B');
  expect(await answering()).toEqual(['b0']);
  expect(workerPids().some((pid) => !workers.includes(pid))).toBe(true);
  expect(applier.counts().reloads).toBe(before.reloads + 1);
});

it('reloads instead when nginx does not take the members, and they run', async () => {
  const before = applier.counts();
  refuseUpdates = true;
  try {
    expect(await applier.apply(config('B'), 'refused-update', members(2))).toEqual({
      applied: true,
      membersOnly: true,
    });
  } finally {
    refuseUpdates = false;
  }
  expect(await answering()).toEqual(['b2']);
  expect(applier.counts()).toEqual({
    reloads: before.reloads + 1,
    memberUpdates: before.memberUpdates,
  });
  expect(
    logLines.some(
      (line) => line.msg === 'nginx did not take the new members; reloading it instead',
    ),
  ).toBe(true);
});

it('lets the configuration in force follow new members when nginx refuses a new one', async () => {
  const outcome = await applier.apply(
    config('C').replace('events {}', 'events {} bogus;'),
    'bogus',
    members(0, 1),
  );
  expect(outcome.applied).toBe(false);
  expect(outcome.error).toContain('unknown directive "bogus"');
  expect(await get('/config')).toBe('B');
  expect(await answering()).toEqual(['b0', 'b1']);
});

it('never lost a worker through all of the above', () => {
  const crashed = logLines.filter((line) =>
    JSON.stringify(line.fields).includes('exited on signal'),
  );
  expect(crashed).toEqual([]);
});
