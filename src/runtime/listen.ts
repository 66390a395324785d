// Starting and stopping the project's HTTP(S) servers the same way everywhere.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on host:port (0 for any free port); resolves to the bound port, rejects on EADDRINUSE etc. */
export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Stops accepting and drops open (keep-alive) connections; resolves once closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
