// deploy removes what it applied when a step fails, unless --cleanup-on-error=false: in-process,
// against an API server that answers every read with 404 and refuses every write.
import { runCli } from '../support/cli';
import { readOnlyKube } from '../support/fakes';

const NOT_FOUND = { status: 404, body: JSON.stringify({ kind: 'Status', code: 404 }) };

function deploy(...flags: string[]): ReturnType<typeof runCli> {
  return runCli(['deploy', ...flags], { kube: readOnlyKube(() => Promise.resolve(NOT_FOUND)) });
}

describe('deploy --cleanup-on-error', () => {
  it('cleans up after a failed step by default', async () => {
    const result = await deploy();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Cleaning up NGINX Service Mesh resources...\n');
    expect(result.stderr).toContain('All NGINX Service Mesh resources have been deleted.\n');
  });

  it('leaves what was applied with --cleanup-on-error=false, and says how to remove it', async () => {
    const result = await deploy('--cleanup-on-error=false');
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain('Cleaning up');
    expect(result.stderr).toContain(
      'Run "nginx-meshctl remove" to delete any lingering NGINX Service Mesh resources, then deploy again.',
    );
  });
});
