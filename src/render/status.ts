// `status`: the control plane's components, ready against desired replicas, their version, and
// for a component that is not ready, why each of its pods is not. Pure.
import { renderTable } from './table';

export interface ComponentStatus {
  readonly name: string;
  readonly ready: number;
  readonly desired: number;
  /** The version the component was deployed with, "" when unknown. */
  readonly version: string;
  /** Why pods of a component that is not ready are not, as their probes or the kubelet say. */
  readonly notReady?: readonly PodProblem[];
  /** Pods whose container restarted a short while ago, ready again or not: what ended it. */
  readonly restarted?: readonly PodProblem[];
}

export interface PodProblem {
  readonly pod: string;
  readonly reason: string;
}

/** "<component>: <pod>: <reason>" lines, one per pod that is not ready. */
export function renderNotReady(components: readonly ComponentStatus[]): string {
  const lines = components.flatMap((component) =>
    (component.notReady ?? []).map(
      (problem) => `${component.name}: ${problem.pod}: ${problem.reason}\n`,
    ),
  );
  return lines.length === 0 ? '' : `\nNot ready:\n${lines.map((line) => `  ${line}`).join('')}`;
}

/** "<component>: <pod>: <what ended it>" lines, one per pod whose container restarted lately. */
export function renderRestarted(components: readonly ComponentStatus[]): string {
  const lines = components.flatMap((component) =>
    (component.restarted ?? []).map(
      (restart) => `${component.name}: ${restart.pod}: ${restart.reason}\n`,
    ),
  );
  return lines.length === 0
    ? ''
    : `\nRestarted lately:\n${lines.map((line) => `  ${line}`).join('')}`;
}

/** Every replica ready, and none that says it does not do its job. */
export function isHealthy(component: ComponentStatus): boolean {
  return (
    component.desired > 0 &&
    component.ready >= component.desired &&
    (component.notReady ?? []).length === 0
  );
}

export function renderStatusTable(components: readonly ComponentStatus[]): string {
  return renderTable([
    ['COMPONENT', 'READY', 'VERSION'],
    ...components.map((component) => [
      component.name,
      `${component.ready}/${component.desired}`,
      component.version === '' ? '<unknown>' : `v${component.version.replace(/^v/, '')}`,
    ]),
  ]);
}

/** The machine-readable form of -o json and -o yaml. */
export function statusDocument(components: readonly ComponentStatus[]): object {
  return {
    healthy: components.length > 0 && components.every(isHealthy),
    components: components.map((component) => ({ ...component, healthy: isHealthy(component) })),
  };
}
