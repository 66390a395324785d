// The Helm chart and deploy install the same objects: the real helm renders the chart (as
// generated from the install manifests) for a matrix of values, `deploy --dry-run` renders the
// same settings given as flags, and the objects must be equal. helm also refuses what deploy
// refuses, naming the value.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { buildChart, VALUE_OF_FLAG } from '../../src/manifests/chart';
import { runCli } from '../support/cli';
import {
  FIXTURE_CERT as CERT,
  FIXTURE_KEY as KEY,
  FIXTURE_OTHER_CERT,
} from '../support/pem-fixtures';

const VERSION = '1.2.3';
const ROOT = join(__dirname, '..', '..');

const files: Record<string, string> = {
  '/ca/upstream.yaml': `apiVersion: v1
upstreamAuthority: disk
config:
  cert_file_path: /ca/ca.pem
  key_file_path: /ca/ca.key
`,
  '/ca/upstream-bundle.yaml': `apiVersion: v1
upstreamAuthority: disk
config:
  cert_file_path: /ca/ca.pem
  key_file_path: /ca/ca.key
  bundle_file_path: /ca/bundle.pem
`,
  '/ca/ca.pem': CERT,
  '/ca/ca.key': KEY,
  '/ca/bundle.pem': FIXTURE_OTHER_CERT,
  '/keys/gcr.json': '{"type":"service_account"}\n',
};

type Values = Record<string, unknown>;

/** The same settings, as deploy's flags and as chart values (NGINX Service Mesh's names). */
const MATRIX: readonly { name: string; flags: readonly string[]; values: Values }[] = [
  { name: 'defaults', flags: [], values: {} },
  {
    name: 'strict, private registry with a password, UDP, public images off',
    flags: [
      '--mtls-mode',
      'strict',
      '--access-control-mode',
      'deny',
      '--registry-server',
      'registry.example.test:5000/mesh',
      '--image-tag',
      '2.1.0',
      '--registry-username',
      'robot',
      '--registry-password',
      's3cret:with%percent',
      '--disable-public-images',
      '--pull-always',
      '--enable-udp',
    ],
    values: {
      mtls: { mode: 'strict' },
      accessControlMode: 'deny',
      registry: {
        server: 'registry.example.test:5000/mesh',
        imageTag: '2.1.0',
        username: 'robot',
        password: 's3cret:with%percent',
        disablePublicImages: true,
        imagePullPolicy: 'Always',
      },
      enableUDP: true,
    },
  },
  {
    name: 'upstream CA, telemetry, registry key, Prometheus, least_time',
    flags: [
      '--mtls-upstream-ca-conf',
      '/ca/upstream.yaml',
      '--mtls-ca-key-type',
      'rsa-2048',
      '--mtls-ca-ttl',
      '48h',
      '--mtls-svid-ttl',
      '30m',
      '--mtls-trust-domain',
      'mesh.example.test',
      '--prometheus-address',
      'prometheus.monitoring:9090',
      '--telemetry-exporters',
      'type=otlp,host=otel.observability.svc,port=4317',
      '--telemetry-sampler-ratio',
      '0.5',
      '--registry-key',
      '/keys/gcr.json',
      '--nginx-lb-method',
      'least_time last_byte',
      '--client-max-body-size',
      '8m',
      '--nginx-error-log-level',
      'debug',
      '--nginx-log-format',
      'json',
    ],
    values: {
      mtls: {
        caKeyType: 'rsa-2048',
        caTTL: '48h',
        svidTTL: '30m',
        trustDomain: 'mesh.example.test',
        upstreamAuthority: { disk: { cert: CERT, key: KEY } },
      },
      prometheusAddress: 'prometheus.monitoring:9090',
      telemetry: {
        exporters: { otlp: { host: 'otel.observability.svc', port: 4317 } },
        samplerRatio: 0.5,
      },
      registry: { key: '{"type":"service_account"}\n' },
      nginxLBMethod: 'least_time last_byte',
      clientMaxBodySize: '8m',
      nginxErrorLogLevel: 'debug',
      nginxLogFormat: 'json',
    },
  },
  {
    name: 'upstream CA with a bundle, permissive, random two least_time',
    flags: [
      '--mtls-upstream-ca-conf',
      '/ca/upstream-bundle.yaml',
      '--mtls-mode',
      'off',
      '--nginx-lb-method',
      'random two least_time=last_byte',
      '--prometheus-address',
      'https://prometheus.example.test:9443/prefix',
    ],
    values: {
      mtls: {
        mode: 'off',
        upstreamAuthority: { disk: { cert: CERT, key: KEY, bundle: FIXTURE_OTHER_CERT } },
      },
      nginxLBMethod: 'random two least_time=last_byte',
      prometheusAddress: 'https://prometheus.example.test:9443/prefix',
    },
  },
];

type Manifest = {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

/** Objects comparable across both: JSON held in strings parsed, the managed-by label left out. */
function normalized(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && /^\s*[{[]/.test(value)) {
    try {
      return normalized(JSON.parse(value));
    } catch {
      return value;
    }
  }
  if (Array.isArray(value)) return value.map((each) => normalized(each));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([name]) => !(key === 'labels' && name === 'app.kubernetes.io/managed-by'))
        .map(([name, each]) => [name, normalized(each, name)]),
    );
  }
  return value;
}

function objectsOf(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null)
    .map((object) => normalized(object) as Manifest)
    .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
}

async function deployDryRun(flags: readonly string[], namespace: string) {
  const result = await runCli(['deploy', '--dry-run', '-n', namespace, ...flags], {
    input: {
      readFile: (path) => {
        const text = files[path];
        return text === undefined
          ? Promise.reject(new Error(`open ${path}: no such file`))
          : Promise.resolve(text);
      },
      readStdin: () => Promise.resolve(''),
    },
  });
  expect(
    result.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('Warning: ')),
  ).toEqual([]);
  expect(result.code).toBe(0);
  return result;
}

async function dryRun(flags: readonly string[], namespace: string): Promise<Manifest[]> {
  const result = await deployDryRun(flags, namespace);
  // Helm creates the namespace (--create-namespace) and installs crds/ as they are; the
  // GatewayClass needs the Gateway API CRDs, which the chart leaves to the user (its notes say so).
  return objectsOf(result.stdout).filter(
    (o) =>
      o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition' && o.kind !== 'GatewayClass',
  );
}

let helm: string;
let work: string;
let chart: string;

beforeAll(() => {
  const bin =
    execFileSync('bash', [join(ROOT, 'scripts', 'build-helm.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .pop() ?? '';
  helm = join(bin, 'helm');
  work = mkdtempSync(join(tmpdir(), 'nsm-chart-'));
  chart = join(work, 'nginx-service-mesh');
  for (const [path, text] of buildChart(VERSION)) {
    mkdirSync(dirname(join(chart, path)), { recursive: true });
    writeFileSync(join(chart, path), text);
  }
}, 30 * 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function template(values: Values, namespace = 'nginx-mesh') {
  const file = join(work, `values-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(values));
  return execa(helm, ['template', 'nginx-service-mesh', chart, '-n', namespace, '-f', file], {
    reject: false,
    env: {
      HELM_CACHE_HOME: join(work, 'cache'),
      HELM_CONFIG_HOME: join(work, 'config'),
      HELM_DATA_HOME: join(work, 'data'),
    },
  });
}

describe('the Helm chart', () => {
  it('passes helm lint', async () => {
    const result = await execa(helm, ['lint', '--strict', chart], { reject: false });
    expect(result.stdout).toContain('0 chart(s) failed');
    expect(result.exitCode).toBe(0);
  });

  it.each(MATRIX)('renders what deploy --dry-run installs: $name', async ({ flags, values }) => {
    for (const namespace of ['nginx-mesh', 'mesh-system']) {
      const rendered = await template(values, namespace);
      expect(rendered.stderr).toBe('');
      expect(rendered.exitCode).toBe(0);
      expect(objectsOf(rendered.stdout)).toEqual(await dryRun(flags, namespace));
    }
  });

  it.each([
    ...MATRIX,
    {
      name: 'CA storage settings that are only stored',
      flags: ['--persistent-storage', 'on', '--spire-server-key-manager', 'memory'],
      values: { mtls: { persistentStorage: 'on', spireServerKeyManager: 'memory' } },
    },
    {
      name: 'persistent storage off',
      flags: ['--persistent-storage', 'off'],
      values: { mtls: { persistentStorage: 'off' } },
    },
  ])(
    'prints in its release notes every warning deploy prints: $name',
    async ({ flags, values }) => {
      const file = join(work, `notes-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify(values));
      const installed = await execa(
        helm,
        [
          'install',
          'nginx-service-mesh',
          chart,
          '-n',
          'mesh-system',
          '-f',
          file,
          '--dry-run=client',
        ],
        { reject: false, env: { KUBECONFIG: join(work, 'no-kubeconfig') } },
      );
      expect(installed.exitCode).toBe(0);
      const notes = installed.stdout.slice(installed.stdout.indexOf('NOTES:'));
      const fromHelm = notes.split('\n').filter((line) => line.startsWith('Warning: '));
      const deployed = await deployDryRun(flags, 'mesh-system');
      const fromDeploy = deployed.stderr
        .split('\n')
        .filter((line) => line.startsWith('Warning: '))
        .map((line) =>
          line.replace(/--([a-z-]+)/g, (_flag, name: string) => VALUE_OF_FLAG[name] ?? `--${name}`),
        );
      expect(fromHelm.sort()).toEqual(fromDeploy.sort());
    },
  );

  it.each([
    [{ mtls: { mode: 'mutual' } }, /mtls\/mode|mtls\.mode/],
    [{ accessControlMode: 'open' }, /accessControlMode/],
    [{ environment: 'openshift' }, /environment/],
    [{ mtls: { caTTL: '5h' } }, /caTTL/],
    [{ clientMaxBodySize: '1 MB' }, /clientMaxBodySize/],
    [{ mtls: { upstreamAuthority: { vault: { vault_addr: 'https://vault' } } } }, /vault/],
    [
      { registry: { username: 'robot' } },
      /both registry.username and registry.password must be set/,
    ],
    [{ registry: { key: '{}', username: 'u', password: 'p' } }, /cannot set both registry.key/],
    [
      { mtls: { caTTL: '24h', svidTTL: '5h' } },
      /mtls.caTTL \(24h\) must be at least 6 times mtls.svidTTL \(5h\)/,
    ],
    [{ telemetry: { samplerRatio: 0.5 } }, /telemetry needs exporters/],
    [{ telemetry: { exporters: { otlp: { host: 'otel' } } } }, /port/],
    [{ mtls: { modes: 'strict' } }, /modes/],
  ])('refuses %j, naming the value', async (values, message) => {
    const rendered = await template(values);
    expect(rendered.exitCode).not.toBe(0);
    expect(rendered.stdout).toBe('');
    expect(rendered.stderr).toMatch(message);
  });
});
