// The test cluster's sample application: an HTTP server that answers with who it is and what it
// was asked, and a TCP echo server. FAIL_PERCENT makes a deterministic share of HTTP requests
// answer 500 (for metrics), spread evenly over the request sequence. Beside them, each on its
// own port (echo-ports.ts, movable by its variable): WebSocket echo on the HTTP server's /ws, the
// gRPC service mesh.test.Echo (GRPC_PORT), a server-first TCP protocol (BANNER_PORT) and UDP
// echo (UDP_PORT); what they answer names the pod (POD_NAME).
//
// Started with the agent role's arguments (`run --role=agent …`), the image stands in for the
// mesh's sidecar in the registrar's tests instead: it runs the SVID client (svid-client.ts).
import * as http from 'node:http';
import * as net from 'node:net';
import {
  ECHO_BANNER_PORT,
  ECHO_GRPC_PORT,
  ECHO_HTTP_PORT,
  ECHO_TCP_PORT,
  ECHO_UDP_PORT,
} from './echo-ports';
import { startGrpcEcho } from './grpc-echo-server';
import { startBannerServer, startUdpEcho } from './line-servers';
import { attachWebSocketEcho, upgradesToWebSocket } from './websocket-echo';

if (process.argv[2] === 'run' && process.argv[3] === '--role=agent') {
  void import('./svid-client');
} else {
  startEcho();
}

function startEcho(): void {
  const httpPort = Number(process.env.HTTP_PORT ?? ECHO_HTTP_PORT);
  const tcpPort = Number(process.env.TCP_PORT ?? ECHO_TCP_PORT);
  const grpcPort = Number(process.env.GRPC_PORT ?? ECHO_GRPC_PORT);
  const bannerPort = Number(process.env.BANNER_PORT ?? ECHO_BANNER_PORT);
  const udpPort = Number(process.env.UDP_PORT ?? ECHO_UDP_PORT);
  const failPercent = Math.min(100, Math.max(0, Number(process.env.FAIL_PERCENT ?? 0)));
  const name = process.env.POD_NAME ?? process.env.HOSTNAME ?? 'echo';

  let requests = 0;

  /** True for the requests that fall on a new multiple of the failure share. */
  function shouldFail(index: number): boolean {
    return Math.floor(((index + 1) * failPercent) / 100) > Math.floor((index * failPercent) / 100);
  }

  const server = http.createServer({ shouldUpgradeCallback: upgradesToWebSocket }, (req, res) => {
    // Probes neither fail nor take a place in the sequence the failure share is spread over.
    if (req.url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    // /forward?to=<url>: a service calling the next one, passing the trace context on as an
    // instrumented app does (W3C traceparent and tracestate); answers with the downstream answer.
    if (req.url?.startsWith('/forward?') === true) {
      forward(req, res, name);
      return;
    }
    const index = requests;
    requests += 1;
    const status = shouldFail(index) ? 500 : 200;
    const body = JSON.stringify({
      pod: name,
      method: req.method,
      path: req.url,
      status,
      remote: req.socket.remoteAddress,
      headers: req.headers,
    });
    res
      .writeHead(status, { 'Content-Type': 'application/json', 'X-Served-By': name })
      .end(`${body}\n`);
  });

  const tcp = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });

  const webSockets = attachWebSocketEcho(server, name);
  server.listen(httpPort, '0.0.0.0');
  tcp.listen(tcpPort, '0.0.0.0');
  const banner = startBannerServer(bannerPort, name);
  const udp = startUdpEcho(udpPort, name);
  const grpcServer = startGrpcEcho(grpcPort, name);
  // A port another process holds (a host-network run) costs that side only, not the server.
  grpcServer.catch((error: unknown) =>
    process.stderr.write(`gRPC on port ${grpcPort}: ${String(error)}\n`),
  );

  function shutdown(): void {
    tcp.close();
    banner.close();
    udp.close();
    for (const socket of webSockets.clients) socket.terminate();
    grpcServer.then(
      (grpcEcho) => grpcEcho.forceShutdown(),
      () => undefined,
    );
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;

function forward(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
  const to = new URL(req.url ?? '/', 'http://local').searchParams.get('to') ?? '';
  const headers: Record<string, string> = {};
  for (const header of TRACE_HEADERS) {
    const value = req.headers[header];
    if (typeof value === 'string') headers[header] = value;
  }
  fetch(to, { headers, signal: AbortSignal.timeout(10_000) })
    .then(async (answer) => {
      const body = await answer.text();
      res
        .writeHead(answer.status, { 'Content-Type': 'application/json', 'X-Served-By': name })
        .end(`${JSON.stringify({ pod: name, forwardedTo: to, status: answer.status, body })}\n`);
    })
    .catch((error: unknown) => {
      res
        .writeHead(502, { 'Content-Type': 'text/plain' })
        .end(`forward to ${to}: ${String(error)}\n`);
    });
}
