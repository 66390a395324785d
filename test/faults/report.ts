// The fault tier's summary: one row per fault (failed requests, seconds to converge, what
// `status` said), the requests that failed between faults, printed and written beside the test
// cluster's state as faults-report.txt (the table) and faults-report.json (every detail).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderTable } from '../../src/render/table';
import type { FailedRequest } from '../cluster/support/traffic-generator';
import type { FaultOutcome } from './fault-run';
import { CONVERGE_LIMIT_S } from './fault-run';

export interface FaultReport {
  readonly outcomes: readonly FaultOutcome[];
  /** Failed requests outside every fault's window. */
  readonly between: readonly FailedRequest[];
  readonly tierSeconds: number;
}

function failedCell(outcome: FaultOutcome): string {
  const count = `${outcome.failed.length}/${outcome.requests}`;
  return outcome.expected === 0 ? count : `${count} (${outcome.expected} while unavoidable)`;
}

function convergeCell(outcome: FaultOutcome): string {
  return outcome.convergeSeconds === undefined ? 'never' : outcome.convergeSeconds.toFixed(1);
}

/** The table the closing note quotes. */
export function renderFaultTable(report: FaultReport): string {
  const rows = report.outcomes.map((outcome) => [
    outcome.name,
    failedCell(outcome),
    convergeCell(outcome),
    outcome.problems.length === 0 ? 'ok' : 'FAILED',
    outcome.statusSaid,
  ]);
  return [
    renderTable([
      ['FAULT', 'FAILED/REQUESTS', `CONVERGE S (≤${CONVERGE_LIMIT_S})`, 'RESULT', 'STATUS SAID'],
      ...rows,
    ]),
    `requests failed between faults: ${report.between.length}`,
    `tier: ${report.tierSeconds.toFixed(0)} s`,
    '',
  ].join('\n');
}

/** The problems and notes of every fault, one block each. */
export function renderFaultDetails(report: FaultReport): string {
  return report.outcomes
    .map((outcome) =>
      [
        `${outcome.name}:`,
        ...outcome.problems.map((problem) => `  problem: ${problem}`),
        ...outcome.notes.map((note) => `  note: ${note}`),
      ].join('\n'),
    )
    .join('\n');
}

/** Prints the report on stderr and writes it into dir; returns the table file's path. */
export function publishFaultReport(report: FaultReport, dir: string): string {
  const table = renderFaultTable(report);
  const details = renderFaultDetails(report);
  process.stderr.write(`\nfault tier:\n${table}\n${details}\n`);
  const path = join(dir, 'faults-report.txt');
  writeFileSync(path, `${table}\n${details}\n`);
  writeFileSync(
    join(dir, 'faults-report.json'),
    `${JSON.stringify(
      {
        ...report,
        outcomes: report.outcomes.map((outcome) => ({
          ...outcome,
          statusSamples: outcome.statusSamples.map((sample) => ({
            at: new Date(sample.at).toISOString(),
            exitCode: sample.exitCode,
            output: sample.output,
          })),
        })),
      },
      null,
      2,
    )}\n`,
  );
  return path;
}
