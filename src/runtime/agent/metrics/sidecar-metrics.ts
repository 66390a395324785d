// The agent's metrics pipeline: a UDP socket on loopback receives nginx's access log as syslog,
// each record is resolved to its peer with the latest snapshot applied and counted, HTTP requests
// and TCP connections in registries of their own; the status server prints both on /metrics.
// Counts live here, in the agent, so nginx reloads keep them.
// Datagrams are best effort: the socket's receive buffer is raised so bursts are not lost.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:dgram';
import type { MeshSnapshot } from '../../../manifests/snapshot/types';
import { parseAccessLogLine } from './access-log';
import { renderLostDatagrams, udpSocketDrops } from './socket-drops';
import type { PeerIndex } from './peers';
import { buildPeerIndex, labelsOf, overflowLabels } from './peers';
import { createRequestRegistry, createTcpRegistry } from './registry';
import type { RequestRegistry } from './registry';

/** Receive buffer asked for; the kernel caps it at net.core.rmem_max. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * How long datagrams gather in the socket's buffer between two reads. Waking the agent for every
 * request (thousands per second) would cost the pod more CPU than counting does, and take it from
 * nginx and the app; a few milliseconds batch the reads. At 10,000 requests per second that is
 * 50 datagrams waiting, far below what the buffer holds.
 */
const READ_PAUSE_MS = 5;
/** The most datagrams libuv reads from a UDP socket for one readiness event. */
const READ_BATCH = 32;

/** The methods of Node's UDP handle that stop and restart reading (libuv uv_udp_recv_stop/start). */
interface ReadSwitch {
  recvStop(): number;
  recvStart(): number;
}

/**
 * A function that, called on a datagram, lets the socket read what is already there, then stops
 * reading for READ_PAUSE_MS; undefined when this Node's handle does not offer the switch (then
 * every datagram is read as it comes).
 */
function readPacer(socket: Socket, closed: () => boolean): (() => void) | undefined {
  // The handle sits in the socket's internal state (Socket.prototype._handle would reach it too,
  // but that accessor is deprecated and prints a warning into every sidecar's log).
  const state = Object.getOwnPropertySymbols(socket).find(
    (symbol) => symbol.description === 'state symbol',
  );
  const handle =
    state === undefined
      ? undefined
      : (socket as unknown as Record<symbol, { handle?: Partial<ReadSwitch> } | undefined>)[state]
          ?.handle;
  if (typeof handle?.recvStop !== 'function' || typeof handle.recvStart !== 'function')
    return undefined;
  const reads = handle as ReadSwitch;
  let pausing = false;
  let batch = 0;
  return () => {
    batch += 1;
    if (pausing) return;
    pausing = true;
    setImmediate(() => {
      // A full batch means more may be waiting: keep reading until a batch comes up short, or
      // the pauses would cap the agent at one batch per pause whatever nginx sends.
      const full = batch >= READ_BATCH;
      batch = 0;
      if (closed()) return;
      if (full) {
        pausing = false;
        return;
      }
      reads.recvStop();
      setTimeout(() => {
        pausing = false;
        if (!closed()) reads.recvStart();
      }, READ_PAUSE_MS).unref();
    });
  };
}

/** The kernel's drops for the receiver's socket, read from this network namespace's table. */
function kernelDrops(host: string, port: number): number | undefined {
  try {
    return udpSocketDrops(readFileSync('/proc/net/udp', 'utf8'), host, port);
  } catch {
    return undefined;
  }
}

/** Where the receiver listens and which syslog tag it counts. */
export interface SidecarMetricsOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly tag: string;
}

/** The running pipeline. */
export interface SidecarMetrics {
  /** The bound UDP port. */
  readonly port: number;
  /** HTTP requests, and the count of unreadable lines. */
  readonly registry: RequestRegistry;
  /** TCP connections. */
  readonly tcpRegistry: RequestRegistry;
  /** Resolves peers with this snapshot from now on. */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** The Prometheus text exposition of every series. */
  exposition(): string;
  close(): Promise<void>;
}

/** Binds the receiver; rejects when the port is taken. */
export async function startSidecarMetrics(options: SidecarMetricsOptions): Promise<SidecarMetrics> {
  const registry = createRequestRegistry(overflowLabels);
  const tcpRegistry = createTcpRegistry(overflowLabels);
  let peers: PeerIndex = new Map();
  const socket = createSocket({ type: 'udp4', recvBufferSize: RECEIVE_BUFFER_BYTES });
  let closed = false;
  const pace = readPacer(socket, () => closed);
  socket.on('message', (message) => {
    pace?.();
    const record = parseAccessLogLine(message.toString('utf8'), options.tag);
    if (record === undefined) {
      registry.drop();
      return;
    }
    if (record.tcp === undefined) registry.observe(labelsOf(record, peers), record.durationMs);
    else tcpRegistry.observe(labelsOf(record, peers), record.durationMs, record.tcp);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port, options.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // A later socket error (none is expected on a bound UDP socket) must not crash the agent.
  socket.on('error', () => undefined);
  return {
    port: socket.address().port,
    registry,
    tcpRegistry,
    applySnapshot(snapshot) {
      peers = buildPeerIndex(snapshot);
    },
    exposition: () =>
      registry.render() +
      tcpRegistry.render() +
      renderLostDatagrams(kernelDrops(options.host, socket.address().port)),
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        socket.close(() => resolve());
      }),
  };
}
