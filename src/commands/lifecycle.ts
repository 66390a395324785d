// What deploy, upgrade and remove share: the cluster connection, the wait budget, progress over
// titled steps, and NGINX Service Mesh's two-stage signal handling (the first signal stops at the
// next predictable point, the second stops at once).
import { InterruptedError, MeshctlError } from '../errors';
import { formatDuration } from '../manifests/duration';
import type { Clock } from '../runtime/clock';
import type { Io } from '../runtime/io';
import type { KubeAccess } from '../runtime/kube/access';
import { KubeClient } from '../runtime/kube/client';
import type { Progress } from '../runtime/progress';
import { createProgress } from '../runtime/progress';
import type { Prompter } from '../runtime/prompt';
import { isYes } from '../runtime/prompt';
import type { SignalSource, TerminationSignal } from '../runtime/signals';
import type { InstallStep } from '../manifests/install/plan';
import { renderYamlDocuments } from '../render/yaml-documents';
import { applyStep } from '../runtime/install/apply';
import type { Installation } from '../runtime/install/inventory';
import { findInstallation, isEmpty } from '../runtime/install/inventory';
import type { WaitContext } from '../runtime/install/waits';
import type { GlobalOptions } from './global-flags';
import type { ActionContext } from './spec';

export interface LifecycleDeps {
  readonly io: Io;
  readonly kube: KubeAccess;
  readonly clock: Clock;
  readonly signals: SignalSource;
  readonly prompt: Prompter;
}

/** How long deploy, upgrade and remove wait in all, unless -t/--timeout says otherwise. */
export const LIFECYCLE_TIMEOUT_MS = 5 * 60_000;

export const TIMEOUT_NOTE = `-t/--timeout bounds the whole operation here (default ${formatDuration(LIFECYCLE_TIMEOUT_MS)}, not the usual 5s).`;

/** The wait budget: -t when given on the command line, else five minutes. */
export function budgetOf(context: ActionContext, globals: GlobalOptions): number {
  return context.changed('timeout') ? globals.timeoutMs : LIFECYCLE_TIMEOUT_MS;
}

export async function connectClient(
  deps: LifecycleDeps,
  globals: GlobalOptions,
): Promise<KubeClient> {
  const connection = await deps.kube.connect({
    kubeconfig: globals.kubeconfig,
    // One request never waits longer than 30 s, whatever -t says.
    timeoutMs: Math.min(Math.max(globals.timeoutMs, 5_000), 30_000),
  });
  return new KubeClient(connection);
}

/** Asks for a yes, or refuses when no one can answer. -y skips the question. */
export async function confirm(deps: LifecycleDeps, yes: boolean, question: string): Promise<void> {
  if (yes) return;
  if (!deps.prompt.interactive) {
    throw new MeshctlError('refusing to continue without confirmation: stdin is not a terminal', {
      hint: 'Run it again with -y/--yes to confirm.',
    });
  }
  const answer = await deps.prompt.ask(`${question}\nDo you want to continue? [y/N] `);
  if (!isYes(answer)) throw new InterruptedError('Aborted.');
}

/**
 * An operation that can be stopped: the first signal aborts `signal` (the current wait ends and
 * the operation cleans up), the second aborts `cleanupSignal` too (cleanup stops at once).
 */
export interface SignalScope {
  readonly signal: AbortSignal;
  readonly cleanupSignal: AbortSignal;
  /** The first signal received, if any. */
  received(): TerminationSignal | undefined;
  close(): void;
}

export function signalScope(deps: LifecycleDeps, doing: string): SignalScope {
  const first = new AbortController();
  const second = new AbortController();
  let got: TerminationSignal | undefined;
  const stop = deps.signals.onSignal((name) => {
    if (got === undefined) {
      got = name;
      deps.io.err.write(
        `Received signal while ${doing}, waiting for a predictable state before aborting\n(To exit immediately, press ^C again)\n`,
      );
      first.abort(new InterruptedError(`interrupted by ${name}`));
      return;
    }
    deps.io.err.write(`Exiting immediately on signal ${name}...\n`);
    second.abort(new InterruptedError(`interrupted by ${name}`));
  });
  return {
    signal: first.signal,
    cleanupSignal: second.signal,
    received: () => got,
    close: stop,
  };
}

export interface TitledStep {
  readonly title: string;
  run(): Promise<void>;
}

/** Runs steps in order with progress; the failing step is marked and its error rethrown. */
export async function runSteps(progress: Progress, steps: readonly TitledStep[]): Promise<void> {
  for (const step of steps) {
    progress.start(step.title);
    try {
      await step.run();
    } catch (error) {
      progress.fail();
      throw error;
    }
    progress.succeed();
  }
}

/** base64 of UTF-8 text: the install plan's encoder (pure code has no Buffer). */
export const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Each step of an install plan as a titled step that applies it and waits. */
export function planSteps(plan: readonly InstallStep[], context: WaitContext): TitledStep[] {
  return plan.map((step) => ({ title: step.title, run: () => applyStep(step, context) }));
}

/**
 * --dry-run: the plan's objects as one YAML stream for kubectl apply -f -, a step's note as a
 * comment before its objects.
 */
export async function printPlan(io: Io, plan: readonly InstallStep[]): Promise<void> {
  const { stringify } = await import('yaml');
  for (const step of plan) {
    if (step.note !== undefined) io.out.write(`# ${step.note}\n`);
    io.out.write(renderYamlDocuments(step.objects, stringify));
  }
}

export async function waitContext(
  deps: LifecycleDeps,
  client: KubeClient,
  budgetMs: number,
  signal: AbortSignal,
): Promise<WaitContext> {
  return {
    client,
    clock: deps.clock,
    progress: await createProgress(deps.io, deps.clock),
    signal,
    deadline: deps.clock.now().getTime() + budgetMs,
    budgetMs,
  };
}

/**
 * The mesh installed in namespace, or NGINX Service Mesh's error when nothing of it is there (a
 * partial installation counts: remove finishes it, supportpkg describes it).
 */
export async function requireInstallation(
  client: KubeClient,
  namespace: string,
): Promise<Installation> {
  const installation = await findInstallation(client, namespace);
  if (isEmpty(installation)) {
    throw new MeshctlError(
      installation.namespaceExists
        ? `NGINX Service Mesh installation not found in namespace '${namespace}'`
        : `namespace '${namespace}' not found`,
      { hint: 'Use -n/--namespace to name the namespace the mesh was deployed into.' },
    );
  }
  return installation;
}
