// The node's part of `kubectl logs`: the API server asks the node's kubelet endpoint
// (daemonEndpoints, here ExternalIP:10250) for /containerLogs/<namespace>/<pod>/<container>, and
// the node answers from the container's log file: the current run's, or with previous=true the
// run before. limitBytes keeps the newest bytes, tailLines the last lines. The API server does not
// verify the kubelet's certificate without --kubelet-certificate-authority: a self-signed one does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import { join } from 'node:path';

/** Where a container's log lives; undefined for a pod this node does not run. */
export type LogFileOf = (
  namespace: string,
  pod: string,
  container: string,
  previous: boolean,
) => string | undefined;

/** The newest part of text: at most limitBytes bytes, then at most tailLines lines. */
export function tailOf(text: Buffer, limitBytes?: number, tailLines?: number): Buffer {
  let result =
    limitBytes === undefined ? text : text.subarray(Math.max(0, text.length - limitBytes));
  if (tailLines !== undefined) {
    const lines = result.toString('utf8').split('\n');
    const ended = lines.at(-1) === '';
    if (ended) lines.pop();
    const kept = tailLines === 0 ? [] : lines.slice(-tailLines);
    result = Buffer.from(
      kept.map((line, index) => (index < kept.length - 1 || ended ? `${line}\n` : line)).join(''),
    );
  }
  return result;
}

const count = (value: string | null): number | undefined =>
  value === null || !/^\d+$/.test(value) ? undefined : Number(value);

function certificate(dir: string): { key: Buffer; cert: Buffer } {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'kubelet-key.pem');
  const cert = join(dir, 'kubelet.pem');
  if (!existsSync(cert))
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=kubelet'],
    ]);
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

export async function startLogServer(
  host: string,
  port: number,
  stateDir: string,
  logFileOf: LogFileOf,
): Promise<Server> {
  const server = createServer(certificate(join(stateDir, 'kubelet')), (req, res) => {
    const url = new URL(req.url ?? '/', 'https://node');
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || match === null) {
      res.writeHead(404).end('not found\n');
      return;
    }
    const [, namespace = '', pod = '', container = ''] = match.map(decodeURIComponent);
    const previous = url.searchParams.get('previous') === 'true';
    const file = logFileOf(namespace, pod, container, previous);
    if (file === undefined || !existsSync(file)) {
      const what = previous ? 'previous terminated container' : 'container';
      res
        .writeHead(404, { 'Content-Type': 'text/plain' })
        .end(`${what} "${container}" in pod "${pod}" not found\n`);
      return;
    }
    const text = tailOf(
      readFileSync(file),
      count(url.searchParams.get('limitBytes')),
      count(url.searchParams.get('tailLines')),
    );
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
