// `npm run conformance`'s pure parts: the suite's command line from the profiles and the claims,
// and what is read back from the suite's `-test.v` output and its YAML report.
import {
  DEFAULT_PROFILES,
  PROFILES,
  parseProfileName,
  suiteRuns,
} from '../../scripts/conformance/profiles';
import { buildSuiteArguments, claimedFeatures } from '../../scripts/conformance/suite-arguments';
import type { SuiteRun } from '../../scripts/conformance/suite-arguments';
import {
  failureExcerpt,
  mergeReports,
  parseSuiteLog,
  printCounts,
  printOutcomes,
  readReport,
  uncountedFailures,
} from '../../scripts/conformance/suite-results';

const RUN: SuiteRun = {
  profiles: ['MESH-HTTP'],
  implementation: {
    organization: 'nginx-meshctl',
    project: 'nginx-meshctl',
    url: 'https://example.com/nginx-meshctl',
    version: 'v0.1.0',
    contact: ['https://example.com/nginx-meshctl/issues'],
  },
  namespaceLabels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' },
  reportPath: '/tmp/report.yaml',
  timeoutMinutes: 60,
};

describe('conformance profiles', () => {
  it('claims the core features of each profile, and no profile claims a feature it leaves unclaimed', () => {
    expect(PROFILES['GATEWAY-HTTP'].claimed).toEqual(
      expect.arrayContaining(['Gateway', 'HTTPRoute', 'ReferenceGrant']),
    );
    expect(PROFILES['MESH-HTTP'].claimed).toEqual(expect.arrayContaining(['Mesh', 'HTTPRoute']));
    expect(PROFILES['MESH-GRPC'].claimed).toEqual(expect.arrayContaining(['Mesh', 'GRPCRoute']));
    for (const profile of Object.values(PROFILES))
      for (const feature of Object.keys(profile.unclaimed))
        expect(profile.claimed).not.toContain(feature);
    expect(DEFAULT_PROFILES).toEqual(['GATEWAY-HTTP', 'MESH-HTTP']);
  });

  it('refuses an unknown profile, naming the known ones', () => {
    expect(parseProfileName('MESH-HTTP')).toBe('MESH-HTTP');
    expect(() => parseProfileName('GATEWAY-TLS')).toThrow(
      'unknown conformance profile "GATEWAY-TLS": expected one of GATEWAY-HTTP, MESH-HTTP, MESH-GRPC',
    );
  });
});

describe('buildSuiteArguments', () => {
  it('runs TestConformance verbosely for the profiles, with the sorted claims and the report', () => {
    expect(buildSuiteArguments(RUN)).toEqual([
      '-test.run=^TestConformance$',
      '-test.v',
      '-test.timeout=60m',
      '--conformance-profiles=MESH-HTTP',
      '--gateway-class=nginx-mesh',
      `--supported-features=${claimedFeatures(['MESH-HTTP']).join(',')}`,
      '--namespace-labels=injector.nsm.nginx.com/auto-inject=enabled',
      '--report-output=/tmp/report.yaml',
      '--organization=nginx-meshctl',
      '--project=nginx-meshctl',
      '--url=https://example.com/nginx-meshctl',
      '--version=v0.1.0',
      '--contact=https://example.com/nginx-meshctl/issues',
      '--mode=default',
      '--cleanup-base-resources=true',
    ]);
    const claims = claimedFeatures(['MESH-HTTP']);
    expect(claims).toEqual([...claims].sort());
    expect(new Set(claims).size).toBe(claims.length);
  });

  it('passes one test to run and tests to skip when given', () => {
    const args = buildSuiteArguments({
      ...RUN,
      runTest: 'MeshBasic',
      skipTests: ['MeshPorts', 'MeshTrafficSplit'],
    });
    expect(args.slice(-2)).toEqual([
      '--run-test=MeshBasic',
      '--skip-tests=MeshPorts,MeshTrafficSplit',
    ]);
  });

  it('sorts the namespace labels and leaves the flag out without any', () => {
    const args = buildSuiteArguments({ ...RUN, namespaceLabels: { b: '2', a: '1' } });
    expect(args).toContain('--namespace-labels=a=1,b=2');
    expect(
      buildSuiteArguments({ ...RUN, namespaceLabels: {} }).some((arg) =>
        arg.startsWith('--namespace-labels'),
      ),
    ).toBe(false);
  });

  it.each([
    ['no conformance profile to run', { ...RUN, profiles: [] }],
    ['invalid timeout "0": expected whole minutes above 0', { ...RUN, timeoutMinutes: 0 }],
    [
      "the implementation's url is empty",
      { ...RUN, implementation: { ...RUN.implementation, url: '' } },
    ],
    [
      "the implementation's contact is empty",
      { ...RUN, implementation: { ...RUN.implementation, contact: [] } },
    ],
    [
      'invalid contact "a,b": expected a non-empty value without commas',
      { ...RUN, implementation: { ...RUN.implementation, contact: ['a,b'] } },
    ],
    ['invalid namespace label "x,y"', { ...RUN, namespaceLabels: { a: 'x,y' } }],
    ['invalid test to skip "A,B"', { ...RUN, skipTests: ['A,B'] }],
  ] as const)('refuses what the suite would misread: %s', (message, run) => {
    expect(() => buildSuiteArguments(run)).toThrow(message);
  });
});

const LOG = [
  '=== RUN   TestConformance',
  '    conformance.go:129: Running conformance tests with:',
  '    suite.go:447: 2026-12-07T09:00:00Z: Test Setup: Applying base manifests',
  '=== RUN   TestConformance/MeshBasic',
  '    mesh-basic.go:40: sending',
  '=== RUN   TestConformance/MeshBasic/case_0',
  '    pod.go:70: Request passed',
  '=== RUN   TestConformance/MeshPorts',
  '=== PAUSE TestConformance/MeshPorts',
  '=== RUN   TestConformance/MeshFrontend',
  '=== PAUSE TestConformance/MeshFrontend',
  '=== CONT  TestConformance/MeshPorts',
  '    pod.go:74: Response expectation failed: wanted status code to be one of [200], got 404 (after 1.2s)',
  '=== NAME  TestConformance/MeshFrontend',
  '    mesh-frontend.go:44: skipping',
  '=== NAME  TestConformance/MeshPorts',
  '    pod.go:74: Response expectation failed: wanted status code to be one of [200], got 404 (after 2.4s)',
  '    pod.go:74: Response expectation failed: wanted status code to be one of [200], got 404 (after 3.6s)',
  '    http.go:300: Error Trace: pod.go:61',
  '        Error: Condition never satisfied',
  '=== NAME  TestConformance',
  '    conformance.go:162: Conformance report:',
  '--- FAIL: TestConformance (99.00s)',
  '    --- PASS: TestConformance/MeshBasic (1.00s)',
  '        --- PASS: TestConformance/MeshBasic/case_0 (0.50s)',
  '    --- SKIP: TestConformance/MeshFrontend (0.00s)',
  '    --- FAIL: TestConformance/MeshPorts (30.00s)',
  'FAIL',
].join('\n');

describe('parseSuiteLog', () => {
  it("gives each of TestConformance's tests its outcome and its own lines, subtests' included", () => {
    const log = parseSuiteLog(LOG);
    expect(log.tests.map((test) => [test.name, test.outcome])).toEqual([
      ['MeshBasic', 'pass'],
      ['MeshFrontend', 'skip'],
      ['MeshPorts', 'fail'],
    ]);
    expect(log.tests[0]?.lines).toEqual([
      '    mesh-basic.go:40: sending',
      '    pod.go:70: Request passed',
    ]);
    expect(log.tests[1]?.lines).toEqual(['    mesh-frontend.go:44: skipping']);
    expect(log.tests[2]?.lines).toHaveLength(5);
    expect(log.suiteOutcome).toBe('fail');
    expect(log.suiteLines).toContain('    conformance.go:162: Conformance report:');
    expect(log.suiteLines).toContain('FAIL');
  });

  it('reads an empty output as no tests', () => {
    expect(parseSuiteLog('')).toEqual({ tests: [], suiteLines: [''] });
  });
});

describe('failureExcerpt', () => {
  it('keeps each log call once, where it was last seen, with how often, and the assertion', () => {
    const lines = parseSuiteLog(LOG).tests[2]?.lines ?? [];
    expect(failureExcerpt(lines)).toEqual([
      '    pod.go:74: Response expectation failed: wanted status code to be one of [200], got 404 (after 3.6s)  [×3]',
      '    http.go:300: Error Trace: pod.go:61',
      '        Error: Condition never satisfied',
    ]);
  });

  it('leaves out raw responses and their continuation lines, and ignores timestamps', () => {
    const lines = [
      '    pod.go:70: 2026-12-07T09:10:26.866Z: Got resp RawContent:       [0] Url=http://echo/',
      '            [0] StatusCode=502',
      '    pod.go:72: 2026-12-07T09:10:26.867Z: not ready yet: got 502 (after 1s)',
      '    pod.go:70: 2026-12-07T09:10:27.866Z: Got resp RawContent:       [0] Url=http://echo/',
      '            [0] StatusCode=502',
      '    pod.go:72: 2026-12-07T09:10:27.867Z: not ready yet: got 502 (after 2s)',
      '    http.go:306: 2026-12-07T09:10:28.000Z: timeout while waiting after 2 attempts, 0/3 successes',
    ];
    expect(failureExcerpt(lines)).toEqual([
      '    pod.go:72: 2026-12-07T09:10:27.867Z: not ready yet: got 502 (after 2s)  [×2]',
      '    http.go:306: 2026-12-07T09:10:28.000Z: timeout while waiting after 2 attempts, 0/3 successes',
    ]);
  });

  it('keeps the last lines when there are more than asked for', () => {
    const lines = Array.from(
      { length: 10 },
      (_, index) => `    a.go:1: line ${String.fromCharCode(97 + index)}`,
    );
    expect(failureExcerpt(lines, 3)).toEqual([
      '    a.go:1: line h',
      '    a.go:1: line i',
      '    a.go:1: line j',
    ]);
  });
});

describe('printOutcomes', () => {
  it('lists passes and failures, skips with their reason, and counts a reason shared widely', () => {
    const skipped = (name: string, feature: string) => ({
      name,
      outcome: 'skip' as const,
      lines: [`    conformance.go:56: Skipping ${name}: suite does not support ${feature}`],
    });
    expect(
      printOutcomes(
        [
          { name: 'MeshBasic', outcome: 'pass', lines: [] },
          skipped('MeshFrontendHostname', 'MeshClusterIPMatching'),
          { name: 'MeshPorts', outcome: 'fail', lines: [] },
          skipped('GatewayA', 'Gateway'),
          skipped('GatewayB', 'Gateway'),
          skipped('GatewayC', 'Gateway'),
        ],
        2,
      ),
    ).toEqual([
      'pass  MeshBasic',
      'skip  MeshFrontendHostname (suite does not support MeshClusterIPMatching)',
      'fail  MeshPorts',
      'skip  3 tests (suite does not support Gateway)',
    ]);
  });
});

const REPORT = `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
gatewayAPIVersion: v1.6.3
profiles:
- core:
    failedTests:
    - MeshPorts
    result: failure
    statistics:
      Failed: 1
      Passed: 7
      Skipped: 0
  extended:
    result: success
    statistics:
      Failed: 0
      Passed: 5
      Skipped: 0
    supportedFeatures:
    - MeshConsumerRoute
    unsupportedFeatures:
    - MeshClusterIPMatching
  name: MESH-HTTP
  summary: Core tests failed with 1 test failures. Extended tests succeeded.
`;

describe('readReport', () => {
  it('reads the counts, failures and features of each profile', () => {
    const [profile] = readReport(REPORT);
    expect(profile?.name).toBe('MESH-HTTP');
    expect(profile?.core).toEqual({
      result: 'failure',
      passed: 7,
      skipped: 0,
      failed: 1,
      failedTests: ['MeshPorts'],
      skippedTests: [],
    });
    expect(profile?.extended?.supportedFeatures).toEqual(['MeshConsumerRoute']);
    expect(profile?.extended?.unsupportedFeatures).toEqual(['MeshClusterIPMatching']);
    expect(printCounts(readReport(REPORT))).toEqual([
      'MESH-HTTP core: 7 passed, 0 skipped, 1 failed (failure)',
      'MESH-HTTP extended: 5 passed, 0 skipped, 0 failed (success)',
    ]);
  });

  it('refuses a document that is not a conformance report', () => {
    expect(() => readReport('kind: Pod\n')).toThrow('not a conformance report: kind "Pod"');
    expect(() =>
      readReport('kind: ConformanceReport\nprofiles:\n- name: X\n  core:\n    statistics: {}\n'),
    ).toThrow("the conformance report's X.core.statistics.Passed is not a number");
  });
});

describe('uncountedFailures', () => {
  it('names the failed tests no profile of the report counts', () => {
    const tests = [
      { name: 'MeshPorts', outcome: 'fail' as const, lines: [] },
      { name: 'MeshFrontend', outcome: 'fail' as const, lines: [] },
      { name: 'MeshBasic', outcome: 'pass' as const, lines: [] },
    ];
    expect(uncountedFailures(tests, readReport(REPORT))).toEqual(['MeshFrontend']);
  });
});

describe('suiteRuns and mergeReports', () => {
  it('runs the gateway profile without injection, before the mesh profiles with it', () => {
    expect(suiteRuns(['MESH-HTTP', 'GATEWAY-HTTP', 'MESH-GRPC'])).toEqual([
      ['GATEWAY-HTTP'],
      ['MESH-HTTP', 'MESH-GRPC'],
    ]);
    expect(suiteRuns(['MESH-HTTP'])).toEqual([['MESH-HTTP']]);
  });

  it("makes one report of the runs' reports, every profile in order", () => {
    const report = (profile: string): string =>
      [
        'apiVersion: gateway.networking.k8s.io/v1',
        'kind: ConformanceReport',
        'mode: default',
        'profiles:',
        `  - name: ${profile}`,
        '    core:',
        '      result: success',
        '      statistics: { Passed: 1, Skipped: 0, Failed: 0 }',
        '    summary: ok',
      ].join('\n');
    const merged = readReport(mergeReports([report('GATEWAY-HTTP'), report('MESH-HTTP')]));
    expect(merged.map((profile) => profile.name)).toEqual(['GATEWAY-HTTP', 'MESH-HTTP']);
    expect(() => mergeReports(['kind: Other'])).toThrow('not a conformance report');
  });
});
