// Steady app traffic for tests that break the mesh while it serves: one Node process inside a
// pod's network namespace sends HTTP GETs at a fixed rate, as the pod's app would (through its
// iptables redirect and sidecar), each on a connection of its own so that a sidecar's graceful
// reload never meets a reused idle connection. It reports every failed request with the time it
// was sent, and a running count every second, so a test can ask what failed in any window. On
// request it also sends a burst of concurrent GETs: more than the sidecar keeps connections
// open to its upstreams, so the sidecars open new mTLS connections and verify certificates
// again, which a steady trickle over kept-alive connections never makes them do.
// Bounded: the process ends by itself after maxDurationMs, and stop() ends it at once.
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import { inNetns } from './node-access';

/** One request that did not get a 200. */
export interface FailedRequest {
  /** When it was sent (ms since the epoch). */
  readonly at: number;
  /** The status ("503") or the error ("error ECONNREFUSED", "error ETIMEDOUT"). */
  readonly outcome: string;
  /** How long it took to fail. */
  readonly ms: number;
}

/** Requests answered (with any status, or an error) in a window. */
export interface TrafficWindow {
  readonly completed: number;
  readonly failed: readonly FailedRequest[];
}

export interface TrafficOptions {
  /** Requests per second. */
  readonly ratePerSecond: number;
  /** Each request's own bound. */
  readonly requestTimeoutMs: number;
  /** The generator ends by itself after this long. */
  readonly maxDurationMs: number;
}

export interface TrafficGenerator {
  /** What was sent in [fromMs, toMs): requests completed (counted per second) and failures. */
  between(fromMs: number, toMs: number): TrafficWindow;
  /** Every failure so far. */
  failures(): readonly FailedRequest[];
  /**
   * Sends count GETs, concurrency at a time, besides the steady ones; resolves once all are
   * answered (their failures are reported as any other's), or after timeoutMs.
   */
  burst(count: number, concurrency: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` more requests completed, with whether all of them succeeded. */
  waitForCompleted(count: number, timeoutMs: number): Promise<boolean>;
  /** Ends the generator (waiting for requests in flight, bounded by their timeout). */
  stop(): Promise<void>;
}

export const DEFAULT_TRAFFIC: TrafficOptions = {
  ratePerSecond: 10,
  requestTimeoutMs: 5_000,
  maxDurationMs: 40 * 60_000,
};

interface Tick {
  readonly type: 'tick';
  readonly at: number;
  readonly completed: number;
  readonly failed: number;
}

interface Failure extends FailedRequest {
  readonly type: 'failed';
}

interface BurstDone {
  readonly type: 'burst';
  readonly id: number;
}

/**
 * The generator: prints {"type":"failed",…} per failure, {"type":"tick",…} every second and
 * {"type":"burst","id":N} when the burst that stdin's line "burst N count concurrency" asked
 * for is answered; ends when stdin does.
 */
function generatorScript(url: string, options: TrafficOptions): string {
  return `
const http = require('node:http');
const target = new URL(${JSON.stringify(url)});
const started = Date.now();
let completed = 0;
let failed = 0;
let inFlight = 0;
let stopping = false;
const print = (message) => process.stdout.write(JSON.stringify(message) + '\\n');
function send(then) {
  const at = Date.now();
  inFlight += 1;
  let settled = false;
  const settle = (outcome) => {
    if (settled) return;
    settled = true;
    inFlight -= 1;
    completed += 1;
    if (outcome !== '200') {
      failed += 1;
      print({ type: 'failed', at, outcome, ms: Date.now() - at });
    }
    if (then !== undefined) then();
  };
  const request = http.get(target, { agent: false, timeout: ${options.requestTimeoutMs} }, (response) => {
    response.on('error', (error) => settle('error ' + (error.code ?? error.name)));
    response.on('end', () => settle(String(response.statusCode)));
    response.resume();
  });
  request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  request.on('error', (error) => settle('error ' + (error.code ?? error.name)));
}
const sender = setInterval(() => {
  if (stopping || Date.now() - started > ${options.maxDurationMs}) return finish();
  send();
}, ${Math.max(1, Math.round(1000 / options.ratePerSecond))});
const ticker = setInterval(() => print({ type: 'tick', at: Date.now(), completed, failed }), 1000);
function finish() {
  stopping = true;
  clearInterval(sender);
  const deadline = Date.now() + ${options.requestTimeoutMs + 1_000};
  const wait = setInterval(() => {
    if (inFlight > 0 && Date.now() < deadline) return;
    clearInterval(wait);
    clearInterval(ticker);
    print({ type: 'tick', at: Date.now(), completed, failed });
    process.exit(0);
  }, 50);
}
function burst(id, count, concurrency) {
  let started = 0;
  let answered = 0;
  const next = () => {
    if (started >= count) return;
    started += 1;
    send(() => {
      answered += 1;
      if (answered === count) print({ type: 'burst', id });
      else next();
    });
  };
  for (let index = 0; index < Math.min(concurrency, count); index += 1) next();
}
let input = '';
process.stdin.on('data', (chunk) => {
  input += chunk;
  for (let newline = input.indexOf('\\n'); newline >= 0; newline = input.indexOf('\\n')) {
    const [word, id, count, concurrency] = input.slice(0, newline).split(' ');
    input = input.slice(newline + 1);
    if (word === 'burst' && !stopping) burst(Number(id), Number(count), Number(concurrency));
  }
});
process.stdin.on('end', finish);
`;
}

/** Starts GETs to url from inside the network namespace at netns (a host path). */
export function startTraffic(
  netns: string,
  url: string,
  options: TrafficOptions = DEFAULT_TRAFFIC,
): TrafficGenerator {
  const [file, args] = inNetns(netns, [process.execPath, '-e', generatorScript(url, options)]);
  const child: ResultPromise = execa(file, args, {
    reject: false,
    stdin: 'pipe',
    timeout: options.maxDurationMs + 60_000,
  });
  const ticks: Tick[] = [];
  const failures: Failure[] = [];
  const bursts = new Set<number>();
  const waiters = new Set<() => void>();
  let burstId = 0;
  if (child.stdout === null) throw new Error('the traffic generator has no stdout');
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let message: Tick | Failure | BurstDone;
    try {
      message = JSON.parse(line) as Tick | Failure | BurstDone;
    } catch {
      return;
    }
    if (message.type === 'tick') ticks.push(message);
    else if (message.type === 'burst') bursts.add(message.id);
    else failures.push(message);
    for (const waiter of waiters) waiter();
  });
  const latest = (): Tick | undefined => ticks.at(-1);
  /** Requests completed by the last tick at or before atMs. */
  const completedAt = (atMs: number): number => {
    let count = 0;
    for (const tick of ticks) {
      if (tick.at > atMs) break;
      count = tick.completed;
    }
    return count;
  };
  return {
    between: (fromMs, toMs) => ({
      completed: completedAt(toMs) - completedAt(fromMs),
      failed: failures.filter((failure) => failure.at >= fromMs && failure.at < toMs),
    }),
    failures: () => failures,
    burst: (count, concurrency, timeoutMs = 30_000) => {
      burstId += 1;
      const id = burstId;
      child.stdin?.write(`burst ${id} ${count} ${concurrency}\n`);
      return new Promise((resolve) => {
        const check = (): void => {
          if (bursts.has(id)) done();
        };
        const timer = setTimeout(() => done(), timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    waitForCompleted: (count, timeoutMs) =>
      new Promise((resolve) => {
        const start = latest() ?? { completed: 0, failed: 0 };
        const check = (): void => {
          const now = latest();
          if (now === undefined || now.completed - start.completed < count) return;
          done(now.failed === start.failed);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(ok);
        };
        waiters.add(check);
      }),
    stop: async () => {
      child.stdin?.end();
      const result = await child;
      lines.close();
      if (result.exitCode !== 0 && result.stderr !== '')
        process.stderr.write(`traffic generator: ${String(result.stderr)}\n`);
    },
  };
}

/**
 * App traffic that outlives the pod it is sent from: a generator from one pod's network
 * namespace that can be moved to another's (a replaced or an additional client), with one record
 * of every request sent from any of them.
 */
export interface MovableTraffic extends TrafficGenerator {
  /** Stops the current generator, if any, and sends from netns from now on. */
  moveTo(netns: string): Promise<void>;
}

export function movableTraffic(
  url: string,
  options: TrafficOptions = DEFAULT_TRAFFIC,
): MovableTraffic {
  const generators: TrafficGenerator[] = [];
  let current: TrafficGenerator | undefined;
  const active = (): TrafficGenerator => {
    if (current === undefined) throw new Error(`no traffic to ${url} is being sent`);
    return current;
  };
  return {
    between: (fromMs, toMs) => {
      const windows = generators.map((generator) => generator.between(fromMs, toMs));
      return {
        completed: windows.reduce((sum, window) => sum + window.completed, 0),
        failed: windows.flatMap((window) => window.failed).sort((a, b) => a.at - b.at),
      };
    },
    failures: () => generators.flatMap((generator) => generator.failures()),
    burst: (count, concurrency, timeoutMs) => active().burst(count, concurrency, timeoutMs),
    waitForCompleted: (count, timeoutMs) => active().waitForCompleted(count, timeoutMs),
    stop: async () => {
      const stopping = current;
      current = undefined;
      await stopping?.stop();
    },
    moveTo: async (netns) => {
      const stopping = current;
      current = startTraffic(netns, url, options);
      generators.push(current);
      await stopping?.stop();
    },
  };
}
