// --prometheus-address: NSM's "<service-name>.<namespace>:<port>", or an http(s) URL. Pure.

const SERVICE_ADDRESS =
  /^([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.([a-z0-9](?:[-a-z0-9]*[a-z0-9])?):(\d{1,5})$/;

export type PrometheusAddress =
  | { readonly kind: 'unset' }
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'invalid'; readonly message: string };

/**
 * The base URL of the Prometheus HTTP API. A Service address resolves through cluster DNS as
 * <service>.<namespace>.svc, over plain HTTP (as NSM: Prometheus with TLS needs a URL).
 */
export function parsePrometheusAddress(text: string): PrometheusAddress {
  const value = text.trim();
  if (value === '') return { kind: 'unset' };
  const invalid = (): PrometheusAddress => ({
    kind: 'invalid',
    message: `invalid --prometheus-address "${text}": expected <service-name>.<namespace>:<port> or an http(s) URL`,
  });
  if (/^https?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return invalid();
    }
    if (url.search !== '' || url.hash !== '') return invalid();
    return { kind: 'url', url: url.toString().replace(/\/+$/, '') };
  }
  const match = SERVICE_ADDRESS.exec(value);
  if (match === null || Number(match[3]) < 1 || Number(match[3]) > 65535) return invalid();
  return { kind: 'url', url: `http://${match[1]}.${match[2]}.svc:${match[3]}` };
}
