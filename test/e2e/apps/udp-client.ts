// A UDP client of the echo server's UDP echo, run by the e2e tests inside a pod's network
// namespace: sends one datagram and waits for one answer.
//   udp-client <host:port> <text> [timeoutMs=3000]
// Outcome: reply (the answer's text, or null), timeout (true when none came), error, elapsedMs.
import * as dgram from 'node:dgram';
import { countOf, elapsedSince, errorText, hostPortOf, printOutcome } from './client-io';

const USAGE = 'udp-client <host:port> <text> [timeoutMs]';

async function main(): Promise<void> {
  const [target, text, timeout] = process.argv.slice(2);
  const { host, port } = hostPortOf(target, USAGE);
  const timeoutMs = countOf(timeout, 3000, USAGE);
  const socket = dgram.createSocket('udp4');
  const started = performance.now();
  const outcome = await new Promise<object>((resolve) => {
    const timer = setTimeout(() => resolve({ reply: null, timeout: true }), timeoutMs);
    socket.on('message', (message) => {
      clearTimeout(timer);
      resolve({ reply: message.toString('utf8'), timeout: false });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      resolve({ reply: null, timeout: false, error: errorText(error) });
    });
    socket.send(text ?? 'ping', port, host);
  });
  socket.close();
  printOutcome({ ...outcome, elapsedMs: elapsedSince(started) });
}

main().catch((error: unknown) => {
  process.stderr.write(`udp-client: ${errorText(error)}\n`);
  process.exitCode = 1;
});
