// A WebSocket client of the echo server's /ws, run by the e2e tests inside a pod's network
// namespace. Prints one JSON line with what happened.
//   ws-client <url> echo <N>        N text then N binary messages (seeded sizes 1-4096), each
//                                   awaited and compared with what was sent
//   ws-client <url> hold <seconds>  idle that long after the greeting, then one text and one
//                                   binary message
// Outcome: scenario, status (the handshake's HTTP status; 101 when upgraded), body (the answer's
// body when not upgraded), hello (the first message), text and binary (exact echoes: sent and
// matched), heldMs (hold), closeCode (when the server closed first), error, elapsedMs.
import WebSocket from 'ws';
import type { RawData } from 'ws';
import {
  countOf,
  elapsedSince,
  errorText,
  printOutcome,
  seededBytes,
  sleep,
  withTimeout,
} from './client-io';

const USAGE = 'ws-client <url> echo <N> | hold <seconds>';
/** The longest wait for the handshake or one echo. */
const STEP_TIMEOUT_MS = 10_000;

interface Message {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

interface Tally {
  sent: number;
  matched: number;
}

/** A socket's messages in arrival order, awaited one by one. */
class Inbox {
  private readonly queue: Message[] = [];
  private waiting: (() => void) | undefined;
  closeCode: number | undefined;

  constructor(socket: WebSocket) {
    socket.on('message', (data: RawData, isBinary: boolean) => {
      this.queue.push({
        data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer),
        isBinary,
      });
      this.waiting?.();
    });
    socket.on('close', (code: number) => {
      this.closeCode = code;
      this.waiting?.();
    });
  }

  async next(): Promise<Message> {
    const deadline = performance.now() + STEP_TIMEOUT_MS;
    while (this.queue.length === 0) {
      if (this.closeCode !== undefined) throw new Error(`closed with ${this.closeCode}`);
      const woken = new Promise<void>((resolve) => (this.waiting = resolve));
      const left = deadline - performance.now();
      if (left <= 0 || (await withTimeout(woken, left)) === 'timeout')
        throw new Error(`no message within ${STEP_TIMEOUT_MS}ms`);
    }
    const message = this.queue.shift();
    if (message === undefined) throw new Error('no message');
    return message;
  }
}

/** Sends the message and counts it matched when the next one is the same bytes and kind. */
async function exchange(
  socket: WebSocket,
  inbox: Inbox,
  data: Buffer,
  isBinary: boolean,
  tally: Tally,
): Promise<void> {
  socket.send(data, { binary: isBinary });
  tally.sent += 1;
  const answer = await inbox.next();
  if (answer.isBinary === isBinary && answer.data.equals(data)) tally.matched += 1;
}

/**
 * Connects; resolves with the open socket and its inbox, or rejects with the handshake's status
 * and body. The inbox listens from the start: a message that arrives with the 101 (the server's
 * greeting, in the same read) is emitted right after 'open', before a later listener could see it.
 */
function connect(
  url: string,
  outcome: Record<string, unknown>,
): Promise<{ socket: WebSocket; inbox: Inbox }> {
  const socket = new WebSocket(url, { handshakeTimeout: STEP_TIMEOUT_MS });
  const inbox = new Inbox(socket);
  socket.on('upgrade', (response) => (outcome.status = response.statusCode));
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve({ socket, inbox }));
    socket.on('unexpected-response', (_request, response) => {
      outcome.status = response.statusCode;
      const connection = response.socket;
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => {
        outcome.body = body;
        // Not left to the peer's keep-alive timeout: the process ends with its outcome.
        connection.destroy();
        reject(new Error(`handshake answered ${response.statusCode ?? '?'}`));
      });
    });
    socket.on('error', reject);
  });
}

async function converse(
  { socket, inbox }: { socket: WebSocket; inbox: Inbox },
  scenario: string | undefined,
  argument: string | undefined,
  outcome: Record<string, unknown>,
): Promise<void> {
  outcome.hello = (await inbox.next()).data.toString('utf8');
  const text: Tally = { sent: 0, matched: 0 };
  const binary: Tally = { sent: 0, matched: 0 };
  outcome.text = text;
  outcome.binary = binary;
  const next = seededBytes(7);
  try {
    if (scenario === 'echo') {
      const count = countOf(argument, 100, USAGE);
      for (let index = 0; index < count; index += 1)
        await exchange(
          socket,
          inbox,
          Buffer.from(`text ${index} ${next(16).toString('hex')}`),
          false,
          text,
        );
      for (let index = 0; index < count; index += 1)
        await exchange(socket, inbox, next(1 + (next(2).readUInt16BE(0) % 4096)), true, binary);
    } else {
      const heldMs = countOf(argument, 70, USAGE) * 1000;
      const held = performance.now();
      await sleep(heldMs);
      outcome.heldMs = elapsedSince(held);
      await exchange(socket, inbox, Buffer.from('after the hold'), false, text);
      await exchange(socket, inbox, next(1024), true, binary);
    }
  } finally {
    outcome.closeCode = inbox.closeCode;
  }
}

async function main(): Promise<void> {
  const [url, scenario, argument] = process.argv.slice(2);
  if (url === undefined || (scenario !== 'echo' && scenario !== 'hold')) throw new Error(USAGE);
  const outcome: Record<string, unknown> = { scenario };
  const started = performance.now();
  try {
    const open = await connect(url, outcome);
    try {
      await converse(open, scenario, argument, outcome);
    } finally {
      open.socket.close();
    }
  } catch (error) {
    outcome.error = errorText(error);
  }
  outcome.elapsedMs = elapsedSince(started);
  printOutcome(outcome);
}

main().catch((error: unknown) => {
  process.stderr.write(`ws-client: ${errorText(error)}\n`);
  process.exitCode = 1;
});
