// A small REST client for the test cluster's own machinery (node agent, harness). It takes TLS
// settings from the kubeconfig through @kubernetes/client-node and speaks plain JSON over HTTPS,
// so every request and watch stays visible and bounded.
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
}

export class KubeRestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(message);
  }
}

export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

export interface KubeRest {
  readonly server: string;
  /** headers go to the object behind a proxy path (the API server passes them on). */
  request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    headers?: Readonly<Record<string, string>>,
  ): Promise<T>;
  /**
   * Streams watch events until the server closes the stream, the signal aborts, or an ERROR
   * event arrives (returned to the caller, who relists on 410 Gone).
   */
  watch<T>(
    path: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void>;
  close(): void;
}

const REQUEST_TIMEOUT_MS = 30_000;

export async function createKubeRest(kubeconfigPath: string): Promise<KubeRest> {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new Error(`${kubeconfigPath}: no current cluster`);
  const tls: https.RequestOptions = {};
  await config.applyToHTTPSOptions(tls);
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 16,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
  });
  const base = new URL(cluster.server);

  function send(
    method: string,
    path: string,
    body: string | undefined,
    contentType: string,
    options: { timeoutMs: number; headers?: Readonly<Record<string, string>> },
  ): Promise<IncomingMessage> {
    const { timeoutMs, headers: extraHeaders = {} } = options;
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          path,
          method,
          agent,
          headers: {
            ...extraHeaders,
            ...(tls.headers ?? {}),
            Accept: 'application/json',
            ...(body === undefined
              ? {}
              : { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }),
          },
          timeout: timeoutMs,
        },
        resolve,
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs}ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async function readAll(res: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  return {
    server: cluster.server,
    async request<T>(
      method: string,
      path: string,
      body?: unknown,
      contentType = 'application/json',
      headers?: Readonly<Record<string, string>>,
    ) {
      const res = await send(
        method,
        path,
        body === undefined ? undefined : JSON.stringify(body),
        contentType,
        { timeoutMs: REQUEST_TIMEOUT_MS, ...(headers === undefined ? {} : { headers }) },
      );
      const text = await readAll(res);
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        let message = text;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          // not a Status object
        }
        throw new KubeRestError(`${method} ${path}: ${status} ${message}`, status, text);
      }
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
    async watch<T>(
      path: string,
      resourceVersion: string,
      onEvent: (event: WatchEvent<T>) => void,
      signal: AbortSignal,
    ) {
      const separator = path.includes('?') ? '&' : '?';
      const url = `${path}${separator}watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion=${encodeURIComponent(resourceVersion)}`;
      const res = await send('GET', url, undefined, 'application/json', { timeoutMs: 300_000 });
      if ((res.statusCode ?? 0) !== 200) {
        const text = await readAll(res);
        throw new KubeRestError(
          `watch ${path}: ${res.statusCode} ${text}`,
          res.statusCode ?? 0,
          text,
        );
      }
      const onAbort = (): void => void res.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      let buffered = '';
      try {
        for await (const chunk of res) {
          buffered += (chunk as Buffer).toString('utf8');
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line !== '') onEvent(JSON.parse(line) as WatchEvent<T>);
            newline = buffered.indexOf('\n');
          }
        }
      } catch (error) {
        if (!signal.aborted) throw error;
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
    close: () => agent.destroy(),
  };
}
