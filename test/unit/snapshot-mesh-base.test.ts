// The settings a snapshot starts from, read from ConfigMap meshconfig as deploy writes it.
import { buildMeshConfigMap } from '../../src/manifests/mesh-config/render';
import { buildMeshConfig } from '../../src/manifests/mesh-config/model';
import { defaultDeployInput } from '../../src/manifests/mesh-config/deploy-input';
import {
  DEFAULT_SNAPSHOT_MESH,
  meshBaseFromConfigMap,
} from '../../src/manifests/snapshot/mesh-base';

function storedConfigMap(overrides: Record<string, unknown>): object {
  const outcome = buildMeshConfig(
    { ...defaultDeployInput('1.0.0'), ...overrides },
    { namespace: 'nginx-mesh', files: new Map() },
  );
  if ('problems' in outcome) throw new Error(outcome.problems.join('; '));
  return buildMeshConfigMap(outcome.config, 'nginx-mesh');
}

describe('meshBaseFromConfigMap', () => {
  it('reads what deploy stored, with least_time turned into its open-source fallback', () => {
    const { mesh, problems } = meshBaseFromConfigMap(
      storedConfigMap({
        mtlsMode: 'strict',
        accessControlMode: 'deny',
        nginxLbMethod: 'least_time',
        mtlsTrustDomain: 'mesh.example',
        nginxErrorLogLevel: 'debug',
        nginxLogFormat: 'json',
        clientMaxBodySize: '64k',
      }),
    );
    expect(problems).toEqual([]);
    expect(mesh).toEqual({
      mtlsMode: 'strict',
      accessControlMode: 'deny',
      lbMethod: 'least_conn',
      clientMaxBodySize: '64k',
      errorLogLevel: 'debug',
      logFormat: 'json',
      trustDomain: 'mesh.example',
      transparent: false,
    });
  });

  it('turns transparent on when remove set the key', () => {
    const configMap = storedConfigMap({}) as { data: Record<string, string> };
    const patched = { ...configMap, data: { ...configMap.data, transparent: 'true' } };
    expect(meshBaseFromConfigMap(patched).mesh.transparent).toBe(true);
  });

  it('falls back to the defaults, saying why, for a missing or broken ConfigMap', () => {
    expect(meshBaseFromConfigMap(undefined)).toEqual({
      mesh: DEFAULT_SNAPSHOT_MESH,
      problems: ['ConfigMap meshconfig has no meshconfig.json; using the defaults'],
    });
    const broken = meshBaseFromConfigMap({ data: { 'meshconfig.json': '{not json' } });
    expect(broken.mesh).toEqual(DEFAULT_SNAPSHOT_MESH);
    expect(broken.problems).toEqual([
      'ConfigMap meshconfig: meshconfig.json is not JSON; using the defaults',
    ]);
  });

  it('ignores values outside their enums', () => {
    const text = JSON.stringify({ mtls: { mode: 'loose' }, nginxLogFormat: 'xml' });
    const { mesh } = meshBaseFromConfigMap({ data: { 'meshconfig.json': text } });
    expect(mesh.mtlsMode).toBe('permissive');
    expect(mesh.logFormat).toBe('default');
  });
});
