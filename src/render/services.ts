// The `services` table: each mesh Service with its upstream addresses and ports. Pure.
import { renderTable } from './table';

export interface MeshService {
  readonly namespace: string;
  readonly name: string;
  readonly ports: readonly number[];
  /** Endpoint addresses of the Service's EndpointSlices, in the order found. */
  readonly addresses: readonly string[];
}

/** By namespace, then name: the order of the table and of -o json|yaml. */
export function sortServices(services: readonly MeshService[]): MeshService[] {
  return [...services].sort((a, b) =>
    a.namespace === b.namespace
      ? a.name.localeCompare(b.name)
      : a.namespace.localeCompare(b.namespace),
  );
}

/**
 * One row per upstream address, the Service named on its first; no blank row between Services
 * (NGINX Service Mesh printed one after each), so that every line is an entry.
 */
export function renderServices(services: readonly MeshService[]): string {
  const rows: string[][] = [['Service', 'Upstream', 'Port']];
  for (const service of sortServices(services)) {
    const ports = service.ports.length === 0 ? '<none>' : service.ports.join(',');
    const addresses = service.addresses.length === 0 ? ['<none>'] : service.addresses;
    addresses.forEach((address, index) => {
      rows.push([index === 0 ? `${service.namespace}/${service.name}` : '', address, ports]);
    });
  }
  return renderTable(rows);
}
