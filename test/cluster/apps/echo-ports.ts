// The echo server's default ports (each can be moved with its environment variable): the tests'
// Services, clients and the image's EXPOSE list name the same numbers.

/** HTTP, with WebSocket echo on /ws (HTTP_PORT). */
export const ECHO_HTTP_PORT = 8080;
/** TCP echo: every byte back (TCP_PORT). */
export const ECHO_TCP_PORT = 9000;
/** gRPC service mesh.test.Echo over plaintext HTTP/2 (GRPC_PORT). */
export const ECHO_GRPC_PORT = 9090;
/** Server-first TCP: a banner before the client sends anything, then one reply per line (BANNER_PORT). */
export const ECHO_BANNER_PORT = 2525;
/** UDP echo: each datagram answered with the pod's name before its text (UDP_PORT). */
export const ECHO_UDP_PORT = 9053;
