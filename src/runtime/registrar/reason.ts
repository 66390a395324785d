// Failures as one line, for logs, refusals and readiness: @kubernetes/client-node reports an
// unreachable API server as "fetch failed" (the cause holds why) and an error status as a
// multi-line dump of the response, whose Status message is what a reader needs.

const MAX_REASON_LENGTH = 300;

function statusMessage(body: unknown): string | undefined {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const message = (status as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message !== '' ? message : undefined;
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, body } = error as { code?: unknown; body?: unknown };
  if (typeof code === 'number') {
    const message = statusMessage(body);
    if (message !== undefined) return `the API server answered ${code}: ${message}`;
  }
  // A message that names its cause already (ours do) is not followed by it again.
  const cause: unknown = error.cause;
  return cause instanceof Error && cause.message !== '' && !error.message.includes(cause.message)
    ? `${error.message}: ${cause.message}`
    : error.message;
}

/** A thrown value as one line of at most 300 characters. */
export function reasonOf(error: unknown): string {
  const line = messageOf(error).replace(/\s+/g, ' ').trim();
  return line.length > MAX_REASON_LENGTH ? `${line.slice(0, MAX_REASON_LENGTH - 1)}…` : line;
}
