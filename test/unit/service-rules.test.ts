import {
  MAX_CHAIN_NAME_LENGTH,
  NOTHING_INSTALLED,
  ServiceRuleError,
  ipv4ToNumber,
  parseInstalledRules,
  renderServiceRules,
  serviceChainName,
} from '../cluster/harness/service-rules';
import type { ServiceRule } from '../cluster/harness/service-rules';

const web: ServiceRule = {
  namespace: 'default',
  name: 'web',
  portName: 'http',
  protocol: 'TCP',
  clusterIP: '198.19.0.10',
  port: 80,
  endpoints: [
    { ip: '198.18.100.12', port: 8080 },
    { ip: '198.18.100.3', port: 8080 },
    { ip: '198.18.100.4', port: 8080 },
  ],
};
const dns: ServiceRule = {
  namespace: 'kube-system',
  name: 'dns',
  portName: 'dns',
  protocol: 'UDP',
  clusterIP: '198.19.0.53',
  port: 53,
  endpoints: [{ ip: '198.18.100.5', port: 53 }],
};
const idle: ServiceRule = {
  namespace: 'default',
  name: 'idle',
  portName: '',
  protocol: 'TCP',
  clusterIP: '198.19.0.20',
  port: 80,
  endpoints: [],
};
const quiet: ServiceRule = {
  namespace: 'default',
  name: 'quiet',
  portName: 'syslog',
  protocol: 'UDP',
  clusterIP: '198.19.0.21',
  port: 514,
  endpoints: [],
};

/** Rules in the given chain, in order. */
function rulesOf(rendered: string, chain: string): string[] {
  return rendered.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
}

describe('renderServiceRules', () => {
  it('renders the chains kube-proxy would install on a fresh node', () => {
    expect(renderServiceRules([web, dns, idle, quiet]).split('\n')).toEqual([
      '*filter',
      ':NMK-SERVICES - [0:0]',
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A NMK-SERVICES -d 198.19.0.20/32 -p tcp -m comment --comment "default/idle has no endpoints" -m tcp --dport 80 -j REJECT --reject-with tcp-reset',
      '-A NMK-SERVICES -d 198.19.0.21/32 -p udp -m comment --comment "default/quiet:syslog has no endpoints" -m udp --dport 514 -j REJECT --reject-with icmp-port-unreachable',
      'COMMIT',
      '*nat',
      ':NMK-SERVICES - [0:0]',
      ':NMK-POSTROUTING - [0:0]',
      ':NMK-MARK-MASQ - [0:0]',
      ':NMK-SVC-AE9ADEDA899332FB - [0:0]',
      ':NMK-SEP-6FE07C6909253C45 - [0:0]',
      ':NMK-SEP-7D9B4BB8CC5D5006 - [0:0]',
      ':NMK-SEP-F9F684F42CCD4A7F - [0:0]',
      ':NMK-SVC-8F0E805346094867 - [0:0]',
      ':NMK-SEP-CC2682F10A45734F - [0:0]',
      '-A PREROUTING -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A OUTPUT -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A POSTROUTING -m comment --comment "nmk service hairpin" -j NMK-POSTROUTING',
      '-A NMK-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
      '-A NMK-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A NMK-POSTROUTING -j MARK --set-xmark 0x0/0x4000',
      '-A NMK-POSTROUTING -m comment --comment "hairpin to a service endpoint" -j MASQUERADE',
      '-A NMK-SERVICES -d 198.19.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j NMK-SVC-AE9ADEDA899332FB',
      '-A NMK-SERVICES -d 198.19.0.53/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP" -m udp --dport 53 -j NMK-SVC-8F0E805346094867',
      '-A NMK-SVC-AE9ADEDA899332FB -m comment --comment "default/web:http -> 198.18.100.3:8080" -m statistic --mode random --probability 0.33333333349 -j NMK-SEP-6FE07C6909253C45',
      '-A NMK-SVC-AE9ADEDA899332FB -m comment --comment "default/web:http -> 198.18.100.4:8080" -m statistic --mode random --probability 0.50000000000 -j NMK-SEP-7D9B4BB8CC5D5006',
      '-A NMK-SVC-AE9ADEDA899332FB -m comment --comment "default/web:http -> 198.18.100.12:8080" -j NMK-SEP-F9F684F42CCD4A7F',
      '-A NMK-SEP-6FE07C6909253C45 -s 198.18.100.3/32 -m comment --comment "default/web:http" -j NMK-MARK-MASQ',
      '-A NMK-SEP-6FE07C6909253C45 -p tcp -m comment --comment "default/web:http" -j DNAT --to-destination 198.18.100.3:8080',
      '-A NMK-SEP-7D9B4BB8CC5D5006 -s 198.18.100.4/32 -m comment --comment "default/web:http" -j NMK-MARK-MASQ',
      '-A NMK-SEP-7D9B4BB8CC5D5006 -p tcp -m comment --comment "default/web:http" -j DNAT --to-destination 198.18.100.4:8080',
      '-A NMK-SEP-F9F684F42CCD4A7F -s 198.18.100.12/32 -m comment --comment "default/web:http" -j NMK-MARK-MASQ',
      '-A NMK-SEP-F9F684F42CCD4A7F -p tcp -m comment --comment "default/web:http" -j DNAT --to-destination 198.18.100.12:8080',
      '-A NMK-SVC-8F0E805346094867 -m comment --comment "kube-system/dns:dns -> 198.18.100.5:53" -j NMK-SEP-CC2682F10A45734F',
      '-A NMK-SEP-CC2682F10A45734F -s 198.18.100.5/32 -m comment --comment "kube-system/dns:dns" -j NMK-MARK-MASQ',
      '-A NMK-SEP-CC2682F10A45734F -p udp -m comment --comment "kube-system/dns:dns" -j DNAT --to-destination 198.18.100.5:53',
      'COMMIT',
      '',
    ]);
  });

  it('gives the same bytes whatever the order of services and endpoints, and for duplicates', () => {
    const shuffled: ServiceRule = {
      ...web,
      endpoints: [...web.endpoints].reverse().concat(web.endpoints.slice(0, 1)),
    };
    expect(renderServiceRules([quiet, idle, dns, shuffled])).toBe(
      renderServiceRules([web, dns, idle, quiet]),
    );
  });

  it('renders only the empty project chains and the hooks when there are no services', () => {
    const rendered = renderServiceRules([]);
    expect(rendered).not.toContain('NMK-SVC-');
    expect(rendered).not.toContain('REJECT');
    expect(rendered.match(/^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /gm)).toHaveLength(6);
  });

  it('adds no hook that iptables-save already shows', () => {
    const installed = parseInstalledRules(renderServiceRules([web]));
    const rendered = renderServiceRules([web], installed);
    expect(rendered).not.toMatch(/^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /m);
    expect(rendered).not.toContain('-X ');
  });

  it('flushes and deletes project chains no service port owns any more, and only those', () => {
    const installed = parseInstalledRules(renderServiceRules([web, dns]));
    const rendered = renderServiceRules([dns], installed);
    const webChains = installed.natChains.filter(
      (chain) => !renderServiceRules([dns]).includes(chain),
    );
    expect(webChains).toHaveLength(4);
    for (const chain of webChains) {
      expect(rendered).toContain(`:${chain} - [0:0]\n`);
      expect(rendered).toContain(`-X ${chain}\n`);
      expect(rulesOf(rendered, chain)).toEqual([]);
    }
    expect(rendered.match(/^-X /gm)).toHaveLength(4);
    expect(rendered.indexOf('-X ')).toBeGreaterThan(rendered.lastIndexOf('-A '));
  });

  it.each([1, 2, 3, 4, 7])('picks each of %d endpoints with the same probability', (count) => {
    const endpoints = Array.from({ length: count }, (_, index) => ({
      ip: `198.18.100.${index + 2}`,
      port: 8080,
    }));
    const rules = rulesOf(renderServiceRules([{ ...web, endpoints }]), serviceChainName(web));
    expect(rules).toHaveLength(count);
    let remaining = 1;
    const shares = rules.map((rule) => {
      const probability = Number(/--probability (\S+)/.exec(rule)?.[1] ?? '1');
      const share = remaining * probability;
      remaining -= share;
      return share;
    });
    expect(rules.at(-1)).not.toContain('statistic');
    for (const share of shares) expect(Math.abs(share - 1 / count)).toBeLessThan(1e-9);
  });

  it('rejects a service port without endpoints with the reset its protocol understands', () => {
    const rendered = renderServiceRules([idle, quiet]);
    expect(rulesOf(rendered, 'NMK-SERVICES').map((rule) => rule.split(' -j ')[1])).toEqual([
      'REJECT --reject-with tcp-reset',
      'REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(rendered.slice(rendered.indexOf('*nat'))).not.toContain('198.19.0.2');
  });

  it.each<[string, ServiceRule[], string]>([
    ['a capital in a name', [{ ...web, name: 'Web' }], 'invalid name "Web" of service default/Web'],
    ['a quote in a port name', [{ ...web, portName: 'a"b' }], 'invalid port name "a\\"b"'],
    ['a cluster IP that is not IPv4', [{ ...web, clusterIP: 'fd00::1' }], 'invalid cluster IP'],
    ['port 0', [{ ...web, port: 0 }], 'invalid port 0 of service default/web:http'],
    [
      'an endpoint port above 65535',
      [{ ...web, endpoints: [{ ip: '198.18.100.2', port: 70000 }] }],
      'invalid endpoint port 70000 of service default/web:http: expected 1-65535',
    ],
    ['the same service port twice', [web, { ...web, port: 81 }], 'default/web:http/TCP is listed'],
    [
      'two service ports on one address, port and protocol',
      [web, { ...web, name: 'other' }],
      'two service ports listen on 198.19.0.10:80/TCP',
    ],
  ])('refuses %s', (_, services, message) => {
    expect(() => renderServiceRules(services)).toThrow(ServiceRuleError);
    expect(() => renderServiceRules(services)).toThrow(message);
  });
});

describe('serviceChainName', () => {
  it('is a short hash of namespace, name, port name and protocol, within the 28-char limit', () => {
    expect(serviceChainName(web)).toBe('NMK-SVC-AE9ADEDA899332FB');
    expect(serviceChainName(web).length).toBeLessThanOrEqual(MAX_CHAIN_NAME_LENGTH);
    const moved: ServiceRule = { ...web, clusterIP: '198.19.0.99', endpoints: [] };
    expect(serviceChainName(moved)).toBe(serviceChainName(web));
    const others = [
      { ...web, namespace: 'other' },
      { ...web, name: 'other' },
      { ...web, portName: 'https' },
      { ...web, protocol: 'UDP' as const },
    ];
    expect(new Set([web, ...others].map(serviceChainName)).size).toBe(5);
  });
});

describe('parseInstalledRules', () => {
  it('finds the project chains and hooks among other rules, ignoring other tables', () => {
    const saved = [
      '# Generated by iptables-save v1.8.9 (nf_tables)',
      '*mangle',
      ':PREROUTING ACCEPT [0:0]',
      ':NMK-SERVICES - [0:0]',
      '-A PREROUTING -m comment --comment "nmk service portals" -j NMK-SERVICES',
      'COMMIT',
      '*filter',
      ':INPUT ACCEPT [10:600]',
      ':KUBE-FIREWALL - [0:0]',
      ':NMK-SERVICES - [0:0]',
      '-A INPUT -j KUBE-FIREWALL',
      '-A INPUT -m conntrack --ctstate NEW -m comment --comment "nmk service portals" -j NMK-SERVICES',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':NMK-SVC-AE9ADEDA899332FB - [0:0]',
      ':NMK-SERVICES - [0:0]',
      '-A PREROUTING -m comment --comment "nmk service portals" -j NMK-SERVICES',
      '-A POSTROUTING -d 192.0.2.1/32 -j RETURN',
      'COMMIT',
      '',
    ].join('\n');
    expect(parseInstalledRules(saved)).toEqual({
      natChains: ['NMK-SERVICES', 'NMK-SVC-AE9ADEDA899332FB'],
      filterChains: ['NMK-SERVICES'],
      hooks: ['filter:INPUT', 'nat:PREROUTING'],
    });
  });

  it('reads an empty save (a namespace without tables) as nothing installed', () => {
    expect(parseInstalledRules('')).toEqual(NOTHING_INSTALLED);
  });
});

describe('ipv4ToNumber', () => {
  it.each<[string, number | undefined]>([
    ['0.0.0.0', 0],
    ['198.18.0.1', 0xc6120001],
    ['255.255.255.255', 0xffffffff],
    ['256.0.0.1', undefined],
    ['01.2.3.4', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4 ', undefined],
    ['', undefined],
  ])('reads %j as %s', (text, value) => {
    expect(ipv4ToNumber(text)).toBe(value);
  });
});
