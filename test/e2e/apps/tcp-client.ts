// A TCP client for the echo server's TCP echo and its server-first banner port, run by the e2e
// tests inside a pod's network namespace. Prints one JSON line with what happened.
//   tcp-client <host:port> echo <text>            sends text, reads until as many bytes came back
//   tcp-client <host:port> banner                 reads the banner before sending anything, then
//                                                 sends three lines and QUIT, reads until closed
//   tcp-client <host:port> hold <seconds> echo|banner
//                                                 idles that long after connecting (and the
//                                                 banner), then sends one line and reads its answer
// Outcome: mode, banner (what arrived before the client sent a byte), received (everything after
// it, as text with its CR LF), closedByServer, closedAfterMs (from connecting to the server's
// close), error (ECONNRESET, timeout, …), heldMs, elapsedMs.
import * as net from 'node:net';
import {
  countOf,
  elapsedSince,
  errorText,
  hostPortOf,
  printOutcome,
  sleep,
  withTimeout,
} from './client-io';

const USAGE = 'tcp-client <host:port> echo <text> | banner | hold <seconds> echo|banner';
/** The longest wait for one answer. */
const STEP_TIMEOUT_MS = 5_000;
/** The longest wait for the server to close after QUIT. */
const CLOSE_TIMEOUT_MS = 15_000;
/** The lines sent after the banner, before QUIT. */
const BANNER_LINES = ['HELO mesh', 'MAIL FROM:<client@mesh>', 'NOOP'];

/** A connection's bytes as they arrive, awaited until a condition holds. */
class Connection {
  received = '';
  closedByServer = false;
  closedAfterMs: number | undefined;
  error: string | undefined;
  private wake: (() => void) | undefined;
  private readonly connected = performance.now();

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('utf8');
      this.wake?.();
    });
    socket.on('end', () => {
      this.closedByServer = true;
      this.closedAfterMs = elapsedSince(this.connected);
      this.wake?.();
    });
    socket.on('error', (error) => {
      this.error = errorText(error);
      this.wake?.();
    });
    socket.on('close', () => this.wake?.());
  }

  /** Until check holds, the connection ends, or the step times out; then takes what came. */
  async take(check: (text: string) => boolean, timeoutMs = STEP_TIMEOUT_MS): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (!check(this.received) && !this.closedByServer && this.error === undefined) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await withTimeout(new Promise<void>((resolve) => (this.wake = resolve)), left);
    }
    const taken = this.received;
    this.received = '';
    return taken;
  }
}

function connect(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: STEP_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.setTimeout(0);
      resolve(new Connection(socket));
    });
    socket.once('timeout', () => socket.destroy(new Error('timeout')));
    socket.once('error', reject);
  });
}

const line = (text: string): boolean => text.includes('\r\n');

async function converse(connection: Connection, mode: string, args: string[]): Promise<object> {
  const { socket } = connection;
  if (mode === 'echo') {
    const text = args[0] ?? 'ping';
    socket.write(text);
    const received = await connection.take((got) => got.length >= text.length);
    return { received };
  }
  if (mode === 'banner') {
    const banner = await connection.take(line);
    for (const sent of [...BANNER_LINES, 'QUIT']) socket.write(`${sent}\r\n`);
    const received = await connection.take(() => false, CLOSE_TIMEOUT_MS);
    return { banner, received };
  }
  const heldMs = countOf(args[0], 70, USAGE) * 1000;
  const banner = args[1] === 'banner' ? await connection.take(line) : undefined;
  const held = performance.now();
  await sleep(heldMs);
  const closedDuringHold = connection.closedByServer || connection.error !== undefined;
  socket.write('after the hold\r\n');
  const received = await connection.take((got) =>
    args[1] === 'banner' ? line(got) : got.length >= 'after the hold\r\n'.length,
  );
  return { banner, heldMs: elapsedSince(held), closedDuringHold, received };
}

async function main(): Promise<void> {
  const [target, mode, ...args] = process.argv.slice(2);
  const { host, port } = hostPortOf(target, USAGE);
  if (mode !== 'echo' && mode !== 'banner' && mode !== 'hold') throw new Error(USAGE);
  const started = performance.now();
  let outcome: object;
  try {
    const connection = await connect(host, port);
    const answer = await converse(connection, mode, args);
    outcome = {
      ...answer,
      closedByServer: connection.closedByServer,
      closedAfterMs: connection.closedAfterMs,
      error: connection.error,
    };
    connection.socket.destroy();
  } catch (error) {
    outcome = { error: errorText(error) };
  }
  printOutcome({ mode, ...outcome, elapsedMs: elapsedSince(started) });
}

main().catch((error: unknown) => {
  process.stderr.write(`tcp-client: ${errorText(error)}\n`);
  process.exitCode = 1;
});
