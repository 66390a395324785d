// A gRPC client of mesh.test.Echo (test/cluster/apps/grpc-echo-service.ts), run by the e2e tests
// inside a pod's network namespace: plaintext HTTP/2 from the app's side, as a gRPC app in a mesh
// sends it (the sidecars add mTLS between them). Prints one JSON line with what happened.
//   grpc-client <host:port> unary [bytes=1024]          request = seeded bytes (seed 1)
//   grpc-client <host:port> unary-status <N>            asks Unary for status N (x-want-status)
//   grpc-client <host:port> server-stream <N>           N messages, each checked byte for byte
//   grpc-client <host:port> client-stream <N> <bytes>   N seeded messages (seed 2) of that size
//   grpc-client <host:port> bidi <N>                    N round trips of 256 seeded bytes (seed 3)
//   grpc-client <host:port> deadline [sleepMs=2000] [deadlineMs=300]
//   grpc-client <host:port> large [bytes=4194304]       one Unary of that size (seed 4)
//   grpc-client <host:port> repeat <N>                  N sequential Unary calls, after one unmeasured
// Every outcome has: scenario, code (the gRPC status), details, initial and trailing (metadata as
// strings), elapsedMs; per scenario: sentBytes/receivedBytes, sentSha256/receivedSha256 (hex),
// messages and firstMismatch (-1: none), receivedCount (ClientStream's count), roundTrips and
// matched, or (repeat) calls, codes, pods (calls per x-pod), p50Ms, p99Ms.
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/grpc-js';
import {
  GRPC_ECHO_SERVICE,
  GRPC_MAX_MESSAGE_BYTES,
  POD_METADATA,
  serverStreamMessage,
  WANT_STATUS_METADATA,
} from '../../cluster/apps/grpc-echo-service';
import {
  bump,
  countOf,
  elapsedSince,
  hostPortOf,
  percentiles,
  printOutcome,
  seededBytes,
  sha256Of,
} from './client-io';

const USAGE =
  'grpc-client <host:port> unary|unary-status|server-stream|client-stream|bidi|deadline|large|repeat [args]';
/** No call outlives this, whatever the scenario (deadline's own is shorter). */
const CALL_DEADLINE_MS = 30_000;

type Method = MethodDefinition<Buffer, Buffer>;

/** The common part of every call's outcome. */
interface CallOutcome {
  readonly code: number;
  readonly details: string;
  readonly initial: Record<string, string>;
  readonly trailing: Record<string, string>;
}

function recordOf(metadata: grpc.Metadata | undefined): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata?.getMap() ?? {}))
    record[key] = typeof value === 'string' ? value : value.toString('base64');
  return record;
}

function deadline(ms = CALL_DEADLINE_MS): grpc.CallOptions {
  return { deadline: Date.now() + ms };
}

/** Follows a call's initial metadata and status; resolves with them when the call ends. */
function outcomeOf(call: grpc.Call | grpc.ClientUnaryCall): Promise<CallOutcome> {
  let initial: Record<string, string> = {};
  call.on('metadata', (metadata: grpc.Metadata) => {
    initial = recordOf(metadata);
  });
  return new Promise((resolve) =>
    call.on('status', (status: grpc.StatusObject) =>
      resolve({
        code: status.code,
        details: status.details,
        initial,
        trailing: recordOf(status.metadata),
      }),
    ),
  );
}

async function unary(
  client: grpc.Client,
  method: Method,
  request: Buffer,
  metadata = new grpc.Metadata(),
  options = deadline(),
): Promise<CallOutcome & { response: Buffer | undefined }> {
  let response: Buffer | undefined;
  const call = client.makeUnaryRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    request,
    metadata,
    options,
    (error, value) => {
      if (error === null) response = value;
    },
  );
  const outcome = await outcomeOf(call);
  return { ...outcome, response };
}

async function unaryScenario(client: grpc.Client, bytes: number, seed: number): Promise<object> {
  const request = seededBytes(seed)(bytes);
  const started = performance.now();
  const { response, ...outcome } = await unary(client, GRPC_ECHO_SERVICE.Unary, request);
  return {
    ...outcome,
    sentBytes: request.length,
    receivedBytes: response?.length ?? 0,
    sentSha256: sha256Of(request),
    receivedSha256: response === undefined ? '' : sha256Of(response),
    elapsedMs: elapsedSince(started),
  };
}

async function unaryStatus(client: grpc.Client, code: number): Promise<object> {
  const metadata = new grpc.Metadata();
  metadata.set(WANT_STATUS_METADATA, String(code));
  const started = performance.now();
  const { response, ...outcome } = await unary(
    client,
    GRPC_ECHO_SERVICE.Unary,
    Buffer.from('status'),
    metadata,
  );
  return { ...outcome, receivedBytes: response?.length ?? 0, elapsedMs: elapsedSince(started) };
}

async function serverStream(client: grpc.Client, count: number): Promise<object> {
  const method = GRPC_ECHO_SERVICE.ServerStream;
  const started = performance.now();
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    Buffer.from(String(count)),
    new grpc.Metadata(),
    deadline(),
  );
  let messages = 0;
  let receivedBytes = 0;
  let firstMismatch = -1;
  call.on('data', (message: Buffer) => {
    if (firstMismatch < 0 && !message.equals(serverStreamMessage(messages)))
      firstMismatch = messages;
    messages += 1;
    receivedBytes += message.length;
  });
  call.on('error', () => undefined);
  const outcome = await outcomeOf(call);
  return { ...outcome, messages, receivedBytes, firstMismatch, elapsedMs: elapsedSince(started) };
}

async function clientStream(client: grpc.Client, count: number, bytes: number): Promise<object> {
  const method = GRPC_ECHO_SERVICE.ClientStream;
  const next = seededBytes(2);
  const sent: Buffer[] = [];
  let response: Buffer | undefined;
  const started = performance.now();
  const call = client.makeClientStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    new grpc.Metadata(),
    deadline(),
    (error, value) => {
      if (error === null) response = value;
    },
  );
  const outcome = outcomeOf(call);
  for (let index = 0; index < count; index += 1) {
    const message = next(bytes);
    sent.push(message);
    if (!call.write(message)) await new Promise((resolve) => call.once('drain', resolve));
  }
  call.end();
  return {
    ...(await outcome),
    sentMessages: count,
    sentBytes: count * bytes,
    sentSha256: sha256Of(...sent),
    receivedSha256: response?.subarray(0, 32).toString('hex') ?? '',
    receivedCount: response?.length === 36 ? response.readUInt32BE(32) : -1,
    elapsedMs: elapsedSince(started),
  };
}

async function bidi(client: grpc.Client, roundTrips: number): Promise<object> {
  const method = GRPC_ECHO_SERVICE.Bidi;
  const next = seededBytes(3);
  const started = performance.now();
  const call = client.makeBidiStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    new grpc.Metadata(),
    deadline(),
  );
  const outcome = outcomeOf(call);
  const answers: Buffer[] = [];
  let waiting: (() => void) | undefined;
  let ended = false;
  call.on('data', (message: Buffer) => {
    answers.push(message);
    waiting?.();
  });
  call.on('error', () => undefined);
  void outcome.then(() => {
    ended = true;
    waiting?.();
  });
  let matched = 0;
  let completed = 0;
  // One message in flight at a time: each round trip waits for its echo.
  for (; completed < roundTrips && !ended; completed += 1) {
    const message = next(256);
    call.write(message);
    while (answers.length === 0 && !ended)
      await new Promise<void>((resolve) => (waiting = resolve));
    const answer = answers.shift();
    if (answer === undefined) break;
    if (answer.equals(message)) matched += 1;
  }
  call.end();
  return { ...(await outcome), roundTrips: completed, matched, elapsedMs: elapsedSince(started) };
}

async function deadlineScenario(
  client: grpc.Client,
  sleepMs: number,
  deadlineMs: number,
): Promise<object> {
  const started = performance.now();
  const { response, ...outcome } = await unary(
    client,
    GRPC_ECHO_SERVICE.Sleep,
    Buffer.from(String(sleepMs)),
    new grpc.Metadata(),
    deadline(deadlineMs),
  );
  return { ...outcome, receivedBytes: response?.length ?? 0, elapsedMs: elapsedSince(started) };
}

async function repeat(client: grpc.Client, calls: number): Promise<object> {
  const request = seededBytes(5)(64);
  // The channel connects (and the sidecars open their upstream connections) outside the samples.
  await unary(client, GRPC_ECHO_SERVICE.Unary, request);
  const codes: Record<string, number> = {};
  const pods: Record<string, number> = {};
  const samples: number[] = [];
  let mismatches = 0;
  const started = performance.now();
  for (let index = 0; index < calls; index += 1) {
    const callStarted = performance.now();
    const outcome = await unary(client, GRPC_ECHO_SERVICE.Unary, request);
    samples.push(performance.now() - callStarted);
    bump(codes, String(outcome.code));
    if (outcome.code === Number(grpc.status.OK)) {
      bump(pods, outcome.initial[POD_METADATA] ?? '');
      if (outcome.response?.equals(request) !== true) mismatches += 1;
    }
  }
  return {
    calls,
    codes,
    pods,
    mismatches,
    ...percentiles(samples),
    elapsedMs: elapsedSince(started),
  };
}

function run(client: grpc.Client, scenario: string | undefined, args: string[]): Promise<object> {
  const [first, second] = args;
  switch (scenario) {
    case 'unary':
      return unaryScenario(client, countOf(first, 1024, USAGE), 1);
    case 'unary-status':
      return unaryStatus(client, countOf(first, 5, USAGE));
    case 'server-stream':
      return serverStream(client, countOf(first, 1000, USAGE));
    case 'client-stream':
      return clientStream(client, countOf(first, 500, USAGE), countOf(second, 1024, USAGE));
    case 'bidi':
      return bidi(client, countOf(first, 200, USAGE));
    case 'deadline':
      return deadlineScenario(client, countOf(first, 2000, USAGE), countOf(second, 300, USAGE));
    case 'large':
      return unaryScenario(client, countOf(first, 4 * 1024 * 1024, USAGE), 4);
    case 'repeat':
      return repeat(client, countOf(first, 200, USAGE));
    default:
      throw new Error(`unknown scenario "${scenario ?? ''}": ${USAGE}`);
  }
}

async function main(): Promise<void> {
  const [target, scenario, ...args] = process.argv.slice(2);
  hostPortOf(target, USAGE);
  const client = new grpc.Client(target ?? '', grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
  });
  try {
    printOutcome({ scenario, ...(await run(client, scenario, args)) });
  } finally {
    client.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`grpc-client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
