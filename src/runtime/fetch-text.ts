// A document over HTTP(S), as `inject -f <url>` reads it: one GET, bounded in time as NGINX
// Service Mesh bounded it, and in size so that a server cannot exhaust memory.
import { MeshctlError } from '../errors';

/** NGINX Service Mesh's bound on fetching a manifest: one minute. */
export const FETCH_TIMEOUT_MS = 60_000;

export interface FetchTextOptions {
  readonly timeoutMs?: number;
  /** Bodies longer than this are refused rather than read whole. */
  readonly maxBytes: number;
}

interface ErrorLike {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
}

/** Fields of an error from fetch, read by shape: its errors may come from another realm. */
function errorLike(value: unknown): ErrorLike {
  return typeof value === 'object' && value !== null ? value : {};
}

/** Why fetch gave no answer: the timeout, else the socket's error ("connect ECONNREFUSED …"). */
function reasonOf(error: unknown): string {
  const { name, message, cause } = errorLike(error);
  if (name === 'TimeoutError') return 'no answer within the timeout';
  const causeMessage = errorLike(cause).message;
  if (typeof causeMessage === 'string') return causeMessage;
  return typeof message === 'string' ? message : String(error);
}

async function readBounded(response: Response, url: string, maxBytes: number): Promise<string> {
  if (response.body === null) return '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel();
      throw new MeshctlError(
        `http request failed: GET ${url}: the body is over the limit of ${maxBytes} bytes`,
      );
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The body of a GET of `url`. A non-2xx answer is an error in NGINX Service Mesh's words
 * (`http request failed: GET <url> failed: 404 Not Found`); so are no answer and a body too large.
 */
export async function fetchText(url: string, options: FetchTextOptions): Promise<string> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal, redirect: 'follow' });
    if (!response.ok) {
      await response.body?.cancel();
      const status = `${response.status} ${response.statusText}`.trimEnd();
      throw new MeshctlError(`http request failed: GET ${url} failed: ${status}`);
    }
    return await readBounded(response, url, options.maxBytes);
  } catch (error) {
    if (error instanceof MeshctlError) throw error;
    throw new MeshctlError(`http request failed: GET ${url}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}
