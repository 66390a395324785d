// A hand-written API for in-process CLI tests: fixed answers by path, and the paths asked for.
import type { KubeAccess, KubeConnection, RawResponse } from '../../src/runtime/kube/access';
import { readOnlyKube, streamFromAnswer } from './fakes';

export function kubeAnswering(
  routes: Record<string, RawResponse>,
  missingMessage = 'not found',
): { kube: KubeAccess; paths: string[] } {
  const paths: string[] = [];
  const missing = {
    status: 404,
    body: JSON.stringify({ kind: 'Status', message: missingMessage }),
  };
  return {
    paths,
    kube: readOnlyKube((_target, path) => {
      paths.push(path);
      return Promise.resolve(routes[path] ?? missing);
    }),
  };
}

/** A 200 answer with the object as JSON. */
export function okJson(body: unknown): RawResponse {
  return { status: 200, body: JSON.stringify(body) };
}

/** A request as a scripted fake saw it: method, path and parsed body. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** Headers beyond the connection's own (KubeRequest.headers), when any. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A KubeConnection whose every answer comes from one function (state may live in its closure);
 * a stream gets its answer whole, split into lines. Records what was asked, in order.
 */
export function kubeScripted(
  answer: (request: SeenRequest) => RawResponse | Promise<RawResponse>,
): {
  connection: KubeConnection;
  requests: SeenRequest[];
} {
  const requests: SeenRequest[] = [];
  const ask = (request: SeenRequest): Promise<RawResponse> => {
    requests.push(request);
    return Promise.resolve(answer(request));
  };
  return {
    requests,
    connection: {
      server: 'https://fake.test',
      request: (request) =>
        ask({
          method: request.method,
          path: request.path,
          ...(request.headers === undefined ? {} : { headers: request.headers }),
          ...(request.body === undefined
            ? {}
            : {
                body:
                  typeof request.body === 'string'
                    ? (JSON.parse(request.body) as unknown)
                    : request.body,
              }),
        }),
      stream: (request) =>
        untilAborted(
          streamFromAnswer(
            untilAborted(ask({ method: 'WATCH', path: request.path }), request.signal),
            request.onLine,
            request.onOpen,
          ),
          request.signal,
        ),
    },
  };
}

/** The answer, unless the signal aborts first (a never-settling answer then rejects). */
function untilAborted<T>(answer: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    answer.then(resolve, reject);
  });
}

/** A Status answer with the HTTP status, as the API server writes failures. */
export function statusAnswer(status: number, reason: string, message: string): RawResponse {
  return {
    status,
    body: JSON.stringify({ kind: 'Status', status: 'Failure', reason, message, code: status }),
  };
}
