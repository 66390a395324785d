// NATS 2.9 sends its INFO line in plain text and then upgrades the connection to TLS: this reads
// the server's certificate the way a client sees it, for checks of what the server presents.
import { connect as connectTcp } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { connect as connectTls } from 'node:tls';

export interface NatsTlsOptions {
  readonly host: string;
  readonly port: number;
  /** Trust for the server's certificate; unverified when absent (the certificate is still read). */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

/** The certificate the NATS server at host:port presents in its TLS handshake. */
export function natsServerCertificate(options: NatsTlsOptions): Promise<PeerCertificate> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: options.host, port: options.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS handshake with ${options.host}:${options.port} in ${timeoutMs}ms`));
    }, timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    let info = '';
    const onData = (chunk: Buffer): void => {
      info += chunk.toString('latin1');
      if (!info.includes('\r\n')) return;
      socket.off('data', onData);
      if (!info.startsWith('INFO ')) return fail(new Error(`not a NATS server: ${info.trim()}`));
      const tls = connectTls({
        socket,
        ...(options.ca === undefined ? { rejectUnauthorized: false } : { ca: options.ca }),
        // SVIDs name workloads by SPIFFE ID, not by the address dialled.
        checkServerIdentity: () => undefined,
      });
      tls.on('error', fail);
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        const certificate = tls.getPeerCertificate();
        tls.destroy();
        resolve(certificate);
      });
    };
    socket.on('data', onData);
  });
}
