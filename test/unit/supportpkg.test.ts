// The support package's pure parts: the tar archive (read back by the system's tar), the tables,
// the YAML with banners, the redactions, and the package's name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { packageName } from '../../src/commands/supportpkg';
import {
  REDACTED,
  age,
  redactConfig,
  redactSecret,
  renderEventTable,
  renderPodTable,
  renderYamlObjects,
} from '../../src/render/support';
import { tarArchive } from '../../src/render/tar';
import { runCli } from '../support/cli';

const NOW = new Date('2026-11-26T10:00:00Z');

describe('tarArchive', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tar-test-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes files the system tar extracts byte for byte, long paths and binary included', () => {
    const long = `pkg/${'namespace-with-a-long-name'.repeat(3)}/${'pod-with-a-long-name'.repeat(3)}/nginx-mesh-sidecar-logs.txt`;
    expect(long.length).toBeGreaterThan(100);
    const binary = Buffer.from(Array.from({ length: 1500 }, (_, index) => index % 256));
    const entries = [
      { path: 'pkg/README.md', content: '# Support package\n' },
      { path: 'pkg/empty.txt', content: '' },
      { path: 'pkg/block.txt', content: 'x'.repeat(512) },
      { path: 'pkg/ünïcode.txt', content: 'naïve ☃\n' },
      { path: long, content: 'log line\n' },
      { path: 'pkg/binary.bin', content: binary },
    ];
    const file = join(dir, 'pkg.tar.gz');
    writeFileSync(file, gzipSync(tarArchive(entries, NOW)));
    const listing = execFileSync('tar', ['-tzvf', file], { encoding: 'utf8' });
    expect(listing).toContain('2026-11-26');
    execFileSync('tar', ['-xzf', file, '-C', dir]);
    for (const entry of entries) {
      const expected =
        typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content;
      expect(readFileSync(join(dir, entry.path)).equals(expected)).toBe(true);
    }
  });

  it.each([
    ['an absolute path', '/etc/passwd'],
    ['a path that climbs out', 'pkg/../../escape'],
    ['an empty path', ''],
    ['a path with no split that fits', `${'a'.repeat(160)}/${'b'.repeat(20)}`],
  ])('refuses %s', (_what, path) => {
    expect(() => tarArchive([{ path, content: 'x' }], NOW)).toThrow(/path/);
  });
});

describe('tables', () => {
  it('prints pods as kubectl get pods -o wide does', () => {
    const text = renderPodTable(
      [
        {
          metadata: {
            name: 'nginx-mesh-controller-7d9f',
            creationTimestamp: '2026-11-26T09:58:30Z',
          },
          spec: { nodeName: 'node-1' },
          status: {
            phase: 'Running',
            podIP: '10.0.0.5',
            containerStatuses: [
              { ready: true, restartCount: 1 },
              { ready: false, restartCount: 2 },
            ],
          },
        },
        { metadata: { name: 'pending' }, status: { phase: 'Pending' } },
      ],
      NOW,
    );
    expect(text).toBe(
      [
        'NAME                        READY  STATUS   RESTARTS  AGE        IP        NODE',
        'nginx-mesh-controller-7d9f  1/2    Running  3         90s        10.0.0.5  node-1',
        'pending                     0/0    Pending  0         <unknown>  <none>    <none>',
        '',
      ].join('\n'),
    );
  });

  it('prints events oldest first, on one line each', () => {
    const text = renderEventTable(
      [
        {
          type: 'Warning',
          reason: 'BackOff',
          message: 'Back-off\nrestarting   failed container',
          lastTimestamp: '2026-11-26T09:59:00Z',
          involvedObject: { kind: 'Pod', name: 'nginx-mesh-controller-7d9f' },
        },
        {
          type: 'Normal',
          reason: 'Scheduled',
          message: 'Successfully assigned',
          lastTimestamp: '2026-11-26T07:00:00Z',
          involvedObject: { kind: 'Pod', name: 'nginx-mesh-controller-7d9f' },
        },
      ],
      NOW,
    );
    expect(text.split('\n')).toEqual([
      'LAST SEEN  TYPE     REASON     OBJECT                          MESSAGE',
      '3h         Normal   Scheduled  pod/nginx-mesh-controller-7d9f  Successfully assigned',
      '60s        Warning  BackOff    pod/nginx-mesh-controller-7d9f  Back-off restarting failed container',
      '',
    ]);
  });

  it.each([
    ['2026-11-26T09:59:59Z', '1s'],
    ['2026-11-26T09:50:00Z', '10m'],
    ['2026-11-25T10:00:00Z', '24h'],
    ['2026-11-20T10:00:00Z', '6d'],
    ['not a time', '<unknown>'],
  ])('ages %s as %s', (since, expected) => {
    expect(age(since, NOW)).toBe(expected);
  });
});

describe('YAML objects', () => {
  it('banners each object by kind and name and leaves managedFields out', () => {
    const text = renderYamlObjects(
      [
        {
          kind: 'Service',
          metadata: { name: 'nats', namespace: 'nginx-mesh', managedFields: [{ manager: 'x' }] },
          spec: { ports: [{ port: 4222 }] },
        },
        { kind: 'ClusterRole', metadata: { name: 'nginx-mesh-controller' } },
      ],
      stringify,
    );
    expect(text).toContain('---\n#######');
    expect(text).toContain('# Service nginx-mesh/nats\n');
    expect(text).toContain('# ClusterRole nginx-mesh-controller\n');
    expect(text).toContain('port: 4222');
    expect(text).not.toContain('managedFields');
    expect(text.match(/^---$/gm)).toHaveLength(2);
  });
});

describe('redactions', () => {
  it('keeps a Secret’s keys and replaces every value', () => {
    expect(
      redactSecret({
        kind: 'Secret',
        metadata: { name: 'nginx-mesh-registrar-ca' },
        data: { 'authorities.json': 'c2VjcmV0' },
        stringData: { password: 'hunter2' },
      }),
    ).toEqual({
      kind: 'Secret',
      metadata: { name: 'nginx-mesh-registrar-ca' },
      data: { 'authorities.json': REDACTED },
      stringData: { password: REDACTED },
    });
  });

  it('replaces credential fields at any depth and keeps the rest', () => {
    expect(
      redactConfig({
        registry: {
          server: 'docker-registry.nginx.com/nsm',
          username: 'me',
          password: 'pw',
          key: '{}',
        },
        mtls: { mode: 'strict', upstreamCA: { privateKey: '-----BEGIN' } },
        exporters: [{ token: 't', host: 'otel' }],
        emptyPassword: '',
      }),
    ).toEqual({
      registry: {
        server: 'docker-registry.nginx.com/nsm',
        username: REDACTED,
        password: REDACTED,
        key: REDACTED,
      },
      mtls: { mode: 'strict', upstreamCA: { privateKey: REDACTED } },
      exporters: [{ token: REDACTED, host: 'otel' }],
      emptyPassword: '',
    });
  });
});

it('names the package after the UTC time', () => {
  expect(packageName(new Date('2026-11-26T09:08:07.654Z'))).toBe('nsm-supportpkg-20261126090807');
});

describe('nginx-meshctl supportpkg', () => {
  it('refuses an output directory that does not exist before asking the cluster anything', async () => {
    const result = await runCli(['supportpkg', '-o', '/nonexistent/packages']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'output directory "/nonexistent/packages" does not exist or is not a directory',
    );
  });

  it('reports an unreachable cluster with exit 1 and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supportpkg-cli-'));
    try {
      const result = await runCli(['supportpkg', '-o', dir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('connection refused');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
