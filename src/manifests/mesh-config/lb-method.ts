// Load-balancing methods on open-source NGINX. NGINX Service Mesh offers least_time variants,
// which only NGINX Plus has; they fall back to the nearest open-source method. Pure.
import type { NginxLbMethod } from './deploy-flags';

/**
 * The method open-source NGINX runs for an NGINX Service Mesh method: least_time variants become
 * least_conn, "random two least_time…" becomes "random two least_conn"; others are unchanged.
 */
export function openSourceLbMethod(method: NginxLbMethod): NginxLbMethod {
  if (method.startsWith('least_time')) return 'least_conn';
  if (method.startsWith('random two least_time')) return 'random two least_conn';
  return method;
}

/** The warning for a method that falls back, naming where it was set; undefined when it runs as is. */
export function lbMethodFallbackWarning(method: NginxLbMethod, where: string): string | undefined {
  const used = openSourceLbMethod(method);
  return used === method
    ? undefined
    : `${where} "${method}": least_time is only available in NGINX Plus; using "${used}"`;
}
