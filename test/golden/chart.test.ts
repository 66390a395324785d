// The committed Helm chart is what the install manifests give (npm run chart writes it), and its
// value schema accepts exactly what deploy's flags accept.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildChart, CHART_DIRECTORY } from '../../src/manifests/chart';
import { VALUE_PATTERNS } from '../../src/manifests/chart/values';
import { buildMeshConfig, defaultDeployInput } from '../../src/manifests/mesh-config';
import type { DeployInput } from '../../src/manifests/mesh-config';

const ROOT = join(__dirname, '..', '..');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('charts/nginx-service-mesh', () => {
  const directory = join(ROOT, CHART_DIRECTORY);
  const wanted = buildChart(version);

  it('holds exactly the generated files (run npm run chart after changing the manifests)', () => {
    const present = readdirSync(directory, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
      .sort();
    expect(present).toEqual([...wanted.keys()].sort());
    for (const [path, text] of wanted) {
      expect({ path, text: readFileSync(join(directory, path), 'utf8') }).toEqual({ path, text });
    }
  });

  it('is versioned as this executable, which is the image tag it installs by default', () => {
    expect(wanted.get('Chart.yaml')).toContain(`\nversion: ${version}\nappVersion: ${version}\n`);
    expect(wanted.get('values.yaml')).toContain(`  imageTag: ${version}\n`);
  });
});

const SAMPLES: Readonly<Record<keyof typeof VALUE_PATTERNS, readonly [keyof DeployInput, readonly string[]]>> = {
  clientMaxBodySize: ['clientMaxBodySize', ['0', '1m', '512', '2G', '1 m', 'm', '1mb', '-1', '']],
  imageTag: ['imageTag', ['2.0.0', 'latest', '_x', '.x', 'a'.repeat(128), 'a'.repeat(129), 'a b', '']],
  caTTL: ['mtlsCaTtl', ['24h', '720h', '999999h', '23h', '1000000h', '720m', '0024h', 'h']],
  svidTTL: ['mtlsSvidTtl', ['1h', '30m', '999999m', '0h', '1000000h', '1d', '1']],
  trustDomain: ['mtlsTrustDomain', ['example.org', 'a_b-c.d', 'Example.org', 'a/b', '', 'x'.repeat(256)]],
  registryServer: ['registryServer', ['localhost', 'r.example:5000/nsm', 'a/b/c', 'https://r', 'r/', '/r', 'a b']],
  prometheusAddress: [
    'prometheusAddress',
    ['', 'prometheus.monitoring:9090', 'https://p.example:9443/x', 'p.m:0', 'p.m:65536', 'P.m:9090', 'p.m.svc:9090', 'p:9090'],
  ],
};

describe('the chart value schema', () => {
  it.each(Object.entries(SAMPLES))('accepts exactly the %s values deploy accepts', (name, [field, samples]) => {
    const pattern = new RegExp(VALUE_PATTERNS[name as keyof typeof VALUE_PATTERNS]);
    for (const sample of samples) {
      const input = { ...defaultDeployInput('1.0.0'), [field]: sample };
      // The CA-to-SVID lifetime ratio is its own rule (checked by the chart's validate helper):
      // the other TTL is set so that it holds.
      const ratio =
        field === 'mtlsCaTtl' ? { mtlsSvidTtl: '1m' } : field === 'mtlsSvidTtl' ? { mtlsCaTtl: '999999h' } : {};
      const outcome = buildMeshConfig({ ...input, ...ratio }, { namespace: 'nginx-mesh', files: new Map() });
      expect({ sample, accepted: pattern.test(sample) }).toEqual({ sample, accepted: 'config' in outcome });
    }
  });
});
