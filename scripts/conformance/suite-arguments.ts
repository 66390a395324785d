// The command line of the Gateway API conformance suite's test binary (`go test -c` of
// sigs.k8s.io/gateway-api/conformance): Go's testing flags (-test.*) for TestConformance, then
// the suite's own flags (conformance/utils/flags). Pure: the same run gives the same arguments.
import { GATEWAY_CLASS_NAME } from '../../src/manifests/constants';
import { PROFILES } from './profiles';
import type { ProfileName } from './profiles';

/** Who made the implementation under test, as the report's `implementation` shows it. */
export interface Implementation {
  readonly organization: string;
  readonly project: string;
  readonly url: string;
  readonly version: string;
  /** Each a free-form contact (no commas: the suite splits the flag on them). */
  readonly contact: readonly string[];
}

export interface SuiteRun {
  readonly profiles: readonly ProfileName[];
  readonly implementation: Implementation;
  /** Labels the suite puts on every namespace it creates (automatic sidecar injection). */
  readonly namespaceLabels: Readonly<Record<string, string>>;
  /** Where the suite writes its YAML report. */
  readonly reportPath: string;
  /** Go's limit on the whole run, in minutes: past it the binary panics with every stack. */
  readonly timeoutMinutes: number;
  /** Runs this one test (a ShortName such as MeshBasic) instead of the whole suite. */
  readonly runTest?: string;
  /** Tests not to run; the report lists them as skipped. */
  readonly skipTests?: readonly string[];
}

/** The features the run claims: every claim of its profiles, sorted, each once. */
export function claimedFeatures(profiles: readonly ProfileName[]): string[] {
  return [...new Set(profiles.flatMap((name) => PROFILES[name].claimed))].sort();
}

function requireNoComma(what: string, values: readonly string[]): void {
  const bad = values.find((value) => value.includes(',') || value === '');
  if (bad !== undefined)
    throw new Error(`invalid ${what} "${bad}": expected a non-empty value without commas`);
}

function requireNonEmpty(implementation: Implementation): void {
  for (const [field, value] of Object.entries(implementation)) {
    if (value === '' || (Array.isArray(value) && value.length === 0))
      throw new Error(`the implementation's ${field} is empty: the suite's report requires it`);
  }
}

/** The arguments of conformance.test for the run; throws on a value the suite would misread. */
export function buildSuiteArguments(run: SuiteRun): string[] {
  if (run.profiles.length === 0) throw new Error('no conformance profile to run');
  if (!Number.isInteger(run.timeoutMinutes) || run.timeoutMinutes <= 0)
    throw new Error(`invalid timeout "${run.timeoutMinutes}": expected whole minutes above 0`);
  requireNonEmpty(run.implementation);
  requireNoComma('contact', run.implementation.contact);
  const labels = Object.entries(run.namespaceLabels).sort(([a], [b]) => (a < b ? -1 : 1));
  requireNoComma(
    'namespace label',
    labels.flatMap(([key, value]) => [key, value]),
  );
  const skip = run.skipTests ?? [];
  requireNoComma('test to skip', skip);
  return [
    '-test.run=^TestConformance$',
    '-test.v',
    `-test.timeout=${String(run.timeoutMinutes)}m`,
    `--conformance-profiles=${run.profiles.join(',')}`,
    `--gateway-class=${GATEWAY_CLASS_NAME}`,
    `--supported-features=${claimedFeatures(run.profiles).join(',')}`,
    ...(labels.length === 0
      ? []
      : [`--namespace-labels=${labels.map(([key, value]) => `${key}=${value}`).join(',')}`]),
    `--report-output=${run.reportPath}`,
    `--organization=${run.implementation.organization}`,
    `--project=${run.implementation.project}`,
    `--url=${run.implementation.url}`,
    `--version=${run.implementation.version}`,
    `--contact=${run.implementation.contact.join(',')}`,
    '--mode=default',
    '--cleanup-base-resources=true',
    ...(run.runTest === undefined ? [] : [`--run-test=${run.runTest}`]),
    ...(skip.length === 0 ? [] : [`--skip-tests=${skip.join(',')}`]),
  ];
}
