// The redirect rule builder, and the init role driven by a fake netfilter.
import {
  buildRedirectModel,
  buildRedirectRules,
  countRules,
  hasRedirectChains,
  InvalidRedirectOptionError,
  parseInstalledHooks,
  printRestoreInput,
  UDP_NOT_INTERCEPTED_WARNING,
} from '../../src/render/iptables-rules';
import { createInitRole } from '../../src/runtime/init/init-role';
import type { CommandResult, Ipv6State, Netfilter } from '../../src/runtime/init/netfilter';
import { CommandStartError } from '../../src/runtime/init/netfilter';
import type { RoleDefinition } from '../../src/runtime/role/role';
import { runCli } from '../support/cli';

const none = { ignoreIncomingPorts: [], ignoreOutgoingPorts: [] };

function ruleLines(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('-A '));
}

describe('buildRedirectRules', () => {
  it('always leaves the metrics port inbound and DNS outbound alone', () => {
    const { ipv4 } = buildRedirectRules(none);
    expect(ipv4).toContain('-A MESH_INBOUND -p tcp -m multiport --dports 8887 -j RETURN\n');
    expect(ipv4).toContain('-A MESH_OUTPUT -p tcp -m multiport --dports 53 -j RETURN\n');
  });

  it('sends the proxy’s own calls to its pod inbound, exempts its others, then lo and loopback', () => {
    const output = ruleLines(buildRedirectRules(none).ipv4).filter((line) =>
      line.startsWith('-A MESH_OUTPUT '),
    );
    expect(output).toEqual([
      '-A MESH_OUTPUT ! -s 127.0.0.0/8 ! -d 127.0.0.0/8 -o lo -m owner --uid-owner 2102 -j MESH_INBOUND',
      '-A MESH_OUTPUT -m owner --uid-owner 2102 -j RETURN',
      '-A MESH_OUTPUT -o lo -j RETURN',
      '-A MESH_OUTPUT -d 127.0.0.0/8 -j RETURN',
      '-A MESH_OUTPUT -p tcp -m multiport --dports 53 -j RETURN',
      '-A MESH_OUTPUT -p tcp -j MESH_REDIRECT',
    ]);
  });

  it('redirects inbound to 8901 and outbound to 8900', () => {
    const { ipv4 } = buildRedirectRules(none);
    expect(ipv4).toContain('-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 8901\n');
    expect(ipv4).toContain('-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 8900\n');
    expect(ipv4).toContain('-A PREROUTING -p tcp -j MESH_INBOUND\n');
    expect(ipv4).toContain('-A OUTPUT -p tcp -j MESH_OUTPUT\n');
  });

  it('writes the same rules for IPv6 with the IPv6 loopback', () => {
    const { ipv4, ipv6 } = buildRedirectRules(none);
    expect(ipv6).toContain('-A MESH_OUTPUT -d ::1/128 -j RETURN\n');
    expect(ipv6).not.toContain('127.0.0.0/8');
    // the sidecar's own calls to its pod go inbound over IPv4 only
    const ownCalls = (text: string) =>
      text.split('\n').filter((line) => line.includes('-o lo -m owner'));
    expect(ownCalls(ipv6)).toEqual([]);
    expect(ipv6.replaceAll('::1/128', '127.0.0.0/8')).toBe(
      ipv4
        .split('\n')
        .filter((line) => !line.includes('-o lo -m owner'))
        .join('\n'),
    );
  });

  it('sorts and de-duplicates ports, whatever order they come in', () => {
    const first = buildRedirectRules({
      ignoreIncomingPorts: [8887, 5432, 80, 5432],
      ignoreOutgoingPorts: [443, 53, 443],
    });
    const second = buildRedirectRules({
      ignoreIncomingPorts: [80, 5432, 8887],
      ignoreOutgoingPorts: [53, 443],
    });
    expect(first).toEqual(second);
    expect(first.ipv4).toContain('--dports 80,5432,8887 -j RETURN');
    expect(first.ipv4).toContain('--dports 53,443 -j RETURN');
  });

  it('splits ignore lists into rules of at most 15 ports', () => {
    const ports = Array.from({ length: 31 }, (_, index) => 1000 + index);
    const { ipv4 } = buildRedirectRules({ ignoreIncomingPorts: ports, ignoreOutgoingPorts: [] });
    const returns = ruleLines(ipv4).filter((line) => line.startsWith('-A MESH_INBOUND -p tcp -m'));
    expect(
      returns.map((line) => (/--dports (\S+)/.exec(line)?.[1] ?? '').split(',').length),
    ).toEqual([15, 15, 2]);
    expect(returns[2]).toContain('--dports 1030,8887 ');
  });

  it.each([
    ['ignoreIncomingPorts', 0, 'invalid port "0" in --ignore-incoming-ports: expected 1-65535'],
    [
      'ignoreIncomingPorts',
      70000,
      'invalid port "70000" in --ignore-incoming-ports: expected 1-65535',
    ],
    ['ignoreOutgoingPorts', -1, 'invalid port "-1" in --ignore-outgoing-ports: expected 1-65535'],
    ['ignoreOutgoingPorts', 1.5, 'invalid port "1.5" in --ignore-outgoing-ports: expected 1-65535'],
  ] as const)('rejects %s containing %d', (field, port, message) => {
    const build = (): unknown => buildRedirectRules({ ...none, [field]: [80, port] });
    expect(build).toThrow(InvalidRedirectOptionError);
    expect(build).toThrow(message);
  });

  it('accepts the port range edges', () => {
    expect(() =>
      buildRedirectRules({ ignoreIncomingPorts: [1, 65535], ignoreOutgoingPorts: [1, 65535] }),
    ).not.toThrow();
  });

  it('warns that UDP is not intercepted when asked to enable it, and changes no rule', () => {
    const withUdp = buildRedirectRules({ ...none, enableUdp: true });
    expect(withUdp.warnings).toEqual([UDP_NOT_INTERCEPTED_WARNING]);
    expect(withUdp.ipv4).toBe(buildRedirectRules(none).ipv4);
    expect(buildRedirectRules(none).warnings).toEqual([]);
  });
});

describe('installed state', () => {
  const model = buildRedirectModel(none);
  const saved = [
    '# Generated by iptables-save v1.8.9 (nf_tables)',
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':MESH_INBOUND - [0:0]',
    ':MESH_IN_REDIRECT - [0:0]',
    ':MESH_OUTPUT - [0:0]',
    ':MESH_REDIRECT - [0:0]',
    ':KUBE-SERVICES - [0:0]',
    '-A PREROUTING -p tcp -j MESH_INBOUND',
    '-A PREROUTING -j KUBE-SERVICES',
    '-A OUTPUT -j MESH_OUTPUT',
    'COMMIT',
  ].join('\n');

  it('finds only jumps that match the redirect exactly', () => {
    expect(parseInstalledHooks(saved, model.ipv4)).toEqual(['PREROUTING']);
    expect(parseInstalledHooks('', model.ipv4)).toEqual([]);
  });

  it('prints only the missing jumps', () => {
    const input = printRestoreInput(model.ipv4, ['PREROUTING']);
    expect(input).not.toContain('-A PREROUTING');
    expect(input).toContain('-A OUTPUT -p tcp -j MESH_OUTPUT\n');
    expect(countRules(input)).toBe(countRules(printRestoreInput(model.ipv4)) - 1);
  });

  it('tells whether every chain of the redirect is declared', () => {
    expect(hasRedirectChains(saved)).toBe(true);
    expect(hasRedirectChains(saved.replace(':MESH_REDIRECT - [0:0]\n', ''))).toBe(false);
  });
});

interface FakeNetfilter extends Netfilter {
  readonly calls: string[];
  readonly restored: Record<string, string>;
}

/** A namespace whose nat tables the fake keeps as iptables-save text. */
function fakeNetfilter(
  options: {
    ipv6?: Ipv6State;
    saved?: Record<string, string>;
    fail?: Record<string, CommandResult | 'ENOENT'>;
  } = {},
): FakeNetfilter {
  const calls: string[] = [];
  const restored: Record<string, string> = {};
  return {
    calls,
    restored,
    ipv6State: () => Promise.resolve(options.ipv6 ?? 'enabled'),
    run: (file, args, input) => {
      calls.push([file, ...args].join(' '));
      const failure = options.fail?.[file];
      if (failure === 'ENOENT') {
        return Promise.reject(new CommandStartError(file, 'ENOENT', { cause: undefined }));
      }
      if (failure !== undefined) return Promise.resolve(failure);
      if (file.endsWith('-restore')) restored[file] = input ?? '';
      const stdout = file.endsWith('-save') ? (options.saved?.[file] ?? '*nat\nCOMMIT\n') : '';
      return Promise.resolve({ exitCode: 0, stdout, stderr: '' });
    },
  };
}

function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function runInit(netfilter: Netfilter, args: string[] = [], roles: RoleDefinition[] = []) {
  return runCli(['run', '--role', 'init', ...args], {
    roles: [createInitRole(netfilter), ...roles],
  });
}

describe('init role', () => {
  it('applies IPv4 then IPv6 and logs one line per table with the rule counts', async () => {
    const netfilter = fakeNetfilter();
    const result = await runInit(netfilter, ['--ignore-incoming-ports', '8887,5432']);
    expect(result.code).toBe(0);
    expect(netfilter.calls).toEqual([
      'iptables-save -t nat',
      'iptables-restore --noflush',
      'ip6tables-save -t nat',
      'ip6tables-restore --noflush',
    ]);
    expect(netfilter.restored['iptables-restore']).toContain('--dports 5432,8887 -j RETURN');
    const applied = logLines(result.stderr).filter((line) => line.msg === 'applied redirect rules');
    expect(applied).toEqual([
      expect.objectContaining({ level: 'info', role: 'init', family: 'ipv4', table: 'nat' }),
      expect.objectContaining({ family: 'ipv6', chains: 4, rules: 11, jumpsAdded: 2 }),
    ]);
    expect(result.stdout).toBe('');
  });

  it('adds no jump that is already installed', async () => {
    const saved =
      ':MESH_INBOUND - [0:0]\n-A PREROUTING -p tcp -j MESH_INBOUND\n-A OUTPUT -p tcp -j MESH_OUTPUT\n';
    const netfilter = fakeNetfilter({ saved: { 'iptables-save': saved } });
    expect((await runInit(netfilter)).code).toBe(0);
    expect(netfilter.restored['iptables-restore']).not.toMatch(/^-A (PREROUTING|OUTPUT) /m);
    expect(netfilter.restored['ip6tables-restore']).toMatch(/^-A PREROUTING /m);
  });

  it('serves no health probes', async () => {
    const result = await runInit(fakeNetfilter());
    const messages = logLines(result.stderr).map((line) => line.msg);
    expect(messages).not.toContain('health probes listening');
    expect(messages).toContain('finished');
  });

  it('prints both families on --dry-run and runs no tool', async () => {
    const netfilter = fakeNetfilter();
    const result = await runInit(netfilter, ['--dry-run', '--ignore-outgoing-ports', '6379']);
    expect(result.code).toBe(0);
    expect(netfilter.calls).toEqual([]);
    expect(result.stdout).toMatch(/^# IPv4: iptables-restore --noflush\n\*nat\n/);
    expect(result.stdout).toContain('\nCOMMIT\n\n# IPv6: ip6tables-restore --noflush\n*nat\n');
    expect(result.stdout).toContain('--dports 53,6379 -j RETURN');
  });

  it('fails with the privilege it needs when iptables refuses', async () => {
    const netfilter = fakeNetfilter({
      fail: {
        'iptables-save': {
          exitCode: 4,
          stdout: '',
          stderr:
            'iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
        },
      },
    });
    const result = await runInit(netfilter);
    expect(result.code).toBe(1);
    expect(logLines(result.stderr)).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'role failed',
        error:
          "the init role needs root and the NET_ADMIN capability in the pod's network namespace: iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
      }),
    );
  });

  it('names the input line a failed restore points at', async () => {
    const netfilter = fakeNetfilter({
      fail: {
        'iptables-restore': {
          exitCode: 2,
          stdout: '',
          stderr: 'iptables-restore: line 6 failed\n',
        },
      },
    });
    const result = await runInit(netfilter);
    expect(result.code).toBe(1);
    expect(logLines(result.stderr)).toContainEqual(
      expect.objectContaining({
        error:
          'iptables-restore failed (exit code 2): iptables-restore: line 6 failed (input line 6: -A PREROUTING -p tcp -j MESH_INBOUND)',
      }),
    );
  });

  it.each([
    ['disabled', 'IPv6 is disabled in this network namespace'],
    ['unsupported', 'IPv6 is unsupported in this network namespace'],
  ] as const)('skips IPv6 with a warning when it is %s', async (state, reason) => {
    const netfilter = fakeNetfilter({ ipv6: state });
    const result = await runInit(netfilter);
    expect(result.code).toBe(0);
    expect(netfilter.calls.some((call) => call.startsWith('ip6tables'))).toBe(false);
    expect(logLines(result.stderr)).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: 'IPv6 redirect skipped', reason }),
    );
  });

  it('skips IPv6 with a warning when ip6tables is not installed', async () => {
    const result = await runInit(fakeNetfilter({ fail: { 'ip6tables-save': 'ENOENT' } }));
    expect(result.code).toBe(0);
    expect(logLines(result.stderr)).toContainEqual(
      expect.objectContaining({
        msg: 'IPv6 redirect skipped',
        reason: 'ip6tables-save is not installed',
      }),
    );
  });

  it('fails when iptables is not installed', async () => {
    const result = await runInit(fakeNetfilter({ fail: { 'iptables-save': 'ENOENT' } }));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('iptables-save is not installed');
  });

  it('accepts --enable-udp with a warning', async () => {
    const result = await runInit(fakeNetfilter(), ['--enable-udp']);
    expect(result.code).toBe(0);
    expect(logLines(result.stderr)).toContainEqual(
      expect.objectContaining({ level: 'warn', msg: UDP_NOT_INTERCEPTED_WARNING }),
    );
  });

  it('reads repeated port flags as NGINX Service Mesh passes them', async () => {
    const netfilter = fakeNetfilter();
    const args = ['--ignore-incoming-ports', '8887', '--ignore-incoming-ports', '9000'];
    expect((await runInit(netfilter, args)).code).toBe(0);
    expect(netfilter.restored['iptables-restore']).toContain('--dports 8887,9000 -j RETURN');
  });

  it('fails on an invalid port, naming the flag and the value', async () => {
    const netfilter = fakeNetfilter();
    const result = await runInit(netfilter, ['--ignore-outgoing-ports', '443,70000']);
    expect(result.code).toBe(1);
    expect(netfilter.calls).toEqual([]);
    expect(result.stderr).toContain(
      'invalid port \\"70000\\" in --ignore-outgoing-ports: expected 1-65535',
    );
  });

  it("rejects the init role's flags for another role", async () => {
    const other: RoleDefinition = {
      name: 'probe',
      description: 'test role',
      start: () => Promise.reject(new Error('must not start')),
    };
    const result = await runCli(['run', '--role', 'probe', '--dry-run'], {
      roles: [createInitRole(fakeNetfilter()), other],
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Error: flag --dry-run is not accepted by role "probe"\n');
  });
});
