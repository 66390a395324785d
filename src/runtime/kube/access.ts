// The door to the Kubernetes API. @kubernetes/client-node is heavy (hundreds of milliseconds to
// load), so it is imported only when a command actually talks to a cluster.
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

export interface KubeAccess {
  /** GET a raw API path (e.g. a Service proxy path) with the kubeconfig's credentials. */
  getRaw(target: KubeTarget, path: string): Promise<RawResponse>;
}

/** Raised when no cluster can be reached or configured; messages follow NSM's wording. */
export class KubeConnectError extends MeshctlError {}

export function createKubeAccess(env: Readonly<Record<string, string | undefined>>): KubeAccess {
  return {
    async getRaw(target, path) {
      const inCluster = env.KUBERNETES_SERVICE_HOST !== undefined;
      if (!existsSync(target.kubeconfig) && !inCluster) {
        throw new KubeConnectError(
          `unable to connect to Kubernetes, please validate your kubeconfig: kubeconfig "${target.kubeconfig}" not found`,
        );
      }
      const { KubeConfig } = await import('@kubernetes/client-node');
      const config = new KubeConfig();
      try {
        if (existsSync(target.kubeconfig)) config.loadFromFile(target.kubeconfig);
        else config.loadFromCluster();
      } catch (error) {
        throw new KubeConnectError(
          `unable to connect to Kubernetes, please validate your kubeconfig: ${String(error)}`,
          { cause: error },
        );
      }
      const cluster = config.getCurrentCluster();
      if (cluster === null) {
        throw new KubeConnectError(
          'unable to connect to Kubernetes, please validate your kubeconfig: no current context is set',
        );
      }
      const options: https.RequestOptions = {
        method: 'GET',
        headers: { Accept: 'application/json' },
      };
      await config.applyToHTTPSOptions(options);
      return await request(new URL(path, cluster.server), options, target.timeoutMs);
    },
  };
}

async function request(
  url: URL,
  options: https.RequestOptions,
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
        error instanceof MeshctlError ? error : new MeshctlError(error.message, { cause: error }),
      ),
    );
    req.end();
  });
}
