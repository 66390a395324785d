// The echo server's gRPC side: mesh.test.Echo (grpc-echo-service.ts) on a plaintext HTTP/2 port,
// as a gRPC app in a mesh serves it (its sidecar adds mTLS). Every call sends the initial
// metadata x-pod: <pod> and the trailer x-trailer: done (failed when it answers an error).
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { ServerErrorResponse, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  GRPC_ECHO_SERVICE,
  GRPC_MAX_MESSAGE_BYTES,
  POD_METADATA,
  SERVER_STREAM_MAX,
  serverStreamMessage,
  TRAILER_METADATA,
  WANT_STATUS_METADATA,
} from './grpc-echo-service';

function metadataOf(key: string, value: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(key, value);
  return metadata;
}

const done = (): grpc.Metadata => metadataOf(TRAILER_METADATA, 'done');

function failure(code: grpc.status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), {
    code,
    details,
    metadata: metadataOf(TRAILER_METADATA, 'failed'),
  });
}

/** A decimal request in [0, max], or undefined. */
function decimalOf(request: Buffer, max: number): number | undefined {
  const text = request.toString('utf8');
  const value = Number(text);
  return /^\d+$/.test(text) && value <= max ? value : undefined;
}

/** The status a Unary request asks for with x-want-status, when it is a number other than 0. */
function wantedStatus(metadata: grpc.Metadata): number | undefined {
  const [value] = metadata.get(WANT_STATUS_METADATA);
  const code = Number(value);
  return typeof value === 'string' && Number.isInteger(code) && code !== 0 ? code : undefined;
}

function implementation(pod: string): UntypedServiceImplementation {
  // The trace context the call arrived with comes back as x-traceparent, so a client can find
  // the trace its call joined.
  const hello = (call: {
    metadata: grpc.Metadata;
    sendMetadata(metadata: grpc.Metadata): void;
  }): void => {
    const metadata = metadataOf(POD_METADATA, pod);
    const [traceparent] = call.metadata.get('traceparent');
    if (typeof traceparent === 'string') metadata.set('x-traceparent', traceparent);
    call.sendMetadata(metadata);
  };
  const unary: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    hello(call);
    const code = wantedStatus(call.metadata);
    if (code === undefined) callback(null, call.request, done());
    else callback(failure(code, `wanted ${code}`));
  };
  const serverStream: grpc.handleServerStreamingCall<Buffer, Buffer> = (call) => {
    hello(call);
    const count = decimalOf(call.request, SERVER_STREAM_MAX);
    if (count === undefined) {
      // A server-streaming handler answers an error status by emitting it.
      call.emit(
        'error',
        failure(grpc.status.INVALID_ARGUMENT, `expected a count from 0 to ${SERVER_STREAM_MAX}`),
      );
      return;
    }
    let index = 0;
    // Written as fast as the peer takes them: on backpressure, again after 'drain'.
    const write = (): void => {
      while (index < count && !call.cancelled) {
        const more = call.write(serverStreamMessage(index));
        index += 1;
        if (!more) {
          call.once('drain', write);
          return;
        }
      }
      call.end(done());
    };
    write();
  };
  const clientStream: grpc.handleClientStreamingCall<Buffer, Buffer> = (call, callback) => {
    hello(call);
    const hash = createHash('sha256');
    let count = 0;
    call.on('data', (message: Buffer) => {
      hash.update(message);
      count += 1;
    });
    call.on('end', () => {
      const counted = Buffer.alloc(4);
      counted.writeUInt32BE(count, 0);
      callback(null, Buffer.concat([hash.digest(), counted]), done());
    });
  };
  const bidi: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => {
    hello(call);
    call.on('data', (message: Buffer) => call.write(message));
    call.on('end', () => call.end(done()));
  };
  const sleep: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    hello(call);
    const ms = decimalOf(call.request, 600_000);
    if (ms === undefined) {
      callback(failure(grpc.status.INVALID_ARGUMENT, 'expected milliseconds'));
      return;
    }
    const timer = setTimeout(() => callback(null, Buffer.alloc(0), done()), ms);
    call.on('cancelled', () => clearTimeout(timer));
  };
  return {
    Unary: unary,
    ServerStream: serverStream,
    ClientStream: clientStream,
    Bidi: bidi,
    Sleep: sleep,
  };
}

/** Serves mesh.test.Echo on port (all addresses), in plaintext; resolves once it listens. */
export async function startGrpcEcho(port: number, pod: string): Promise<grpc.Server> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
  });
  server.addService(GRPC_ECHO_SERVICE, implementation(pod));
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return server;
}
