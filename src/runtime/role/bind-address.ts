// Bind addresses of role servers, in controller-runtime's format.

/** Parses "host:port" or ":port" (all interfaces) as controller-runtime's bind addresses. */
export function parseBindAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  const host = (match[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host === '' ? '::' : host, port };
}
