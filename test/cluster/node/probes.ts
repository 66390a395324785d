// Readiness, liveness and startup probes, run from the host against the pod's address (the
// host routes to every pod), or inside the pod's network namespace for exec probes.
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';

export interface ProbeTarget {
  readonly podIP: string;
  readonly netns: string;
  readonly container: V1Container;
}

function resolvePort(
  port: number | string | undefined,
  container: V1Container,
): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

function httpProbe(
  probe: NonNullable<V1Probe['httpGet']>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<boolean> {
  const port = resolvePort(probe.port, target.container);
  if (port === undefined) return Promise.resolve(false);
  const transport = probe.scheme === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    const req = transport.request(
      {
        host: probe.host ?? target.podIP,
        port,
        path: probe.path ?? '/',
        method: 'GET',
        timeout: timeoutMs,
        rejectUnauthorized: false,
        headers: Object.fromEntries(
          (probe.httpHeaders ?? []).map((header) => [header.name, header.value]),
        ),
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tcpProbe(port: number | undefined, host: string, timeoutMs: number): Promise<boolean> {
  if (port === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

function execProbe(command: readonly string[], netns: string, timeoutMs: number): Promise<boolean> {
  if (command.length === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...command], {
      stdio: 'ignore',
      timeout: timeoutMs,
    });
    child.once('exit', (code) => resolve(code === 0));
    child.once('error', () => resolve(false));
  });
}

/** One probe attempt; true on success. */
export function runProbe(probe: V1Probe, target: ProbeTarget): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet !== undefined) return httpProbe(probe.httpGet, target, timeoutMs);
  if (probe.tcpSocket !== undefined) {
    return tcpProbe(
      resolvePort(probe.tcpSocket.port, target.container),
      probe.tcpSocket.host ?? target.podIP,
      timeoutMs,
    );
  }
  if (probe.exec !== undefined) return execProbe(probe.exec.command ?? [], target.netns, timeoutMs);
  return Promise.resolve(false);
}
