// What a run of the conformance suite's test binary says: each test's outcome and log lines,
// read from its `-test.v` output, and the per-profile counts of its YAML report. Pure.
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

export type Outcome = 'pass' | 'fail' | 'skip';

export interface TestResult {
  /** The suite's ShortName (MeshBasic), the subtest of TestConformance. */
  readonly name: string;
  readonly outcome: Outcome;
  /** Its log lines, its own subtests' included, in the order printed. */
  readonly lines: readonly string[];
}

export interface SuiteLog {
  /** Every test of the suite that ran to an outcome, in the order their outcomes were printed. */
  readonly tests: readonly TestResult[];
  /** Lines of TestConformance itself: setup, the report, and what failed outside any test. */
  readonly suiteLines: readonly string[];
  /** TestConformance's own outcome, when the binary printed it. */
  readonly suiteOutcome?: Outcome;
}

const SUITE = 'TestConformance';
/** `=== RUN`, `=== PAUSE`, `=== CONT`, `=== NAME` (the test the next lines belong to). */
const MARKER = /^=== (?:RUN|PAUSE|CONT|NAME)\s+(\S+)/;
/** `--- PASS: name (1.23s)`, indented four spaces per subtest level. */
const RESULT = /^\s*--- (PASS|FAIL|SKIP): (\S+)/;

/** The subtest of TestConformance a test path belongs to (its second segment). */
function suiteTestOf(path: string): string | undefined {
  const [top, name] = path.split('/');
  return top === SUITE ? name : undefined;
}

/** Reads the `-test.v` output of conformance.test into outcomes and per-test log lines. */
export function parseSuiteLog(text: string): SuiteLog {
  const lines = new Map<string, string[]>();
  const outcomes = new Map<string, Outcome>();
  const suiteLines: string[] = [];
  let suiteOutcome: Outcome | undefined;
  let current: string | undefined;
  const linesOf = (name: string): string[] => {
    const found = lines.get(name);
    if (found !== undefined) return found;
    const created: string[] = [];
    lines.set(name, created);
    return created;
  };
  for (const line of text.split('\n')) {
    const marker = MARKER.exec(line);
    if (marker?.[1] !== undefined) {
      current = suiteTestOf(marker[1]);
      continue;
    }
    const result = RESULT.exec(line);
    if (result?.[1] !== undefined && result[2] !== undefined) {
      const outcome = result[1].toLowerCase() as Outcome;
      const name = suiteTestOf(result[2]);
      if (result[2] === SUITE) suiteOutcome = outcome;
      else if (name !== undefined && result[2] === `${SUITE}/${name}`) {
        outcomes.delete(name);
        outcomes.set(name, outcome);
      }
      continue;
    }
    if (current === undefined) suiteLines.push(line);
    else linesOf(current).push(line);
  }
  const tests = [...outcomes].map(([name, outcome]) => ({
    name,
    outcome,
    lines: lines.get(name) ?? [],
  }));
  return { tests, suiteLines, ...(suiteOutcome === undefined ? {} : { suiteOutcome }) };
}

/** Times and counters that make otherwise equal polling lines differ. */
const VARYING = [
  /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z:? ?/g,
  /\(after [^)]*\)/g,
  /\d+(?:\.\d+)?(?:ms|µs|s)\b/g,
  /\b\d+\/\d+\b/g,
];
/** The first line of one log call of a test: `    file.go:12: …`. */
const LOG_CALL = /^\s*[\w.-]+\.go:\d+: /;
/** The raw answer the suite prints before judging it; the judgement follows on its own line. */
const RAW_RESPONSE = /: Got resp /;
/** The lines of testify's assertion report, printed below its log call. */
const ASSERTION = /^\s*(?:Error Trace|Error|Messages|Test):/;

/**
 * The lines that explain a failure, shortened: the first line of each log call and the
 * assertion's report (the raw responses the suite prints before judging them are left out); a line seen before but for its times and counters is kept once, where it was last seen,
 * with how often it came; at most `max` lines are kept, the last ones, where the suite prints
 * what it waited for and the assertion that failed.
 */
export function failureExcerpt(lines: readonly string[], max = 40): string[] {
  const kept = new Map<string, { line: string; repeats: number }>();
  for (const line of lines) {
    if ((!LOG_CALL.test(line) || RAW_RESPONSE.test(line)) && !ASSERTION.test(line)) continue;
    const key = VARYING.reduce((text, pattern) => text.replace(pattern, '…'), line.trim());
    const seen = kept.get(key);
    kept.delete(key);
    kept.set(key, { line, repeats: (seen?.repeats ?? 0) + 1 });
  }
  return [...kept.values()]
    .slice(-max)
    .map(({ line, repeats }) => (repeats > 1 ? `${line}  [×${String(repeats)}]` : line));
}

/** Why the suite skipped a test: `Skipping X: suite does not support Y` names the feature. */
function skipReason(lines: readonly string[]): string | undefined {
  for (const line of lines) {
    const reason = /Skipping \S+: (.*)$/.exec(line)?.[1];
    if (reason !== undefined) return reason.trim();
  }
  return undefined;
}

/**
 * One line per test that passed or failed, and per skipped test with its reason; skipped tests
 * sharing a reason with more than `collapseOver` others (all of another profile's tests, say)
 * are counted on one line instead.
 */
export function printOutcomes(tests: readonly TestResult[], collapseOver = 3): string[] {
  const reasons = new Map<string, number>();
  for (const test of tests) {
    if (test.outcome !== 'skip') continue;
    const reason = skipReason(test.lines) ?? 'skipped';
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const lines: string[] = [];
  const collapsed = new Set<string>();
  for (const test of tests) {
    if (test.outcome !== 'skip') {
      lines.push(`${test.outcome}  ${test.name}`);
      continue;
    }
    const reason = skipReason(test.lines) ?? 'skipped';
    const count = reasons.get(reason) ?? 0;
    if (count <= collapseOver) lines.push(`skip  ${test.name} (${reason})`);
    else if (!collapsed.has(reason)) {
      collapsed.add(reason);
      lines.push(`skip  ${String(count)} tests (${reason})`);
    }
  }
  return lines;
}

export interface LevelCounts {
  readonly result: string;
  readonly passed: number;
  readonly skipped: number;
  readonly failed: number;
  readonly failedTests: readonly string[];
  readonly skippedTests: readonly string[];
}

export interface ProfileCounts {
  readonly name: string;
  readonly summary: string;
  readonly core: LevelCounts;
  readonly extended?: LevelCounts & {
    readonly supportedFeatures: readonly string[];
    readonly unsupportedFeatures: readonly string[];
  };
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`the conformance report's ${what} is not a mapping`);
  return value as Record<string, unknown>;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((each) => typeof each === 'string') : [];
}

function levelCounts(value: unknown, what: string): LevelCounts {
  const level = record(value, what);
  const statistics = record(level.statistics, `${what}.statistics`);
  const count = (key: string): number => {
    const found = statistics[key];
    if (typeof found !== 'number')
      throw new Error(`the conformance report's ${what}.statistics.${key} is not a number`);
    return found;
  };
  return {
    result: typeof level.result === 'string' ? level.result : 'unknown',
    passed: count('Passed'),
    skipped: count('Skipped'),
    failed: count('Failed'),
    failedTests: strings(level.failedTests),
    skippedTests: strings(level.skippedTests),
  };
}

/** The per-profile counts of the suite's YAML report. */
export function readReport(text: string): ProfileCounts[] {
  const report = record(parseYaml(text), 'document');
  if (report.kind !== 'ConformanceReport')
    throw new Error(`not a conformance report: kind ${JSON.stringify(report.kind)}`);
  const profiles = Array.isArray(report.profiles) ? (report.profiles as unknown[]) : [];
  return profiles.map((entry, index) => {
    const profile = record(entry, `profiles[${String(index)}]`);
    const name = typeof profile.name === 'string' ? profile.name : `profiles[${String(index)}]`;
    const extended =
      profile.extended === undefined
        ? undefined
        : {
            ...levelCounts(profile.extended, `${name}.extended`),
            supportedFeatures: strings(record(profile.extended, name).supportedFeatures),
            unsupportedFeatures: strings(record(profile.extended, name).unsupportedFeatures),
          };
    return {
      name,
      summary: typeof profile.summary === 'string' ? profile.summary : '',
      core: levelCounts(profile.core, `${name}.core`),
      ...(extended === undefined ? {} : { extended }),
    };
  });
}

/** One line per profile and level: `MESH-HTTP core: 8 passed, 0 skipped, 1 failed (failure)`. */
export function printCounts(profiles: readonly ProfileCounts[]): string[] {
  const line = (name: string, level: string, counts: LevelCounts): string =>
    `${name} ${level}: ${String(counts.passed)} passed, ${String(counts.skipped)} skipped, ${String(counts.failed)} failed (${counts.result})`;
  return profiles.flatMap((profile) => [
    line(profile.name, 'core', profile.core),
    ...(profile.extended === undefined ? [] : [line(profile.name, 'extended', profile.extended)]),
  ]);
}

/**
 * The tests that failed but that no profile of the report counts: the suite counts a test in a
 * profile only when the profile covers every feature the test needs, so a test that also needs,
 * say, HTTPRouteResponseHeaderModification fails without showing in any statistics.
 */
export function uncountedFailures(
  tests: readonly TestResult[],
  profiles: readonly ProfileCounts[],
): string[] {
  const counted = new Set(
    profiles.flatMap((profile) => [
      ...profile.core.failedTests,
      ...(profile.extended?.failedTests ?? []),
    ]),
  );
  return tests
    .filter((test) => test.outcome === 'fail' && !counted.has(test.name))
    .map((test) => test.name);
}

/**
 * One report of several runs' reports: the first one's fields, with every run's profiles in
 * order. Throws on a text that is not a conformance report.
 */
export function mergeReports(texts: readonly string[]): string {
  const reports = texts.map((text) => record(parseYaml(text), 'document'));
  for (const report of reports)
    if (report.kind !== 'ConformanceReport')
      throw new Error(`not a conformance report: kind ${JSON.stringify(report.kind)}`);
  const [first] = reports;
  if (first === undefined) throw new Error('no report to merge');
  const profiles = reports.flatMap((report) =>
    Array.isArray(report.profiles) ? (report.profiles as unknown[]) : [],
  );
  return stringifyYaml({ ...first, profiles });
}
