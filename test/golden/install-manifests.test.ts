// `deploy --dry-run` prints every manifest of the mesh: byte-exact golden files for several flag
// sets, read back as YAML to check they are one stream of whole Kubernetes objects.
import { parse, parseAllDocuments } from 'yaml';
import { GATEWAY_API_VERSION } from '../../src/manifests/constants';
import { buildGatewayApiCrds, GATEWAY_API_CRD_NAMES } from '../../src/manifests/gateway-api/crds';
import { loadGatewayApiRelease } from '../../src/runtime/install/gateway-api';
import { runCli } from '../support/cli';
import { expectGolden } from '../support/golden';
import { FIXTURE_CERT as CERT, FIXTURE_KEY as KEY } from '../support/pem-fixtures';

const UPSTREAM = `apiVersion: v1
upstreamAuthority: disk
config:
  cert_file_path: /ca/ca.pem
  key_file_path: /ca/ca.key
`;

const files: Record<string, string> = {
  '/ca/upstream.yaml': UPSTREAM,
  '/ca/ca.pem': CERT,
  '/ca/ca.key': KEY,
  '/keys/gcr.json': '{"type":"service_account"}\n',
};

async function dryRun(args: readonly string[]): Promise<string> {
  const result = await runCli(['deploy', '--dry-run', ...args], {
    input: {
      readFile: (path) => {
        const text = files[path];
        return text === undefined
          ? Promise.reject(new Error(`open ${path}: no such file or directory`))
          : Promise.resolve(text);
      },
      readStdin: () => Promise.resolve(''),
    },
  });
  // Warnings go to stderr, so stdout pipes cleanly into kubectl apply -f -.
  for (const line of result.stderr.split('\n').filter((each) => each !== '')) {
    expect(line).toMatch(/^Warning: /);
  }
  expect(result.code).toBe(0);
  return result.stdout;
}

const FLAG_SETS: Record<string, readonly string[]> = {
  default: [],
  'strict-private-registry': [
    '-n',
    'mesh-system',
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
    's3cret',
    '--disable-public-images',
    '--pull-always',
    '--enable-udp',
  ],
  'upstream-ca-telemetry': [
    '--mtls-upstream-ca-conf',
    '/ca/upstream.yaml',
    '--mtls-ca-key-type',
    'rsa-2048',
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
    '--nginx-mesh-sidecar-image',
    'mirror.example.test/sidecar@sha256:0123',
  ],
};

describe('deploy --dry-run', () => {
  it.each(Object.entries(FLAG_SETS))('prints the %s manifests', async (name, args) => {
    const text = await dryRun(args);
    // The CRDs have their own golden file (crds/crds.yaml); these hold everything else.
    const documents = text.split(/^(?=---\n)/m);
    const crds = documents.filter((document) => document.includes('\nkind: CustomResourceDefinition\n'));
    // 8 of the mesh, then the 5 of the Gateway API release (not in the repository, so in no golden file).
    expect(crds).toHaveLength(8 + GATEWAY_API_CRD_NAMES.length);
    const gateway = crds.slice(8).map((document) => parse(document) as unknown);
    expect(gateway).toEqual(buildGatewayApiCrds(await loadGatewayApiRelease()));
    expect(text).toContain(`# Gateway API ${GATEWAY_API_VERSION} CRDs (standard channel). deploy applies each only when the cluster lacks it`);
    expect(text.indexOf('# Gateway API')).toBeLessThan(text.indexOf(`name: ${GATEWAY_API_CRD_NAMES[0]}\n`));
    expectGolden(`install/${name}.yaml`, documents.filter((document) => !crds.includes(document)).join(''));
    for (const document of parseAllDocuments(text)) {
      expect(document.errors).toEqual([]);
      const object = document.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } };
      expect(object.apiVersion).toEqual(expect.any(String));
      expect(object.kind).toEqual(expect.any(String));
      expect(object.metadata?.name).toEqual(expect.any(String));
    }
  });

  it('needs no cluster: the kubeconfig is never read', async () => {
    const result = await runCli(['deploy', '--dry-run', '-k', '/nonexistent/kubeconfig']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^---\napiVersion: v1\nkind: Namespace\n/);
  });

  it('reports every flag problem at once and prints nothing', async () => {
    const result = await runCli([
      'deploy',
      '--dry-run',
      '--registry-username',
      'robot',
      '--mtls-ca-ttl',
      '5h',
      '--telemetry-exporters',
      'type=zipkin,host=z,port=1',
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('--mtls-ca-ttl');
    expect(result.stderr).toContain(
      'invalid configuration: both --registry-username and --registry-password must be set',
    );
    expect(result.stderr).toContain('unsupported type: must be "otlp"');
  });
});
