// The door to the Kubernetes API. @kubernetes/client-node is heavy (hundreds of milliseconds to
// load), so it is imported only when a command actually talks to a cluster, and then only for
// the kubeconfig: requests go over Node's own https with the credentials it resolves.
import { existsSync } from 'node:fs';
import type * as https from 'node:https';
import { MeshctlError } from '../../errors';

export interface KubeTarget {
  /** Path of the kubeconfig file; when it does not exist, client-go's default rules apply. */
  readonly kubeconfig: string;
  readonly timeoutMs: number;
}

export interface RawResponse {
  readonly status: number;
  readonly body: string;
}

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API path with its query, e.g. /api/v1/namespaces?labelSelector=... */
  readonly path: string;
  /** JSON-serialised unless it is already a string. */
  readonly body?: unknown;
  readonly contentType?: string;
  /** Overrides the target's timeout (long waits use their own deadlines). */
  readonly timeoutMs?: number;
  /** Headers for the object behind a proxy path; the API server passes them on. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A long-lived GET whose body is read line by line as it arrives (a watch: one event a line). */
export interface KubeStreamRequest {
  /** API path with its query. */
  readonly path: string;
  /** Called with every complete, non-empty line of a 2xx body, in order. */
  readonly onLine: (line: string) => void;
  /** Called once the server has answered with its status, before any line. */
  readonly onOpen?: (status: number) => void;
  /** Aborting ends the request; stream() then rejects with the signal's reason. */
  readonly signal: AbortSignal;
  /** The longest silence allowed between two chunks before the request fails. */
  readonly idleTimeoutMs: number;
}

/** An authenticated connection to one API server. */
export interface KubeConnection {
  /** Server URL of the current context. */
  readonly server: string;
  request(request: KubeRequest): Promise<RawResponse>;
  /**
   * Resolves when the server ends the response: for a 2xx answer with an empty body (its lines
   * went to onLine), otherwise with the whole body (the Status explaining the failure).
   */
  stream(request: KubeStreamRequest): Promise<RawResponse>;
}

export interface KubeAccess {
  /** GET a raw API path (e.g. a Service proxy path) with the kubeconfig's credentials. */
  getRaw(target: KubeTarget, path: string): Promise<RawResponse>;
  /** Loads the kubeconfig once for many requests. */
  connect(target: KubeTarget): Promise<KubeConnection>;
}

/** Raised when no cluster can be reached or configured; messages follow NSM's wording. */
export class KubeConnectError extends MeshctlError {}

const CONNECT_PREFIX = 'unable to connect to Kubernetes, please validate your kubeconfig';

export function createKubeAccess(env: Readonly<Record<string, string | undefined>>): KubeAccess {
  const connect = async (target: KubeTarget): Promise<KubeConnection> => {
    const inCluster = env.KUBERNETES_SERVICE_HOST !== undefined;
    if (!existsSync(target.kubeconfig) && !inCluster) {
      throw new KubeConnectError(`${CONNECT_PREFIX}: kubeconfig "${target.kubeconfig}" not found`);
    }
    const { KubeConfig } = await import('@kubernetes/client-node');
    const config = new KubeConfig();
    try {
      if (existsSync(target.kubeconfig)) config.loadFromFile(target.kubeconfig);
      else config.loadFromCluster();
    } catch (error) {
      throw new KubeConnectError(`${CONNECT_PREFIX}: ${String(error)}`, { cause: error });
    }
    const cluster = config.getCurrentCluster();
    if (cluster === null) {
      throw new KubeConnectError(`${CONNECT_PREFIX}: no current context is set`);
    }
    return {
      server: cluster.server,
      async request(request) {
        const body =
          request.body === undefined
            ? undefined
            : typeof request.body === 'string'
              ? request.body
              : JSON.stringify(request.body);
        const options: https.RequestOptions = {
          method: request.method,
          headers: {
            ...request.headers,
            Accept: 'application/json',
            ...(body === undefined
              ? {}
              : {
                  'Content-Type': request.contentType ?? 'application/json',
                  'Content-Length': Buffer.byteLength(body),
                }),
          },
        };
        // Credentials may expire (exec plugins, rotated tokens): resolved for every request.
        await config.applyToHTTPSOptions(options);
        return send(
          new URL(request.path, cluster.server),
          options,
          body,
          request.timeoutMs ?? target.timeoutMs,
        );
      },
      async stream(request) {
        const options: https.RequestOptions = {
          method: 'GET',
          headers: { Accept: 'application/json' },
        };
        await config.applyToHTTPSOptions(options);
        return sendStreaming(new URL(request.path, cluster.server), options, request);
      },
    };
  };
  return {
    connect,
    async getRaw(target, path) {
      return (await connect(target)).request({ method: 'GET', path });
    },
  };
}

async function send(
  url: URL,
  options: https.RequestOptions,
  body: string | undefined,
  timeoutMs: number,
): Promise<RawResponse> {
  // Loading TLS costs milliseconds at every start; only requests pay for it.
  const transport =
    url.protocol === 'http:' ? await import('node:http') : await import('node:https');
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { ...options, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => {
      req.destroy(new MeshctlError(`request to ${url.origin} timed out after ${timeoutMs}ms`));
    });
    req.on('error', (error) =>
      reject(
        error instanceof MeshctlError
          ? error
          : new KubeConnectError(`${CONNECT_PREFIX}: ${error.message}`, { cause: error }),
      ),
    );
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Splits chunks into lines, keeping a partial last line until its end arrives. */
function lineSplitter(onLine: (line: string) => void): { push(text: string): void; end(): void } {
  let pending = '';
  const emit = (line: string): void => {
    if (line.trim() !== '') onLine(line);
  };
  return {
    push(text) {
      const lines = (pending + text).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    },
    end: () => emit(pending),
  };
}

async function sendStreaming(
  url: URL,
  options: https.RequestOptions,
  request: KubeStreamRequest,
): Promise<RawResponse> {
  const transport =
    url.protocol === 'http:' ? await import('node:http') : await import('node:https');
  const { signal } = request;
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void =>
      reject(
        signal.aborted
          ? (signal.reason as Error)
          : error instanceof MeshctlError
            ? error
            : new KubeConnectError(`${CONNECT_PREFIX}: ${error.message}`, { cause: error }),
      );
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const req = transport.request(
      url,
      { ...options, timeout: request.idleTimeoutMs, signal },
      (res) => {
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status <= 299;
        request.onOpen?.(status);
        const chunks: Buffer[] = [];
        const lines = lineSplitter(request.onLine);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (ok) lines.push(chunk);
          else chunks.push(Buffer.from(chunk));
        });
        res.on('end', () => {
          if (ok) lines.end();
          resolve({ status, body: ok ? '' : Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error(`stream from ${url.origin} closed before its end`));
        });
      },
    );
    req.on('timeout', () => {
      req.destroy(
        new MeshctlError(`stream from ${url.origin} was idle for ${request.idleTimeoutMs}ms`),
      );
    });
    req.on('error', fail);
    req.end();
  });
}
