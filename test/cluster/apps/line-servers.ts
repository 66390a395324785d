// The echo server's non-HTTP sides besides the TCP echo: a server-first TCP protocol (the server
// speaks before the client sends anything, as SMTP, MySQL or SSH do) and a UDP echo.
import * as dgram from 'node:dgram';
import * as net from 'node:net';

/**
 * On connect writes `220 <pod> ready\r\n` before reading anything; then answers each line
 * (LF or CRLF ended) with `250 <line>\r\n`, and the line QUIT with `221 bye\r\n` and a close.
 */
export function startBannerServer(port: number, pod: string): net.Server {
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`220 ${pod} ready\r\n`);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const line = pending.slice(0, end).replace(/\r$/, '');
        pending = pending.slice(end + 1);
        if (line === 'QUIT') {
          socket.end('221 bye\r\n');
          return;
        }
        socket.write(`250 ${line}\r\n`);
      }
    });
  });
  server.on('error', (error) => process.stderr.write(`banner server: ${error.message}\n`));
  server.listen(port, '0.0.0.0');
  return server;
}

/** Answers each datagram with `<pod> <its text>`, to the sender's address and port. */
export function startUdpEcho(port: number, pod: string): dgram.Socket {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, sender) => {
    socket.send(`${pod} ${message.toString('utf8')}`, sender.port, sender.address);
  });
  socket.on('error', (error) => process.stderr.write(`udp echo: ${error.message}\n`));
  socket.bind(port, '0.0.0.0');
  return socket;
}
