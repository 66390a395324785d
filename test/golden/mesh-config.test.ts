// The mesh configuration deploy stores, pinned byte for byte: meshconfig.json (ConfigMap
// meshconfig) and the MeshConfig resource with its class, plus the warnings, for typical flag sets.
import {
  buildMeshConfig,
  buildMeshConfigClassResource,
  buildMeshConfigResource,
  defaultDeployInput,
  renderMeshConfigJson,
} from '../../src/manifests/mesh-config';
import type { DeployInput } from '../../src/manifests/mesh-config';
import { expectGolden } from '../support/golden';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfixtureCERT=\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGHfixtureKEY=\n-----END PRIVATE KEY-----\n';

interface Case {
  readonly name: string;
  readonly namespace: string;
  readonly input: Partial<DeployInput>;
  readonly files?: ReadonlyMap<string, string>;
}

const cases: readonly Case[] = [
  { name: 'defaults', namespace: 'nginx-mesh', input: {} },
  {
    name: 'strict-registry-telemetry',
    namespace: 'mesh-prod',
    input: {
      mtlsMode: 'strict',
      mtlsTrustDomain: 'mesh.example.com',
      mtlsSvidTtl: '30m',
      accessControlMode: 'deny',
      registryServer: 'registry.example:5000/mesh',
      imageTag: '2.1.0',
      pullAlways: true,
      disablePublicImages: true,
      nginxLbMethod: 'least_time',
      nginxLogFormat: 'json',
      prometheusAddress: 'prometheus.monitoring:9090',
      telemetryExporters: ['type=otlp,host=otel-collector.observability.svc.cluster.local,port=4317'],
      telemetrySamplerRatio: '0.25',
    },
  },
  {
    name: 'upstream-ca',
    namespace: 'nginx-mesh',
    input: { mtlsUpstreamCaConf: 'disk.yaml', mtlsCaKeyType: 'ec-p384', mtlsCaTtl: '8760h' },
    files: new Map([
      [
        'disk.yaml',
        'apiVersion: v1\nupstreamAuthority: disk\nconfig:\n  cert_file_path: ca.pem\n  key_file_path: ca.key\n',
      ],
      ['ca.pem', CERT],
      ['ca.key', KEY],
    ]),
  },
  {
    name: 'registry-credentials',
    namespace: 'nginx-mesh',
    input: {
      registryServer: 'private.example/nsm',
      registryUsername: 'robot',
      registryPassword: 'not-in-the-config',
    },
  },
];

describe('mesh configuration', () => {
  it.each(cases)('$name', ({ name, namespace, input, files }) => {
    const outcome = buildMeshConfig(
      { ...defaultDeployInput('0.1.0'), ...input },
      { namespace, files: files ?? new Map() },
    );
    if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
    const json = renderMeshConfigJson(outcome.config);
    expect(json).not.toContain('not-in-the-config');
    expect(json).not.toContain('PRIVATE KEY');
    expectGolden(`mesh-config/${name}.meshconfig.json`, json);
    expectGolden(
      `mesh-config/${name}.resources.json`,
      `${JSON.stringify(
        {
          warnings: outcome.warnings,
          secrets: Object.keys(outcome.secrets),
          meshConfig: buildMeshConfigResource(outcome.config, namespace),
          meshConfigClass: buildMeshConfigClassResource(namespace),
        },
        null,
        2,
      )}\n`,
    );
  });
});
