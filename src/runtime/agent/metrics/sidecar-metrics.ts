// The agent's metrics pipeline: a UDP socket on loopback receives nginx's access log as syslog,
// each record is resolved to its peer with the latest snapshot applied and counted; the status
// server prints the result on /metrics. Counts live here, in the agent, so nginx reloads keep them.
// Datagrams are best effort: the socket's receive buffer is raised so bursts are not lost.
import { createSocket } from 'node:dgram';
import type { MeshSnapshot } from '../../../manifests/snapshot/types';
import { parseAccessLogLine } from './access-log';
import type { PeerIndex } from './peers';
import { buildPeerIndex, labelsOf, overflowLabels } from './peers';
import { createRequestRegistry } from './registry';
import type { RequestRegistry } from './registry';

/** Receive buffer asked for; the kernel caps it at net.core.rmem_max. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

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
  readonly registry: RequestRegistry;
  /** Resolves peers with this snapshot from now on. */
  applySnapshot(snapshot: MeshSnapshot): void;
  /** The Prometheus text exposition of every series. */
  exposition(): string;
  close(): Promise<void>;
}

/** Binds the receiver; rejects when the port is taken. */
export async function startSidecarMetrics(options: SidecarMetricsOptions): Promise<SidecarMetrics> {
  const registry = createRequestRegistry(overflowLabels);
  let peers: PeerIndex = new Map();
  const socket = createSocket({ type: 'udp4', recvBufferSize: RECEIVE_BUFFER_BYTES });
  socket.on('message', (message) => {
    const record = parseAccessLogLine(message.toString('utf8'), options.tag);
    if (record === undefined) {
      registry.drop();
      return;
    }
    registry.observe(labelsOf(record, peers), record.durationMs);
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
    applySnapshot(snapshot) {
      peers = buildPeerIndex(snapshot);
    },
    exposition: () => registry.render(),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
