// Small hand-written fakes of the runtime interfaces, for in-process tests.
import type { Io } from '../../src/runtime/io';
import { plainStyles } from '../../src/runtime/io';
import { createColorStyles } from '../../src/runtime/styles';
import type { SignalSource, TerminationSignal } from '../../src/runtime/signals';
import type { Clock } from '../../src/runtime/clock';
import type { KubeAccess, KubeTarget, RawResponse } from '../../src/runtime/kube/access';

export interface BufferedIo extends Io {
  stdout(): string;
  stderr(): string;
}

export function createBufferedIo(options: { tty?: boolean; color?: boolean } = {}): BufferedIo {
  const outChunks: string[] = [];
  const errChunks: string[] = [];
  return {
    out: { write: (text) => void outChunks.push(text) },
    err: { write: (text) => void errChunks.push(text) },
    stdoutIsTTY: options.tty ?? false,
    stderrIsTTY: options.tty ?? false,
    styles: options.color === true ? createColorStyles() : plainStyles,
    stdout: () => outChunks.join(''),
    stderr: () => errChunks.join(''),
  };
}

export interface ManualSignals extends SignalSource {
  send(signal: TerminationSignal): void;
  listenerCount(): number;
}

export function createManualSignals(): ManualSignals {
  const handlers = new Set<(signal: TerminationSignal) => void>();
  return {
    onSignal(handler) {
      handlers.add(handler);
      return () => void handlers.delete(handler);
    },
    send(signal) {
      for (const handler of [...handlers]) handler(signal);
    },
    listenerCount: () => handlers.size,
  };
}

/** A clock fixed at one instant whose sleeps resolve at once. */
export function fixedClock(iso = '2026-01-02T03:04:05.000Z'): Clock {
  return {
    now: () => new Date(iso),
    sleep: (_ms, signal) =>
      signal?.aborted === true ? Promise.reject(signal.reason as Error) : Promise.resolve(),
  };
}

/**
 * A read-only KubeAccess answering every GET from one function; writes are refused. A stream
 * gets the whole answer at once, its body split into lines, as if the server then closed it.
 */
export function readOnlyKube(
  getRaw: (target: KubeTarget, path: string) => Promise<RawResponse>,
): KubeAccess {
  return {
    getRaw,
    connect: (target) =>
      Promise.resolve({
        server: 'https://fake.test',
        request: (request) =>
          request.method === 'GET'
            ? getRaw(target, request.path)
            : Promise.reject(new Error(`${request.method} ${request.path}: this fake only reads`)),
        stream: (request) => streamFromAnswer(getRaw(target, request.path), request.onLine),
      }),
  };
}

/** Hands a 2xx answer's lines to onLine and resolves with an empty body, as a stream does. */
export async function streamFromAnswer(
  answer: Promise<RawResponse>,
  onLine: (line: string) => void,
  onOpen?: (status: number) => void,
): Promise<RawResponse> {
  const response = await answer;
  onOpen?.(response.status);
  if (response.status < 200 || response.status > 299) return response;
  for (const line of response.body.split('\n')) if (line.trim() !== '') onLine(line);
  if (HELD in response) return new Promise<RawResponse>(() => undefined);
  return { status: response.status, body: '' };
}

const HELD = Symbol('held open');

/** A watch answer the server keeps open after its lines, until the request is aborted. */
export function heldOpen(body = ''): RawResponse {
  return Object.assign({ status: 200, body }, { [HELD]: true });
}
