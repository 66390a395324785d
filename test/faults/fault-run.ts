// One fault, measured the same way every time: while app traffic flows and `status` is asked
// again and again, the fault is put in place, held, met with a burst of concurrent requests (new
// connections, new mTLS handshakes), and undone (always, even when a step fails); once the API
// server shows the mesh whole and `status` agrees, a mesh-wide setting is changed and the time
// until every sidecar runs it is measured; another burst and a few seconds of traffic follow.
// The outcome lists what broke the promises the mesh makes: no failed request, convergence
// within CONVERGE_LIMIT_S, and a `status` that told the truth while the fault lasted.
import type { KubeRest } from '../cluster/harness/kube-rest';
import {
  changePolicyAndWait,
  clientMaxBodySizeDirective,
  restartDeployment,
  waitForEverySidecar,
} from '../cluster/support/mesh-faults';
import type { StatusSample, StatusWatch } from '../cluster/support/status-watch';
import { watchStatus } from '../cluster/support/status-watch';
import type {
  FailedRequest,
  TrafficGenerator,
  TrafficWindow,
} from '../cluster/support/traffic-generator';
import { CONTROLLER_NAME } from '../../src/manifests/constants';

/** The most a policy change may take to reach every sidecar once the mesh has recovered. */
export const CONVERGE_LIMIT_S = 10;
/** How long the change is waited for before the mesh is repaired for the next fault. */
const CONVERGE_WAIT_MS = 60_000;
/** How long `status` may take to call the mesh healthy once the API server shows it whole. */
const STATUS_HEALTHY_WAIT_MS = 60_000;
/** Pause between two runs of `status`: a killed pod's replacement may be ready in two seconds. */
const STATUS_INTERVAL_MS = 250;
/** Requests sent after convergence, still counted as the fault's. */
const AFTER_REQUESTS = 30;
/** The burst sent while the fault lasts and again after: more than sidecars keep connected. */
const BURST = { count: 100, concurrency: 20 } as const;

/** What `status` must have said while the fault lasted. */
export type StatusExpectation =
  /**
   * Failed, and named each component (by any of its names) on a line that says something is
   * wrong with it, in at least one answer.
   */
  | {
      readonly kind: 'reports';
      readonly components: readonly (readonly string[])[];
      /**
       * Also: the first answer that calls the mesh healthy again names each component as
       * restarted lately (a pod killed and replaced).
       */
      readonly restartNamedAfter?: boolean;
    }
  /** Succeeded every time: a planned change is no outage. */
  | { readonly kind: 'healthy' }
  /** Only recorded. */
  | { readonly kind: 'record' };

/** Failures that the fault makes unavoidable, and why (certificates expired, say). */
export interface ExpectedFailures {
  readonly fromMs: number;
  readonly toMs: number;
  readonly why: string;
}

export interface FaultSpec {
  /** The table's name of the fault. */
  readonly name: string;
  readonly status: StatusExpectation;
  /** Puts the fault in place. */
  inject(): Promise<void>;
  /**
   * Until the API server shows the fault (a Deployment short of ready replicas, say); false when
   * it never did, the fault being over before anyone could see it: then `status` is not judged.
   * Without it, the fault is visible once inject resolves.
   */
  visible?(): Promise<boolean>;
  /** Keeps it in place (a fixed time, or until something happened); none by default. */
  hold?(): Promise<void>;
  /** Undoes it; called even when inject or hold failed. */
  undo(): Promise<void>;
  /** Until the API server shows the mesh whole again. */
  recovered(): Promise<void>;
  /** Known once undone: when requests could not succeed whatever the mesh did. */
  expectedFailures?(): ExpectedFailures | undefined;
  /** What the fault's steps saw (times, counts), for the report. */
  notes?(): readonly string[];
}

export interface FaultContext {
  readonly rest: KubeRest;
  readonly meshNamespace: string;
  /** The namespace of the meshed apps: every sidecar there must apply the change. */
  readonly appsNamespace: string;
  readonly traffic: TrafficGenerator;
  /** The clientMaxBodySize the change after this fault sets (unique per fault). */
  readonly changeTo: string;
}

export interface FaultOutcome {
  readonly name: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Requests completed between start and end. */
  readonly requests: number;
  readonly failed: readonly FailedRequest[];
  /** Failed requests the fault made unavoidable (see FaultSpec.expectedFailures). */
  readonly expected: number;
  /** From recovery until every sidecar ran the change; undefined when it never did. */
  readonly convergeSeconds: number | undefined;
  /** One line: what `status` said while the fault lasted. */
  readonly statusSaid: string;
  readonly statusSamples: readonly StatusSample[];
  /** Broken promises, one line each; empty when the mesh kept them all. */
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

/** The line of a `status` answer that says what is wrong (or its last line). */
export function statusLine(sample: StatusSample): string {
  const lines = sample.output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const error =
    lines.find((line) => line.startsWith('Error:')) ??
    lines.find((line) => /unavailable|not ready|refused|timeout/i.test(line));
  return `exit ${sample.exitCode}: ${error ?? lines.at(-1) ?? ''}`;
}

function describeFailures(failed: readonly FailedRequest[]): string {
  const shown = failed
    .slice(0, 20)
    .map((each) => `${new Date(each.at).toISOString()} ${each.outcome} after ${each.ms}ms`);
  return [...shown, ...(failed.length > 20 ? [`… and ${failed.length - 20} more`] : [])].join('; ');
}

/** Words of a line that reports trouble. */
const TROUBLE =
  /unavailable|not ready|unready|waiting|down|expired|fail|refused|timed? ?out|error/i;

/** Whether a line of output names the component as restarted a moment ago. */
export function namesRestart(output: string, names: readonly string[]): boolean {
  return output
    .split('\n')
    .some(
      (line) => names.some((name) => line.includes(name)) && /\brestarted \d+s ago\b/.test(line),
    );
}

/** Whether a line of output names the component as not ready (a table row "name 0/1" counts). */
export function namesTrouble(output: string, names: readonly string[]): boolean {
  return output.split('\n').some((line) => {
    if (!names.some((name) => line.includes(name))) return false;
    if (TROUBLE.test(line)) return true;
    const counts = /\b(\d+)\/(\d+)\b/.exec(line);
    return counts !== null && (Number(counts[1]) < Number(counts[2]) || counts[2] === '0');
  });
}

/** Checks the answers given in [fromMs, toMs) against the expectation; returns problems. */
function judgeStatus(
  expectation: StatusExpectation,
  samples: readonly StatusSample[],
  fromMs: number,
  toMs: number,
): { problems: string[]; said: string } {
  const during = samples.filter((sample) => sample.at >= fromMs && sample.at < toMs);
  const failing = during.filter((sample) => sample.exitCode !== 0);
  const first = failing[0];
  const said =
    first === undefined
      ? `exit 0 in all ${during.length} answers`
      : `${statusLine(first)} (failed ${failing.length} of ${during.length})`;
  switch (expectation.kind) {
    case 'record':
      return { problems: [], said };
    case 'healthy':
      return {
        problems:
          failing.length === 0
            ? []
            : [`status failed during a planned change: ${failing.map(statusLine).join(' | ')}`],
        said,
      };
    case 'reports': {
      // A crash the kubelet mends within a second may be over before status reads the pod; the
      // restart status names afterwards reports it as truly.
      const since = samples.filter((sample) => sample.at >= fromMs);
      const problems = expectation.components
        .filter(
          (names) =>
            !failing.some((sample) => namesTrouble(sample.output, names)) &&
            !since.some((sample) => namesRestart(sample.output, names)),
        )
        .map(
          (names) =>
            `status never named ${names.join(' or ')} as not ready while the fault lasted (${during.length} answers, ${failing.length} failed${first === undefined ? '' : `; first: ${statusLine(first)}`})`,
        );
      return { problems, said };
    }
  }
}

/** When `status` first succeeded at or after fromMs, waiting for it at most STATUS_HEALTHY_WAIT_MS. */
async function statusHealthySince(
  samples: () => readonly StatusSample[],
  fromMs: number,
): Promise<number | undefined> {
  const deadline = Date.now() + STATUS_HEALTHY_WAIT_MS;
  while (Date.now() < deadline) {
    const healthy = samples().find((sample) => sample.at >= fromMs && sample.exitCode === 0);
    if (healthy !== undefined) return healthy.at;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return undefined;
}

/**
 * The change after the fault, measured from recovery (from the change itself when `status` never
 * called the mesh healthy: that wait is a problem of its own); repairs the controller if the
 * change never lands.
 */
async function measureConvergence(
  context: FaultContext,
  healthyAt: number | undefined,
  problems: string[],
  notes: string[],
): Promise<number | undefined> {
  const directive = clientMaxBodySizeDirective(context.changeTo);
  const applied = await changePolicyAndWait(
    context.rest,
    { meshNamespace: context.meshNamespace, namespace: context.appsNamespace },
    context.changeTo,
    CONVERGE_WAIT_MS,
  );
  const recoveredAt = healthyAt ?? applied.changedAt;
  if (applied.at !== undefined) {
    const converge = (applied.at - recoveredAt) / 1000;
    if (converge > CONVERGE_LIMIT_S)
      problems.push(
        `the change took ${converge.toFixed(1)} s after recovery to reach every sidecar (limit ${CONVERGE_LIMIT_S} s)`,
      );
    return converge;
  }
  problems.push(
    `the change (clientMaxBodySize ${context.changeTo}) never reached ${applied.behind.join(', ')} within ${CONVERGE_WAIT_MS / 1000} s`,
  );
  // The next fault needs a working mesh: a new controller publishes again.
  await restartDeployment(context.meshNamespace, CONTROLLER_NAME);
  const repaired = await waitForEverySidecar(
    context.rest,
    context.appsNamespace,
    directive,
    CONVERGE_WAIT_MS,
  );
  notes.push(
    repaired.at === undefined
      ? 'still not converged after restarting the controller'
      : 'converged only after the controller was restarted',
  );
  return undefined;
}

interface Applied {
  readonly injectedAt: number;
  /** When the API server showed the fault; undefined when it never did. */
  readonly seenAt: number | undefined;
  readonly undoneAt: number;
}

/**
 * Puts the fault in place, asks `status` as soon as the API server shows it, holds it, meets it
 * with a burst, and undoes it; returns the times.
 */
async function applyFault(
  spec: FaultSpec,
  traffic: TrafficGenerator,
  status: StatusWatch,
  problems: string[],
): Promise<Applied> {
  const injectedAt = Date.now();
  let seenAt: number | undefined;
  try {
    await spec.inject();
    if ((await spec.visible?.()) ?? true) {
      seenAt = Date.now();
      void status.runNow();
    }
    await spec.hold?.();
    await traffic.burst(BURST.count, BURST.concurrency);
  } catch (error) {
    problems.push(`the fault could not be put in place: ${(error as Error).message}`);
  }
  try {
    await spec.undo();
  } catch (error) {
    problems.push(`the fault could not be undone: ${(error as Error).message}`);
  }
  return { injectedAt, seenAt, undoneAt: Date.now() };
}

/** Splits the window's failures into unavoidable ones and the rest; the rest are problems. */
function judgeFailures(
  window: TrafficWindow,
  expected: ExpectedFailures | undefined,
  problems: string[],
  notes: string[],
): number {
  const unavoidable = window.failed.filter(
    (each) => expected !== undefined && each.at >= expected.fromMs && each.at < expected.toMs,
  );
  const unexpected = window.failed.filter((each) => !unavoidable.includes(each));
  if (unexpected.length > 0)
    problems.push(
      `${unexpected.length} of ${window.completed} requests failed: ${describeFailures(unexpected)}`,
    );
  if (unavoidable.length > 0 && expected !== undefined)
    notes.push(
      `${unavoidable.length} requests failed ${expected.why} (${new Date(expected.fromMs).toISOString()} to ${new Date(expected.toMs).toISOString()}): ${describeFailures(unavoidable)}`,
    );
  if (window.completed === 0) problems.push('no request completed while the fault was measured');
  return unavoidable.length;
}

/** Runs the fault in context; never throws for a broken promise (see problems). */
export async function measureFault(context: FaultContext, spec: FaultSpec): Promise<FaultOutcome> {
  const { traffic } = context;
  const problems: string[] = [];
  const notes: string[] = [];
  const startedAt = Date.now();
  if (!(await traffic.waitForCompleted(10, 20_000)))
    notes.push('requests were failing, or none completed, before the fault');
  const status = watchStatus(context.meshNamespace, STATUS_INTERVAL_MS);
  const { injectedAt, seenAt, undoneAt } = await applyFault(spec, traffic, status, problems);
  let wholeAt = undoneAt;
  try {
    await spec.recovered();
    wholeAt = Date.now();
  } catch (error) {
    problems.push(`the mesh did not recover: ${(error as Error).message}`);
  }
  const healthyAt = await statusHealthySince(() => status.samples(), wholeAt);
  const samples = await status.stop();
  if (healthyAt === undefined)
    problems.push(
      `status did not call the mesh healthy within ${STATUS_HEALTHY_WAIT_MS / 1000} s of its recovery: ${samples.slice(-1).map(statusLine).join('')}`,
    );
  const healthy = samples.find((sample) => sample.at === healthyAt);
  if (
    spec.status.kind === 'reports' &&
    spec.status.restartNamedAfter === true &&
    healthy !== undefined
  ) {
    const unnamed = spec.status.components.filter((names) => !namesRestart(healthy.output, names));
    if (unnamed.length > 0)
      problems.push(
        `status called the mesh healthy without naming ${unnamed.map((names) => names.join(' or ')).join(', ')} as restarted lately: ${healthy.output.trim().split('\n').join(' | ')}`,
      );
  }
  notes.push(
    `fault held ${seconds(undoneAt - injectedAt)} s; whole ${seconds(wholeAt - undoneAt)} s after undo; status healthy ${healthyAt === undefined ? 'never' : `${seconds(healthyAt - wholeAt)} s later`}`,
  );
  const judged = judgeStatus(spec.status, samples, seenAt ?? injectedAt, wholeAt);
  if (seenAt !== undefined || spec.status.kind !== 'reports') problems.push(...judged.problems);
  else notes.push('the API server never showed the fault: it was over before status could see it');
  const convergeSeconds = await measureConvergence(context, healthyAt, problems, notes).catch(
    (error: unknown) => {
      problems.push(`the change after the fault failed: ${(error as Error).message}`);
      return undefined;
    },
  );
  await traffic.burst(BURST.count, BURST.concurrency);
  await traffic.waitForCompleted(AFTER_REQUESTS, 20_000);
  const endedAt = Date.now();
  notes.push(...(spec.notes?.() ?? []));
  const window = traffic.between(startedAt, endedAt);
  const expected = judgeFailures(window, spec.expectedFailures?.(), problems, notes);
  return {
    name: spec.name,
    startedAt,
    endedAt,
    requests: window.completed,
    failed: window.failed,
    expected,
    convergeSeconds,
    statusSaid: judged.said,
    statusSamples: samples,
    problems,
    notes,
  };
}
