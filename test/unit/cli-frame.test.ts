import type { KubeAccess, KubeTarget } from '../../src/runtime/kube/access';
import { runCli } from '../support/cli';
import { createBufferedIo, readOnlyKube } from '../support/fakes';

function recordingKube(response: { status: number; body: string }): {
  kube: KubeAccess;
  calls: { target: KubeTarget; path: string }[];
} {
  const calls: { target: KubeTarget; path: string }[] = [];
  return {
    calls,
    kube: readOnlyKube((target, path) => {
      calls.push({ target, path });
      return Promise.resolve(response);
    }),
  };
}

describe('root command', () => {
  it('prints help to stdout and exits 0 when run without a command', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage:\n  nginx-meshctl [flags]\n  nginx-meshctl [command]\n');
    expect(result.stderr).toBe('');
  });

  it('lists only working commands, sorted, and hides run', async () => {
    const { stdout } = await runCli(['--help']);
    const commands = stdout
      .split('Available Commands:\n')[1]
      ?.split('\n\n')[0]
      ?.split('\n')
      .map((line) => line.trim().split(/\s+/)[0]);
    expect(commands).toEqual([
      'completion',
      'config',
      'deploy',
      'help',
      'inject',
      'remove',
      'services',
      'status',
      'supportpkg',
      'top',
      'upgrade',
      'version',
    ]);
  });

  it('rejects an unknown command with exit code 1 and cobra wording', async () => {
    const result = await runCli(['frobnicate']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'Error: unknown command "frobnicate" for "nginx-meshctl"\nRun \'nginx-meshctl --help\' for usage.\n',
    );
  });

  it('suggests the closest command for a typo', async () => {
    const result = await runCli(['verison']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Error: unknown command "verison" for "nginx-meshctl"\n\nDid you mean this?\n\tversion\n\nRun \'nginx-meshctl --help\' for usage.\n',
    );
  });

  it('rejects an unknown subcommand of a group', async () => {
    const result = await runCli(['completion', 'tcsh']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown command "tcsh" for "nginx-meshctl completion"');
  });

  it('treats an unknown flag as a usage error (exit 2) naming the flag and the help to read', async () => {
    const result = await runCli(['version', '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "Error: unknown flag: --bogus\nRun 'nginx-meshctl version --help' for usage.\n",
    );
  });

  it('names an unknown shorthand flag as pflag does', async () => {
    const result = await runCli(['version', '-z']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Error: unknown shorthand flag: 'z' in -z\n");
  });

  it('rejects an invalid duration with the value and the reason', async () => {
    const result = await runCli(['version', '--timeout', 'soon']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'Error: invalid argument "soon" for "-t, --timeout" flag: time: invalid duration "soon"\nRun \'nginx-meshctl version --help\' for usage.\n',
    );
  });

  it('reports a flag without its value', async () => {
    const result = await runCli(['version', '--namespace']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Error: flag needs an argument: --namespace\n');
  });

  it('rejects arguments to a command that takes none', async () => {
    const result = await runCli(['version', 'extra']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"nginx-meshctl version" takes no arguments, got "extra"');
  });

  it('colours the error prefix only when colour is enabled', async () => {
    const coloured = createBufferedIo({ tty: true, color: true });
    await runCli(['nope'], { io: coloured });
    expect(coloured.stderr()).toContain('\u001b[31mError:\u001b[39m');
    const plain = await runCli(['nope']);
    expect(plain.stderr).not.toContain('\u001b[');
  });
});

describe('global flags', () => {
  it('default the kubeconfig to $KUBECONFIG, else ~/.kube/config', async () => {
    const fromHome = await runCli(['help', 'version']);
    expect(fromHome.stdout).toContain('(default "/home/user/.kube/config")');
    const fromEnv = await runCli(['help', 'version'], { env: { KUBECONFIG: '/etc/k/config' } });
    expect(fromEnv.stdout).toContain('(default "/etc/k/config")');
  });

  it('are accepted before and after the subcommand and reach the request', async () => {
    const { kube, calls } = recordingKube({ status: 200, body: '{}' });
    await runCli(['-n', 'mesh-a', 'version', '-t', '250ms', '--kubeconfig=/tmp/kc'], { kube });
    expect(calls).toEqual([
      {
        target: { kubeconfig: '/tmp/kc', timeoutMs: 250 },
        path: '/api/v1/namespaces/mesh-a/services/nginx-mesh-controller:8082/proxy/version',
      },
    ]);
  });
});

describe('version', () => {
  it('prints the client version with its commit, then each component sorted by name', async () => {
    const { kube } = recordingKube({
      status: 200,
      body: '{"nginx-mesh-sidecar":["1.2.3","1.2.2"],"nginx-mesh-controller":["1.2.3"]}',
    });
    const result = await runCli(['version'], { kube });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      'nginx-meshctl - v1.2.3+abc1234\nnginx-mesh-controller - v1.2.3\nnginx-mesh-sidecar - v1.2.3, v1.2.2\n',
    );
    expect(result.stderr).toBe('');
  });

  it('says the mesh is unreachable on stderr and still exits 0', async () => {
    const result = await runCli(['version', '-n', 'elsewhere']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('nginx-meshctl - v1.2.3+abc1234\n');
    expect(result.stderr).toBe(
      [
        'Unable to get versions for remaining components, make sure:',
        '- NGINX Service Mesh is installed in "elsewhere" namespace',
        '- Your kubectl config file "/home/user/.kube/config" is valid',
        '- Your Kubernetes context is set to a valid and running cluster, see "kubectl config get-contexts"',
        'Error message: dial tcp 127.0.0.1:1: connect: connection refused',
        '',
      ].join('\n'),
    );
  });

  it('reports a non-200 answer from the controller with its status', async () => {
    const { kube } = recordingKube({ status: 503, body: 'no endpoints available' });
    const result = await runCli(['version'], { kube });
    expect(result.stderr).toContain('Error message: bad status code: 503\n');
  });

  it('reports a malformed answer instead of printing garbage', async () => {
    const { kube } = recordingKube({ status: 200, body: '{"nginx-mesh-controller":[1]}' });
    const result = await runCli(['version'], { kube });
    expect(result.stdout).toBe('nginx-meshctl - v1.2.3+abc1234\n');
    expect(result.stderr).toContain(
      'Error message: error decoding API response: versions of "nginx-mesh-controller" are not strings',
    );
  });
});

describe('help command', () => {
  it('prints the help of a nested command', async () => {
    const result = await runCli(['help', 'completion', 'bash']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage:\n  nginx-meshctl completion bash [flags]\n');
  });

  it('answers an unknown topic with the root usage on stderr and exit 1', async () => {
    const result = await runCli(['help', 'nope']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^Unknown help topic \[`nope`\]\nUsage:\n {2}nginx-meshctl \[flags\]/,
    );
  });

  it('gives the same text for "help x" and "x --help"', async () => {
    const viaHelp = await runCli(['help', 'version']);
    const viaFlag = await runCli(['version', '--help']);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stdout).toBe(viaHelp.stdout);
  });
});

describe('completion', () => {
  it('offers subcommands, never hidden ones', async () => {
    const result = await runCli(['__complete', '']);
    expect(result.stdout).toBe(
      'completion\nconfig\ndeploy\nhelp\ninject\nremove\nservices\nstatus\nsupportpkg\ntop\nupgrade\nversion\n',
    );
  });

  it('completes a prefix', async () => {
    expect((await runCli(['__complete', 'v'])).stdout).toBe('version\n');
  });

  it('offers local and global flags after a dash, without hidden ones', async () => {
    const result = await runCli(['__complete', 'version', '--']);
    expect(result.stdout).toBe('--help\n--kubeconfig\n--namespace\n--timeout\n');
  });

  it('descends into command groups', async () => {
    expect((await runCli(['__complete', 'completion', ''])).stdout).toBe('bash\nfish\nzsh\n');
  });

  it('offers nothing for a flag value without known choices', async () => {
    expect((await runCli(['__complete', '-n', ''])).stdout).toBe('');
  });

  it('offers the allowed values of an enum flag', async () => {
    const result = await runCli(['__complete', 'run', '--log-level', '']);
    expect(result.stdout).toBe('debug\nerror\ninfo\nwarn\n');
  });
});

describe('run', () => {
  it('requires a role', async () => {
    const result = await runCli(['run']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Error: required flag(s) "role" not set\n');
  });

  it('names the roles it has when asked for another', async () => {
    const role = {
      name: 'probe',
      description: 'test role',
      start: () => Promise.reject(new Error('not started in this test')),
    };
    const result = await runCli(['run', '--role', 'ghost'], { roles: [role] });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Error: unknown role "ghost": expected one of: probe\n');
  });

  it('rejects a malformed probe address before starting anything', async () => {
    const role = {
      name: 'probe',
      description: 'test role',
      start: () => Promise.reject(new Error('must not start')),
    };
    const result = await runCli(
      ['run', '--role', 'probe', '--health-probe-bind-address', 'nowhere'],
      {
        roles: [role],
      },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      '"--health-probe-bind-address" flag: expected host:port or :port',
    );
  });

  it('gives each role its own default for a flag two roles declare', async () => {
    const seen: string[] = [];
    const roleWith = (name: string, address: string) => ({
      name,
      description: 'test role',
      probes: false,
      flags: [
        { long: 'api-bind-address', type: 'string' as const, usage: 'API', defaultValue: address },
      ],
      start: (context: { options: { string(flag: string): string } }) => {
        seen.push(`${name} ${context.options.string('api-bind-address')}`);
        return Promise.resolve({
          readiness: () => ({ ready: true as const }),
          stop: () => Promise.resolve(),
          done: Promise.resolve(),
        });
      },
    });
    const roles = [roleWith('alpha', ':8080'), roleWith('beta', ':8443')];
    expect((await runCli(['run', '--role', 'beta'], { roles })).code).toBe(0);
    expect((await runCli(['run', '--role', 'alpha'], { roles })).code).toBe(0);
    expect(
      (await runCli(['run', '--role', 'beta', '--api-bind-address', ':9'], { roles })).code,
    ).toBe(0);
    expect(seen).toEqual(['beta :8443', 'alpha :8080', 'beta :9']);
  });

  it('rejects a log level outside the list', async () => {
    const result = await runCli(['run', '--role', 'x', '--log-level', 'loud']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'invalid argument "loud" for "--log-level" flag: must be one of: debug, info, warn, error',
    );
  });
});

describe('bool flags', () => {
  it('take =true and =false as pflag does', async () => {
    const on = await runCli([
      'deploy',
      '--dry-run',
      '--pull-always=true',
      '--cleanup-on-error=false',
    ]);
    expect(on.code).toBe(0);
    expect(on.stdout).toContain('imagePullPolicy: Always');
    const off = await runCli(['deploy', '--dry-run', '--pull-always=false']);
    expect(off.stdout).not.toContain('imagePullPolicy: Always');
  });

  it('reject any other value', async () => {
    const result = await runCli(['deploy', '--dry-run', '--cleanup-on-error=maybe']);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      'Error: invalid argument "maybe" for "--cleanup-on-error" flag: strconv.ParseBool: parsing "maybe": invalid syntax',
    );
  });
});
