// The echo server's WebSocket side, on its HTTP server: GET /ws with an Upgrade header becomes a
// WebSocket whose first message is the text `hello <pod>`, and which then echoes every message
// exactly (text stays text, binary stays binary). Upgrade requests for other paths stay plain
// HTTP requests, answered as any other.
import type * as http from 'node:http';
import { WebSocketServer } from 'ws';

/** The path that upgrades to a WebSocket. */
export const WEBSOCKET_PATH = '/ws';

/** For http.createServer's shouldUpgradeCallback: only WEBSOCKET_PATH upgrades. */
export function upgradesToWebSocket(request: http.IncomingMessage): boolean {
  return request.url === WEBSOCKET_PATH;
}

/** Serves WebSocket echo on the server's upgrade requests; the result closes its sockets. */
export function attachWebSocketEcho(server: http.Server, pod: string): WebSocketServer {
  const sockets = new WebSocketServer({ noServer: true });
  sockets.on('connection', (socket) => {
    socket.on('error', () => socket.terminate());
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.send(`hello ${pod}`);
  });
  server.on('upgrade', (request: http.IncomingMessage, socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit('connection', ws, request));
  });
  return sockets;
}
