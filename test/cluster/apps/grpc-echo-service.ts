// The gRPC service mesh.test.Echo, defined by hand instead of from a .proto file: every message is
// raw bytes (serializers pass Buffers through), while the wire is real gRPC framing over HTTP/2.
// The echo server implements it (grpc-echo-server.ts) and the tests' client calls it.
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/** The service's full name, the first part of each method's path. */
export const GRPC_ECHO_SERVICE_NAME = 'mesh.test.Echo';
/** Request metadata that makes Unary answer the gRPC status it holds (a number, not 0). */
export const WANT_STATUS_METADATA = 'x-want-status';
/** Response initial metadata of every call: the serving pod's name. */
export const POD_METADATA = 'x-pod';
/** Trailing metadata of every call: "done" when it succeeded, "failed" when it answered a status. */
export const TRAILER_METADATA = 'x-trailer';
/** The most messages ServerStream sends for one request. */
export const SERVER_STREAM_MAX = 10_000;
/** Bytes of each ServerStream message: a 4-byte big-endian index, then 1020 bytes of index mod 256. */
export const SERVER_STREAM_MESSAGE_BYTES = 1024;
/** The server's and client's message size limit, both ways. */
export const GRPC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const passThrough = (bytes: Buffer): Buffer => bytes;

function method(
  name: string,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Buffer, Buffer> {
  return {
    path: `/${GRPC_ECHO_SERVICE_NAME}/${name}`,
    originalName: name,
    requestStream,
    responseStream,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  };
}

/**
 * - Unary: answers the request's bytes (or the status x-want-status asks for, details "wanted N").
 * - ServerStream: request = decimal count N ≤ SERVER_STREAM_MAX; answers N messages (serverStreamMessage).
 * - ClientStream: answers SHA-256 of all request messages concatenated, then their count (4 bytes BE).
 * - Bidi: echoes each message as it arrives; ends when the client ends.
 * - Sleep: request = decimal milliseconds; answers empty after that long.
 */
export const GRPC_ECHO_SERVICE = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
  Sleep: method('Sleep', false, false),
} satisfies ServiceDefinition;

/** ServerStream's message number index. */
export function serverStreamMessage(index: number): Buffer {
  const message = Buffer.alloc(SERVER_STREAM_MESSAGE_BYTES, index % 256);
  message.writeUInt32BE(index, 0);
  return message;
}
