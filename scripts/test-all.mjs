// `npm test`: the checks, then every test tier, then one summary line CI can read:
// "N passed, N failed". Runs everything even after a failure, so one run shows all problems.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
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

const resultsFile = join(root, '.jest-results.json');
rmSync(resultsFile, { force: true });
const testsOk = step(
  'tests (unit, golden, integration, cluster, e2e, faults, adversarial)',
  bin('jest'),
  ['--ci', '--runInBand', '--passWithNoTests', '--json', `--outputFile=${resultsFile}`],
);
if (!testsOk) failedSteps.push('tests');

let passed = 0;
let failed = 0;
try {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
  passed = results.numPassedTests;
  failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
} catch {
  failed += 1;
}
rmSync(resultsFile, { force: true });
// A failed check counts as a failed test, so the summary never reads green over a red run.
failed += failedSteps.filter((title) => title !== 'tests').length;
if (failedSteps.length > 0) console.error(`\nfailed: ${failedSteps.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failedSteps.length === 0 && failed === 0 ? 0 : 1;
