// The single executable, alone in an empty directory: no node_modules, no sources beside it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { runCli } from '../support/cli';
import { isolateBinary } from '../support/binary';
import type { IsolatedBinary } from '../support/binary';

let binary: IsolatedBinary;
let home: string;

beforeAll(() => {
  binary = isolateBinary();
  home = join(binary.dir, 'home');
  mkdirSync(home);
});

afterAll(() => binary.remove());

function run(args: string[], env: Record<string, string> = {}) {
  return execa(binary.path, args, {
    cwd: binary.dir,
    env: { PATH: '/usr/bin:/bin', HOME: home, ...env },
    extendEnv: false,
    reject: false,
    timeout: 20_000,
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the built executable', () => {
  it('prints the same help as the in-process CLI', async () => {
    const result = await run(['--help']);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
    const inProcess = await runCli(['--help'], { homeDir: home });
    expect(result.stdout + '\n').toBe(inProcess.stdout);
  });

  it('reports its package version and build commit', async () => {
    const { version } = JSON.parse(
      readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'),
    ) as {
      version: string;
    };
    let commit = 'local';
    try {
      commit = execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], {
        cwd: __dirname,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString()
        .trim();
    } catch {
      // Built outside a git checkout: the commit is "local".
    }
    const result = await run(['version']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`nginx-meshctl - v${version}+${commit}`);
    expect(result.stderr).toContain(`Your kubectl config file "${home}/.kube/config" is valid`);
    expect(result.stderr).toContain('not found');
  });

  it('loads the Kubernetes client on demand and reports an unreachable API server', async () => {
    const port = await closedPort();
    const kubeconfig = join(binary.dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: c\n  cluster:\n    server: https://127.0.0.1:${port}\n    insecure-skip-tls-verify: true`,
        'users:',
        '- name: u\n  user:\n    token: t',
        'contexts:',
        '- name: x\n  context:\n    cluster: c\n    user: u',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const result = await run(['version', '-t', '2s'], { KUBECONFIG: kubeconfig });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(`Your kubectl config file "${kubeconfig}" is valid`);
    expect(result.stderr).toMatch(/Error message: .*ECONNREFUSED/);
  });

  it('exits 1 on an unknown command with NGINX Service Mesh wording', async () => {
    const result = await run(['frobnicate']);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'Error: unknown command "frobnicate" for "nginx-meshctl"\nRun \'nginx-meshctl --help\' for usage.',
    );
  });

  it('exits 2 on an invalid flag value', async () => {
    const result = await run(['version', '--timeout', 'later']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('invalid argument "later" for "-t, --timeout" flag');
  });

  it('completes commands in a real bash', async () => {
    const script = [
      `source <("${binary.path}" completion bash)`,
      'COMP_WORDS=(nginx-meshctl ver); COMP_CWORD=1; _nginx_meshctl_complete; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(nginx-meshctl version --na); COMP_CWORD=2; _nginx_meshctl_complete; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(nginx-meshctl completion ""); COMP_CWORD=2; _nginx_meshctl_complete; echo "${COMPREPLY[*]}"',
    ].join('\n');
    const result = await execa('bash', ['-c', script], {
      env: { PATH: `${binary.dir}:/usr/bin:/bin`, HOME: home },
      extendEnv: false,
      reject: false,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('version\n--namespace\nbash fish zsh');
  });
});
