// The test cluster's sample application: an HTTP server that answers with who it is and what it
// was asked, and a TCP echo server. FAIL_PERCENT makes a deterministic share of HTTP requests
// answer 500 (for metrics), spread evenly over the request sequence.
//
// Started with the agent role's arguments (`run --role=agent …`), the image stands in for the
// mesh's sidecar in the registrar's tests instead: it runs the SVID client (svid-client.ts).
import * as http from 'node:http';
import * as net from 'node:net';

if (process.argv[2] === 'run' && process.argv[3] === '--role=agent') {
  void import('./svid-client');
} else {
  startEcho();
}

function startEcho(): void {
  const httpPort = Number(process.env.HTTP_PORT ?? 8080);
  const tcpPort = Number(process.env.TCP_PORT ?? 9000);
  const failPercent = Math.min(100, Math.max(0, Number(process.env.FAIL_PERCENT ?? 0)));
  const name = process.env.POD_NAME ?? process.env.HOSTNAME ?? 'echo';

  let requests = 0;

  /** True for the requests that fall on a new multiple of the failure share. */
  function shouldFail(index: number): boolean {
    return Math.floor(((index + 1) * failPercent) / 100) > Math.floor((index * failPercent) / 100);
  }

  const server = http.createServer((req, res) => {
    // Probes neither fail nor take a place in the sequence the failure share is spread over.
    if (req.url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
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

  server.listen(httpPort, '0.0.0.0');
  tcp.listen(tcpPort, '0.0.0.0');

  function shutdown(): void {
    tcp.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
