// The built executable's inject against the test cluster: images and settings come from the
// mesh configuration stored in the cluster.
import { execa } from 'execa';
import { join } from 'node:path';
import type { KubeRest } from './harness/kube-rest';
import { createNamespace, deleteNamespace, testKubeconfig, testRest } from './support/kube';

const namespace = 'inject-mesh';
const binary = join(__dirname, '..', '..', 'dist', 'nginx-meshctl');
let rest: KubeRest;

beforeAll(async () => {
  rest = await testRest();
  await createNamespace(rest, namespace);
  await rest.request('POST', `/api/v1/namespaces/${namespace}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'meshconfig' },
    data: {
      'meshconfig.json': JSON.stringify({
        namespace,
        mtls: { mode: 'permissive' },
        registry: {
          sidecarImage: 'registry.example/nsm/nginx-mesh-sidecar:9.9.9',
          sidecarInitImage: 'registry.example/nsm/nginx-mesh-init:9.9.9',
          imagePullPolicy: 'Always',
        },
      }),
    },
  });
});

afterAll(async () => {
  await deleteNamespace(rest, namespace);
  rest.close();
});

it('injects with the images of the mesh configuration in the cluster', async () => {
  const pod = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'app', image: 'example/app:1' }] },
  });
  const result = await execa(
    binary,
    ['inject', '-n', namespace, '--kubeconfig', testKubeconfig()],
    {
      input: pod,
      reject: false,
    },
  );
  expect(result.exitCode).toBe(0);
  expect(result.stderr.split('\n')[0]).toBe(
    `using the mesh configuration in ${namespace}/meshconfig`,
  );
  const injected = JSON.parse(result.stdout) as {
    spec: { initContainers: { name: string; image: string; imagePullPolicy: string }[] };
  };
  expect(injected.spec.initContainers.map((c) => [c.name, c.image, c.imagePullPolicy])).toEqual([
    ['nginx-mesh-init', 'registry.example/nsm/nginx-mesh-init:9.9.9', 'Always'],
    ['nginx-mesh-sidecar', 'registry.example/nsm/nginx-mesh-sidecar:9.9.9', 'Always'],
  ]);
});

it('prints the stored mesh configuration with nginx-meshctl config', async () => {
  const result = await execa(
    binary,
    ['config', '-n', namespace, '--kubeconfig', testKubeconfig()],
    {
      reject: false,
    },
  );
  expect(result.exitCode).toBe(0);
  const printed = JSON.parse(result.stdout) as {
    namespace: string;
    registry: { sidecarImage: string };
  };
  expect(printed.namespace).toBe(namespace);
  expect(printed.registry.sidecarImage).toBe('registry.example/nsm/nginx-mesh-sidecar:9.9.9');
});
