// inject takes images and mesh-wide settings from the deployed mesh's configuration.
import { settingsFromMeshConfig } from '../../src/commands/inject/mesh-settings';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import type { KubeAccess, KubeTarget } from '../../src/runtime/kube/access';
import { runCli } from '../support/cli';
import { readOnlyKube } from '../support/fakes';

const defaults: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 'default/sidecar',
  initImage: 'default/init',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

const meshConfig = {
  mtls: { mode: 'strict' },
  namespace: 'mesh-b',
  registry: {
    sidecarImage: 'registry.example:5000/nsm/nginx-mesh-sidecar:3.1.0',
    sidecarInitImage: 'registry.example:5000/nsm/nginx-mesh-init:3.1.0',
    imagePullPolicy: 'Always',
    registryKeyName: 'nginx-mesh-registry-key',
  },
  enableUDP: false,
};

describe('settingsFromMeshConfig', () => {
  it('takes images, pull policy, credentials, mTLS mode and namespace from the configuration', () => {
    expect(settingsFromMeshConfig(JSON.stringify(meshConfig), defaults)).toEqual({
      ...defaults,
      meshNamespace: 'mesh-b',
      sidecarImage: 'registry.example:5000/nsm/nginx-mesh-sidecar:3.1.0',
      initImage: 'registry.example:5000/nsm/nginx-mesh-init:3.1.0',
      imagePullPolicy: 'Always',
      registryKeyName: 'nginx-mesh-registry-key',
      mtlsMode: 'strict',
    });
  });

  it('keeps defaults for fields the configuration leaves out', () => {
    expect(settingsFromMeshConfig('{}', defaults)).toEqual(defaults);
  });

  it('names an invalid field', () => {
    expect(() => settingsFromMeshConfig('{"mtls":{"mode":"sometimes"}}', defaults)).toThrow(
      'mesh configuration: invalid mtls.mode "sometimes"',
    );
    expect(() => settingsFromMeshConfig('[', defaults)).toThrow(
      /^mesh configuration: meshconfig.json is not JSON/,
    );
  });
});

describe('inject with a reachable mesh', () => {
  it('reads ConfigMap meshconfig from the -n namespace and says so', async () => {
    const calls: { target: KubeTarget; path: string }[] = [];
    const kube: KubeAccess = readOnlyKube((target, path) => {
      calls.push({ target, path });
      return Promise.resolve({
        status: 200,
        body: JSON.stringify({ data: { 'meshconfig.json': JSON.stringify(meshConfig) } }),
      });
    });
    const pod =
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}]}}';
    const result = await runCli(['inject', '-n', 'mesh-b', '-t', '2s'], {
      kube,
      input: {
        readFile: () => Promise.reject(new Error('unused')),
        readStdin: () => Promise.resolve(pod),
      },
    });
    expect(result.code).toBe(0);
    expect(calls).toEqual([
      {
        target: { kubeconfig: '/home/user/.kube/config', timeoutMs: 2000 },
        path: '/api/v1/namespaces/mesh-b/configmaps/meshconfig',
      },
    ]);
    expect(result.stderr.split('\n')[0]).toBe('using the mesh configuration in mesh-b/meshconfig');
    expect(result.stdout).toContain(
      '"image": "registry.example:5000/nsm/nginx-mesh-sidecar:3.1.0"',
    );
    expect(result.stdout).toContain('"imagePullSecrets": [');
  });

  it('falls back to the defaults and names why when the ConfigMap is missing', async () => {
    const kube: KubeAccess = readOnlyKube(() => Promise.resolve({ status: 404, body: '{}' }));
    const pod =
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}]}}';
    const result = await runCli(['inject'], {
      kube,
      input: {
        readFile: () => Promise.reject(new Error('unused')),
        readStdin: () => Promise.resolve(pod),
      },
    });
    expect(result.stderr.split('\n')[0]).toBe(
      'no mesh configuration (no ConfigMap meshconfig in namespace "nginx-mesh"): using localhost/nginx-mesh-sidecar:1.2.3 and localhost/nginx-mesh-init:1.2.3',
    );
  });
});
