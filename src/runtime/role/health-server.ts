// /healthz and /readyz for a role process, as Kubernetes probes expect them.
import * as http from 'node:http';
import { READY_SERVING_PATH } from '../../manifests/constants';
import { closeServer, listen } from '../listen';
import type { Readiness } from './role';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: {
  readonly host: string;
  readonly port: number;
  /** Liveness: not alive when the role is wedged (the kubelet then restarts it). */
  readonly liveness: () => Readiness;
  readonly readiness: () => Readiness;
  /** Whether the role's Service may send it requests (/readyz/serving); default readiness. */
  readonly serving?: () => Readiness;
}): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const state = options.liveness();
      res.writeHead(state.ready ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(state.ready ? 'ok\n' : `not alive: ${state.reason}\n`);
      return;
    }
    if (path === '/readyz' || path === READY_SERVING_PATH) {
      const state =
        path === READY_SERVING_PATH
          ? (options.serving ?? options.readiness)()
          : options.readiness();
      res.writeHead(state.ready ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(state.ready ? 'ok\n' : `not ready: ${state.reason}\n`);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 1_000;
  const port = await listen(server, options.port, options.host);
  return { port, close: () => closeServer(server) };
}
