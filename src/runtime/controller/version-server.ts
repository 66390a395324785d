// GET /version on the controller (port 8082, as NGINX Service Mesh): the versions of the mesh's
// components, {"<component>": ["<version>", …]}, which `nginx-meshctl version` reads through
// the API server's service proxy; and GET /sidecars, the generation of the mesh configuration in
// force and every sidecar's last acknowledgement (404 until this replica publishes).
import * as http from 'node:http';
import { closeServer, listen } from '../listen';

export interface VersionServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startVersionServer(options: {
  readonly host: string;
  readonly port: number;
  readonly versions: () => Readonly<Record<string, readonly string[]>>;
  readonly sidecars?: () => object | undefined;
}): Promise<VersionServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const body =
      req.method !== 'GET' && req.method !== 'HEAD'
        ? undefined
        : path === '/version'
          ? options.versions()
          : path === '/sidecars'
            ? options.sidecars?.()
            : undefined;
    if (body === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  });
  const port = await listen(server, options.port, options.host);
  return { port, close: () => closeServer(server) };
}
