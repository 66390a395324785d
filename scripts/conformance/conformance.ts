// `npm run conformance`: the upstream Gateway API conformance suite (the release whose CRDs deploy
// installs) against the mesh on the local test cluster. It builds what is missing (the executable,
// the suite and its echo servers with Go, their images), starts the cluster (instance 0 in
// .cluster/, as `npm run cluster:up`), imports the echo images into the node, deploys the mesh
// with the images built here, runs the suite's test binary for the chosen profiles with the
// features the mesh claims (scripts/conformance/profiles.ts), and prints each test's outcome,
// the log lines of each failure, and the pass/skip/fail counts per profile. A complete run of
// every profile writes the suite's own report to conformance/report-<version>.yaml; a partial
// one (--run-test, --skip-tests, --profile) writes it under .cluster/conformance/. Then it
// removes the mesh and stops the cluster, unless --keep-cluster. Exit 1 when a test failed (a
// core one, or one of a claimed feature, which the report may count in no profile) or the suite
// did not finish, 2 on a usage error.
//
//   npm run conformance -- [--keep-cluster] [--profile MESH-HTTP]… [--run-test MeshBasic]
//                          [--skip-tests A,B] [--timeout-minutes 60]
// The report names the implementation from package.json (name, version, homepage);
// CONFORMANCE_URL and CONFORMANCE_CONTACT (comma-separated) override its url and contact.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { AUTO_INJECT_LABEL, GATEWAY_API_VERSION } from '../../src/manifests/constants';
import { cacheRoot, startCluster, stopCluster } from '../../test/cluster/harness/cluster';
import { runCommand } from '../../test/cluster/harness/exec';
import { ctrInNode } from '../../test/cluster/harness/node';
import { LOCAL_IMAGE_FLAGS } from '../../test/support/images';
import { DEFAULT_PROFILES, PROFILES, parseProfileName, suiteRuns } from './profiles';
import type { ProfileName } from './profiles';
import { buildSuiteArguments, claimedFeatures } from './suite-arguments';
import type { Implementation } from './suite-arguments';
import {
  failureExcerpt,
  mergeReports,
  parseSuiteLog,
  printCounts,
  printOutcomes,
  readReport,
  uncountedFailures,
} from './suite-results';
import type { ProfileCounts, SuiteLog } from './suite-results';

const root = process.cwd();
/** The local cluster, as `npm run cluster:up` starts it and `npm run cluster:down` stops it. */
const INSTANCE = Number(process.env.NMK_CLUSTER_INSTANCE ?? 0);
const clusterDir = process.env.NMK_CLUSTER_DIR ?? join(root, '.cluster');
const workDir = join(clusterDir, 'conformance');
const meshctlPath = join(root, 'dist', 'nginx-meshctl');
/** Where a complete run's report goes, committed with the code it describes. */
const REPORT_PATH = join(root, 'conformance', `report-${GATEWAY_API_VERSION}.yaml`);
/** The value of AUTO_INJECT_LABEL on a namespace whose pods the webhook injects. */
const AUTO_INJECT_ENABLED = 'enabled';
/** The echo images the suite's manifests name (scripts/build-images.sh tags them so). */
const ECHO_IMAGES = ['echo-basic', 'echo-advanced'];
/**
 * Other references the suite's manifests give the same programs: echo-basic by the tags of
 * later manifests, and CoreDNS (a backend of the suite's base manifests) by its upstream name,
 * served by the cluster's own CoreDNS image.
 */
const IMAGE_ALIASES: readonly (readonly [RegExp, readonly string[]])[] = [
  [
    /^registry\.k8s\.io\/gateway-api\/echo-basic:/,
    [
      'registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.2',
      'registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3',
    ],
  ],
  [/\/coredns:v?\d/, ['registry.k8s.io/coredns/coredns:v1.12.2']],
];
const DEFAULT_TIMEOUT_MINUTES = 60;
/** How often a long wait says it is still waiting. */
const HEARTBEAT_MS = 60_000;
const IMPORT_TIMEOUT_MS = 180_000;
const BUILD_TIMEOUT_MS = 40 * 60_000;

/** The implementation the report names: this project, from package.json. */
function implementation(): Implementation {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    homepage?: string;
  };
  const url =
    process.env.CONFORMANCE_URL ?? pkg.homepage ?? 'https://github.com/nginx-meshctl/nginx-meshctl';
  const contact = process.env.CONFORMANCE_CONTACT ?? `${url}/issues`;
  return {
    organization: pkg.name,
    project: pkg.name,
    url,
    version: `v${pkg.version}`,
    contact: contact.split(',').map((each) => each.trim()),
  };
}

interface Options {
  readonly keepCluster: boolean;
  readonly profiles: readonly ProfileName[];
  readonly runTest?: string;
  readonly skipTests: readonly string[];
  readonly timeoutMinutes: number;
}

class UsageError extends Error {}

function parseOptions(argv: readonly string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        'keep-cluster': { type: 'boolean', default: false },
        profile: { type: 'string', multiple: true },
        'run-test': { type: 'string' },
        'skip-tests': { type: 'string' },
        'timeout-minutes': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  const timeoutText = values['timeout-minutes'];
  const timeoutMinutes = timeoutText === undefined ? DEFAULT_TIMEOUT_MINUTES : Number(timeoutText);
  if (!Number.isInteger(timeoutMinutes) || timeoutMinutes <= 0)
    throw new UsageError(
      `invalid --timeout-minutes "${timeoutText ?? ''}": expected whole minutes above 0`,
    );
  let profiles: ProfileName[];
  try {
    profiles = (values.profile ?? DEFAULT_PROFILES).map(parseProfileName);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const runTest = values['run-test'];
  return {
    keepCluster: values['keep-cluster'] ?? false,
    profiles: [...new Set(profiles)],
    ...(runTest === undefined ? {} : { runTest }),
    skipTests: (values['skip-tests'] ?? '')
      .split(',')
      .map((each) => each.trim())
      .filter((each) => each !== ''),
    timeoutMinutes,
  };
}

const started = Date.now();
let stepNumber = 0;

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Runs one numbered step, saying when it starts and ends and, unless the step reports its own
 * progress (quiet), that it is still at it every HEARTBEAT_MS.
 */
async function step<T>(
  total: number,
  title: string,
  run: () => Promise<T>,
  quiet = false,
): Promise<T> {
  stepNumber += 1;
  const begun = Date.now();
  say(`[${String(stepNumber)}/${String(total)}] ${title}...`);
  const timer = setInterval(() => {
    if (!quiet)
      say(`[${String(stepNumber)}/${String(total)}] ${title}: still at it (${seconds(begun)})`);
  }, HEARTBEAT_MS);
  try {
    const result = await run();
    say(`[${String(stepNumber)}/${String(total)}] ${title}: done in ${seconds(begun)}`);
    return result;
  } finally {
    clearInterval(timer);
  }
}

/** Runs a command with its progress (stderr) shown; resolves with its stdout. */
async function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const result = await execa(command, args, {
    reject: false,
    timeout: BUILD_TIMEOUT_MS,
    env,
    stdout: 'pipe',
    stderr: 'inherit',
  });
  if (result.exitCode !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (exit ${String(result.exitCode)})`);
  return result.stdout;
}

/** The bin directory of scripts/build-conformance.sh: the suite and the echo servers. */
async function buildSuite(): Promise<string> {
  const stdout = await run('bash', [join(root, 'scripts', 'build-conformance.sh')]);
  const dir = stdout.trim().split('\n').at(-1) ?? '';
  if (!existsSync(join(dir, 'conformance.test')))
    throw new Error(`scripts/build-conformance.sh printed "${dir}", which has no conformance.test`);
  return dir;
}

/** Builds (or finds) the echo images and imports them into the node's containerd. */
async function importEchoImages(binDir: string, holderPid: number): Promise<string[]> {
  const stdout = await run('bash', [
    join(root, 'scripts', 'build-images.sh'),
    '--archive-dir',
    join(cacheRoot(), 'images'),
    '--conformance-dir',
    binDir,
    ...ECHO_IMAGES,
  ]);
  const archives = stdout
    .trim()
    .split('\n')
    .filter((line) => line.includes('\t'))
    .map((line) => line.split('\t') as [string, string]);
  if (archives.length !== ECHO_IMAGES.length)
    throw new Error(`scripts/build-images.sh gave ${String(archives.length)} echo image archives`);
  for (const [ref, path] of archives) {
    await runCommand(...ctrInNode(holderPid, ['images', 'import', path]), {
      timeoutMs: IMPORT_TIMEOUT_MS,
    }).catch((error: unknown) => {
      throw new Error(`importing ${ref} from ${path} into the node failed`, { cause: error });
    });
  }
  const refs = archives.map(([ref]) => ref);
  // The suite's manifests name some images by other tags; the same images serve under them.
  const listed = await runCommand(...ctrInNode(holderPid, ['images', 'ls', '-q']));
  const present = listed.split('\n').map((line) => line.trim());
  for (const [pattern, aliases] of IMAGE_ALIASES) {
    const source = present.find((ref) => pattern.test(ref));
    if (source === undefined) throw new Error(`no image matching ${String(pattern)} in the node`);
    for (const alias of aliases) {
      if (present.includes(alias)) continue;
      await runCommand(...ctrInNode(holderPid, ['images', 'tag', source, alias]));
      refs.push(alias);
    }
  }
  return refs;
}

/** Prints a test binary's line on the terminal when it tells where the run is. */
function progressLine(line: string): string | undefined {
  const top = /^=== RUN\s+TestConformance\/([^/\s]+)$/.exec(line);
  if (top?.[1] !== undefined) return `  running ${top[1]}`;
  const result = /^ {4}--- (PASS|FAIL): TestConformance\/([^/\s]+) \(([^)]*)\)/.exec(line);
  if (result?.[1] !== undefined)
    return `  ${result[1].toLowerCase()} ${result[2] ?? ''} (${result[3] ?? ''})`;
  if (/Test Setup:|Pods in .* ready|panic:|^FAIL|^ok\s/.test(line)) return `  ${line.trim()}`;
  return undefined;
}

let suiteChild: ChildProcess | undefined;

/** Runs conformance.test, its output to logPath; resolves with its exit code and output. */
function runSuite(
  binary: string,
  args: readonly string[],
  kubeconfig: string,
  logPath: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logPath);
    const chunks: string[] = [];
    let pending = '';
    let lastLine = Date.now();
    let current = 'setup';
    const child = spawn(binary, args, {
      cwd: workDir,
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    suiteChild = child;
    const suiteStarted = Date.now();
    const heartbeat = setInterval(() => {
      if (Date.now() - lastLine >= HEARTBEAT_MS)
        say(`  still running: ${current} (the suite began ${seconds(suiteStarted)} ago)`);
    }, HEARTBEAT_MS);
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      log.write(text);
      chunks.push(text);
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const shown = progressLine(line);
        const name = /^=== (?:RUN|CONT|NAME)\s+TestConformance\/([^/\s]+)/.exec(line)?.[1];
        if (name !== undefined) current = name;
        if (shown !== undefined) {
          say(shown);
          lastLine = Date.now();
        }
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => {
      clearInterval(heartbeat);
      reject(new Error(`could not start ${binary}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearInterval(heartbeat);
      suiteChild = undefined;
      log.end();
      resolve({ code: code ?? (signal === null ? 1 : 128), output: chunks.join('') });
    });
  });
}

function printTests(log: SuiteLog): void {
  say('');
  say('Tests:');
  for (const line of printOutcomes(log.tests)) say(`  ${line}`);
  const failed = log.tests.filter((test) => test.outcome === 'fail');
  for (const test of failed) {
    say('');
    say(`--- ${test.name} failed; the suite's log lines, shortened:`);
    for (const line of failureExcerpt(test.lines)) say(`    ${line}`);
  }
  if (log.suiteOutcome === 'fail' && failed.length === 0) {
    say('');
    say('--- TestConformance failed outside any test; its last log lines:');
    for (const line of failureExcerpt(log.suiteLines, 30)) say(`    ${line}`);
  }
}

function printSummary(profiles: readonly ProfileCounts[]): void {
  say('');
  for (const line of printCounts(profiles)) say(line);
  for (const profile of profiles) {
    if (profile.core.failedTests.length > 0)
      say(`${profile.name} core failures: ${profile.core.failedTests.join(', ')}`);
    if (profile.extended !== undefined && profile.extended.failedTests.length > 0)
      say(`${profile.name} extended failures: ${profile.extended.failedTests.join(', ')}`);
    if (profile.extended !== undefined && profile.extended.unsupportedFeatures.length > 0)
      say(
        `${profile.name} features not claimed: ${profile.extended.unsupportedFeatures.join(', ')}`,
      );
  }
}

async function tearDown(kubeconfig: string | undefined, keep: boolean): Promise<void> {
  if (keep) {
    say(`the cluster keeps running (--keep-cluster): KUBECONFIG=${kubeconfig ?? '?'}`);
    say('stop it with: npm run cluster:down');
    return;
  }
  if (kubeconfig !== undefined && existsSync(meshctlPath)) {
    const removed = await execa(meshctlPath, ['--kubeconfig', kubeconfig, 'remove', '-y'], {
      reject: false,
      timeout: 300_000,
    });
    if (removed.exitCode !== 0)
      say(`removing the mesh failed (the cluster stops anyway): ${removed.stderr}`);
  }
  await stopCluster(clusterDir, INSTANCE);
}

/** Runs the suite once per group of profiles (suiteRuns); undefined when a run wrote no report. */
async function runSuites(
  options: Options,
  total: number,
  binDir: string,
  kubeconfig: string,
): Promise<
  { drafts: string[]; tests: SuiteLog['tests'][number][]; suiteFailed: boolean } | undefined
> {
  const runs = suiteRuns(options.profiles);
  const drafts: string[] = [];
  const tests: SuiteLog['tests'][number][] = [];
  let suiteFailed = false;
  for (const [index, profiles] of runs.entries()) {
    const draft = join(workDir, `report.draft-${String(index + 1)}.yaml`);
    const injected = profiles.some((name) => PROFILES[name].injected);
    const args = buildSuiteArguments({
      profiles,
      implementation: implementation(),
      namespaceLabels: injected ? { [AUTO_INJECT_LABEL]: AUTO_INJECT_ENABLED } : {},
      reportPath: draft,
      timeoutMinutes: options.timeoutMinutes,
      ...(options.runTest === undefined ? {} : { runTest: options.runTest }),
      skipTests: options.skipTests,
    });
    const runLog = join(workDir, runs.length === 1 ? 'suite.log' : `suite-${String(index + 1)}.log`);
    const suite = await step(
      total,
      `running the suite for ${profiles.join(', ')}${injected ? ' (namespaces injected)' : ''} (log: ${runLog})`,
      () => runSuite(join(binDir, 'conformance.test'), args, kubeconfig, runLog),
      true,
    );
    const log = parseSuiteLog(suite.output);
    printTests(log);
    tests.push(...log.tests);
    if (suite.code !== 0) suiteFailed = true;
    if (!existsSync(draft)) {
      say(`\nthe suite wrote no report (exit ${String(suite.code)}): the run did not complete`);
      return undefined;
    }
    drafts.push(draft);
  }
  return { drafts, tests, suiteFailed };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const complete =
    options.runTest === undefined &&
    options.skipTests.length === 0 &&
    DEFAULT_PROFILES.every((name) => options.profiles.includes(name));
  const reportPath = complete ? REPORT_PATH : join(workDir, `report-${GATEWAY_API_VERSION}.yaml`);
  say(
    `Gateway API ${GATEWAY_API_VERSION} conformance: profiles ${options.profiles.join(', ')}; claimed features: ${claimedFeatures(options.profiles).join(', ')}`,
  );
  const unclaimed = new Map(
    options.profiles.flatMap((name) => Object.entries(PROFILES[name].unclaimed)),
  );
  for (const [feature, why] of unclaimed) say(`  not claimed: ${feature} (${why})`);
  const total = 6 + suiteRuns(options.profiles).length;
  let kubeconfig: string | undefined;
  let code = 1;
  try {
    await step(total, 'building nginx-meshctl', () =>
      run('node', [join(root, 'scripts', 'build-binary.mjs'), '--if-stale']),
    );
    const binDir = await step(
      total,
      'building the conformance suite and its echo servers (Go, cached per version)',
      buildSuite,
    );
    const cluster = await step(
      total,
      'starting the local cluster (builds the Kubernetes binaries and images once)',
      () => startCluster({ instance: INSTANCE, stateDir: clusterDir, root }),
    );
    kubeconfig = cluster.kubeconfig;
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    copyFileSync(cluster.kubeconfig, join(clusterDir, 'kubeconfig'));
    const refs = await step(total, "building and importing the suite's echo images", () =>
      importEchoImages(binDir, cluster.holderPid),
    );
    say(`  imported ${refs.join(', ')}`);
    await step(total, 'deploying the mesh', () =>
      run(meshctlPath, ['--kubeconfig', cluster.kubeconfig, 'deploy', ...LOCAL_IMAGE_FLAGS]),
    );
    const outcome = await runSuites(options, total, binDir, cluster.kubeconfig);
    if (outcome === undefined) return 1;
    const { drafts, tests, suiteFailed } = outcome;
    mkdirSync(join(reportPath, '..'), { recursive: true });
    writeFileSync(reportPath, mergeReports(drafts.map((draft) => readFileSync(draft, 'utf8'))));
    const profiles = readReport(readFileSync(reportPath, 'utf8'));
    printSummary(profiles);
    const uncounted = uncountedFailures(tests, profiles);
    if (uncounted.length > 0)
      say(
        `failed, and counted in no profile (they need a feature outside it): ${uncounted.join(', ')}`,
      );
    say(`report: ${reportPath}${complete ? '' : ' (a partial run)'}`);
    // A failed test of a claimed feature makes the claim wrong, whether the report counts it or not.
    const failed = tests.some((test) => test.outcome === 'fail');
    code = failed || suiteFailed ? 1 : 0;
    return code;
  } finally {
    say('');
    await step(
      total,
      options.keepCluster ? 'leaving the cluster up' : 'removing the mesh and stopping the cluster',
      () => tearDown(kubeconfig, options.keepCluster),
    ).catch((error: unknown) =>
      say(`tear-down failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    say(`wall time ${seconds(started)}; exit ${String(code)}`);
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (suiteChild === undefined) {
      say(`\n${signal}: stopped; \`npm run cluster:down\` removes what was started`);
      process.exit(130);
    }
    say(`\n${signal}: stopping the suite; the cluster is cleaned up next`);
    suiteChild.kill('SIGTERM');
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      say(`conformance: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    say(`conformance: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.cause instanceof Error)
      say(`  cause: ${error.cause.message}`);
    process.exitCode = 1;
  },
);
