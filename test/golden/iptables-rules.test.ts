// The redirect rules as iptables-restore reads them, byte for byte.
import { buildRedirectModel, buildRedirectRules, printRestoreInput } from '../../src/render/iptables-rules';
import { formatDryRun } from '../../src/runtime/init/init-role';
import { expectGolden } from '../support/golden';

const cases = {
  // What the injector passes for a pod without ports or probes.
  defaults: { ignoreIncomingPorts: [8887], ignoreOutgoingPorts: [] },
  // A pod with user ignore lists, rewritten probes and the metrics port repeated.
  'ignore-lists': {
    ignoreIncomingPorts: [8887, 5432, 8887, 8895, 8896, 9000],
    ignoreOutgoingPorts: [6379, 443, 6379],
  },
  // More ports than one multiport rule may hold.
  'many-ports': {
    ignoreIncomingPorts: Array.from({ length: 20 }, (_, index) => 7000 + index),
    ignoreOutgoingPorts: Array.from({ length: 16 }, (_, index) => 3000 + index * 2),
  },
};

describe('redirect rules (golden)', () => {
  for (const [name, options] of Object.entries(cases)) {
    it(`renders ${name} for IPv4 and IPv6`, () => {
      const rules = buildRedirectRules(options);
      expectGolden(`iptables/${name}.ipv4.rules`, rules.ipv4);
      expectGolden(`iptables/${name}.ipv6.rules`, rules.ipv6);
    });
  }

  it('leaves out the jumps a previous run installed', () => {
    const model = buildRedirectModel(cases.defaults);
    expectGolden(
      'iptables/reapply.ipv4.rules',
      printRestoreInput(model.ipv4, ['PREROUTING', 'OUTPUT']),
    );
  });

  it('prints a dry run as IPv4 then IPv6 under headers', () => {
    expectGolden('iptables/dry-run.txt', formatDryRun(buildRedirectModel(cases['ignore-lists'])));
  });
});
