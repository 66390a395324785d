// status and config against a hand-written API: what they ask for and what they print.
import { runCli } from '../support/cli';
import { kubeAnswering } from '../support/fake-kube';

const deploymentPath = '/apis/apps/v1/namespaces/nginx-mesh/deployments/nginx-mesh-controller';
const configMapPath = '/api/v1/namespaces/nginx-mesh/configmaps/meshconfig';

describe('status', () => {
  it('reports a ready controller', async () => {
    const { kube, paths } = kubeAnswering({
      [deploymentPath]: { status: 200, body: '{"status":{"readyReplicas":1}}' },
    });
    const result = await runCli(['status'], { kube });
    expect(paths).toEqual([deploymentPath]);
    expect(result).toEqual({
      code: 0,
      stdout:
        'Checking NGINX Service Mesh setup....\nConnection to NGINX Service Mesh was successful.\n',
      stderr: '',
    });
  });

  it('fails when the controller has no ready replica', async () => {
    const { kube } = kubeAnswering({ [deploymentPath]: { status: 200, body: '{"status":{}}' } });
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: mesh controller unavailable\nCheck the nginx-mesh-controller pods and their logs in namespace "nginx-mesh".\n',
    );
  });

  it('passes on the API error with a hint when there is no mesh', async () => {
    const { kube } = kubeAnswering({
      [deploymentPath]: {
        status: 404,
        body: '{"message":"deployments.apps \\"nginx-mesh-controller\\" not found"}',
      },
    });
    const result = await runCli(['status'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: deployments.apps "nginx-mesh-controller" not found\nIs NGINX Service Mesh deployed in namespace "nginx-mesh"? Use -n to name another namespace.\n',
    );
  });
});

describe('config', () => {
  const stored = '{"mtls":{"mode":"permissive","caKeyType":"ec-p256"},"accessControlMode":"allow"}';
  const configMap = { status: 200, body: JSON.stringify({ data: { 'meshconfig.json': stored } }) };

  it('prints the stored configuration as indented JSON, keys in stored order', async () => {
    const { kube } = kubeAnswering({ [configMapPath]: configMap });
    const result = await runCli(['config'], { kube });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${JSON.stringify(JSON.parse(stored), null, 2)}\n`);
  });

  it('prints YAML with -o yaml', async () => {
    const { kube } = kubeAnswering({ [configMapPath]: configMap });
    const result = await runCli(['config', '-o', 'yaml'], { kube });
    expect(result.stdout).toBe(
      'mtls:\n  mode: permissive\n  caKeyType: ec-p256\naccessControlMode: allow\n',
    );
  });

  it('fails with NGINX Service Mesh wording when the ConfigMap is missing', async () => {
    const { kube } = kubeAnswering({});
    const result = await runCli(['config'], { kube });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: unable to get mesh config: error getting mesh ConfigMap: not found\n',
    );
  });
});
