// The adversarial tier's summary: one row per attack (what it was expected to meet, what it met,
// whether the victim's sidecars still converged and its traffic still flowed), printed and
// written beside the test cluster's state as adversarial-report.txt.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderTable } from '../../src/render/table';

export interface AttackOutcome {
  readonly name: string;
  /** What the mesh must answer to the attack. */
  readonly expected: string;
  /** What the attack met, in one line. */
  readonly saw: string;
  /** Seconds until every victim sidecar ran the change made after the attack; undefined: never. */
  readonly convergeSeconds: number | undefined;
  /** Victim requests completed and failed while the attack was measured. */
  readonly requests: number;
  readonly failed: number;
  /** Broken promises, one line each; empty when the mesh held. */
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

export function renderAttackTable(
  outcomes: readonly AttackOutcome[],
  tierSeconds: number,
  limitSeconds: number,
): string {
  const rows = outcomes.map((outcome) => [
    outcome.name,
    outcome.problems.length === 0 ? 'held' : 'BROKEN',
    outcome.convergeSeconds === undefined ? 'never' : outcome.convergeSeconds.toFixed(1),
    `${outcome.failed}/${outcome.requests}`,
    outcome.saw,
  ]);
  return [
    renderTable([
      ['ATTACK', 'MESH', `CONVERGE S (≤${limitSeconds})`, 'VICTIM FAILED/REQUESTS', 'SAW'],
      ...rows,
    ]),
    `tier: ${tierSeconds.toFixed(0)} s`,
    '',
  ].join('\n');
}

function renderDetails(outcomes: readonly AttackOutcome[]): string {
  return outcomes
    .map((outcome) =>
      [
        `${outcome.name} (expected: ${outcome.expected}):`,
        ...outcome.problems.map((problem) => `  problem: ${problem}`),
        ...outcome.notes.map((note) => `  note: ${note}`),
      ].join('\n'),
    )
    .join('\n');
}

/** Prints the report on stderr and writes it into dir; returns the file's path. */
export function publishAttackReport(
  outcomes: readonly AttackOutcome[],
  tierSeconds: number,
  limitSeconds: number,
  dir: string,
): string {
  const text = `${renderAttackTable(outcomes, tierSeconds, limitSeconds)}\n${renderDetails(outcomes)}\n`;
  process.stderr.write(`\nadversarial tier:\n${text}`);
  const path = join(dir, 'adversarial-report.txt');
  writeFileSync(path, text);
  return path;
}
