// `npm test`: the checks, then every test tier, then one summary line CI can read:
// "N passed, N failed". Runs everything even after a failure, so one run shows all problems.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MIN_NODE_MAJOR = 24;

if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
  console.error(
    `test: Node ${process.versions.node} is end-of-life here; run "npm test" so the pinned Node from node_modules is used`,
  );
  process.exit(1);
}

const bin = (name) => join(root, 'node_modules', '.bin', name);

function step(title, command, args) {
  console.error(`\n== ${title}`);
  const started = performance.now();
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  console.error(
    `== ${title}: ${ok ? 'ok' : `FAILED (exit ${result.status ?? result.signal})`} in ${seconds}s`,
  );
  return ok;
}

const failedSteps = [];
const checks = [
  ['check (typecheck, lint, format)', 'npm', ['run', '--silent', 'check']],
  ['build', process.execPath, [join(root, 'scripts', 'build-binary.mjs'), '--if-stale']],
];
for (const [title, command, args] of checks) {
  if (!step(title, command, args)) failedSteps.push(title);
}

// What the tiers build or run, built (or found cached) once before any tier starts, so two
// tiers running side by side never build the same thing at once.
const prepared = [
  [
    'the Kubernetes binaries, CoreDNS and the images',
    process.execPath,
    [join(root, 'scripts', 'run-ts.mjs'), 'test/cluster/harness/cli.ts', 'build'],
  ],
  ['the nginx module', 'bash', [join(root, 'scripts', 'build-ngx-mesh.sh')]],
  ['Jaeger', 'bash', [join(root, 'scripts', 'build-jaeger.sh')]],
  ['helm', 'bash', [join(root, 'scripts', 'build-helm.sh')]],
];
for (const [what, command, args] of prepared) {
  if (!step(`prepare: ${what}`, command, args)) failedSteps.push(`prepare: ${what}`);
}

/**
 * Starts one Jest process over projects: its pid, and a promise of whether it passed and its
 * results file. With a log file, its output goes there and is printed whole when it ends.
 */
function jestRun(title, projects, logFile, env = process.env) {
  const resultsFile = join(root, `.jest-results-${projects[0]}.json`);
  rmSync(resultsFile, { force: true });
  console.error(`\n== ${title}${logFile ? ' (output follows when it ends)' : ''}`);
  const started = performance.now();
  const out = logFile ? openSync(logFile, 'w') : 'inherit';
  const child = spawn(
    bin('jest'),
    [
      '--ci',
      '--runInBand',
      '--passWithNoTests',
      '--json',
      `--outputFile=${resultsFile}`,
      '--selectProjects',
      ...projects,
    ],
    { cwd: root, stdio: ['ignore', out, out], env },
  );
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      if (logFile) {
        closeSync(out);
        process.stderr.write(readFileSync(logFile, 'utf8'));
        rmSync(logFile, { force: true });
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const ok = code === 0;
      console.error(`== ${title}: ${ok ? 'ok' : `FAILED (exit ${code ?? signal})`} in ${seconds}s`);
      resolve({ ok, resultsFile });
    });
  });
  return { pid: child.pid, done };
}

// The unit and integration tiers use the processors; the cluster tier mostly waits on its node.
// They run side by side. After the unit and integration tiers, their process runs the files with
// clusters of their own (the demo, the registry, the cluster's life cycle) and the protocol e2e
// files on a second test cluster; after the cluster tier, its process runs the adversarial tier
// on the shared one, then the e2e and faults tiers, whose bounds a busy machine can break, once
// the first process has ended (test/support/tier-sequencer.cjs has the order,
// test/support/after-other-run.ts the wait).
const sharedInstance = process.env.NMK_TEST_CLUSTER_INSTANCE || '1';
const secondInstance = sharedInstance === '4' ? '5' : '4';
const first = jestRun(
  `tests (unit, golden, integration, own-cluster, e2e-protocols on cluster ${secondInstance})`,
  ['unit', 'integration', 'own-cluster', 'e2e-protocols'],
  join(root, '.jest-unit.log'),
  { ...process.env, NMK_TEST_CLUSTER_INSTANCE: secondInstance },
);
const second = jestRun(
  `tests (cluster, adversarial, then e2e and faults on cluster ${sharedInstance})`,
  ['cluster', 'e2e', 'adversarial', 'faults'],
  undefined,
  { ...process.env, NMK_TEST_AFTER_PID: String(first.pid) },
);
const runs = await Promise.all([first.done, second.done]);
if (!runs.every((run) => run.ok)) failedSteps.push('tests');

let passed = 0;
let failed = 0;
for (const { resultsFile } of runs) {
  try {
    const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
    passed += results.numPassedTests;
    failed += results.numFailedTests + results.numRuntimeErrorTestSuites;
  } catch {
    failed += 1;
  }
  rmSync(resultsFile, { force: true });
}
// A failed check counts as a failed test, so the summary never reads green over a red run.
failed += failedSteps.filter((title) => title !== 'tests').length;
if (failedSteps.length > 0) console.error(`\nfailed: ${failedSteps.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failedSteps.length === 0 && failed === 0 ? 0 : 1;
