// `status`: the control plane's components, ready against desired replicas, and their version.
// Pure.
import { renderTable } from './table';

export interface ComponentStatus {
  readonly name: string;
  readonly ready: number;
  readonly desired: number;
  /** The version the component was deployed with, "" when unknown. */
  readonly version: string;
}

export function isHealthy(component: ComponentStatus): boolean {
  return component.desired > 0 && component.ready >= component.desired;
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
