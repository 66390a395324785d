// The frame every in-cluster role runs in: structured logs, /healthz and /readyz, and a
// bounded, clean shutdown on SIGTERM. A second signal abandons the shutdown at once.
import { describeError, ExitCode } from '../../errors';
import type { Clock } from '../clock';
import type { ByteSink, Writer } from '../io';
import type { SignalSource, TerminationSignal } from '../signals';
import { startHealthServer } from './health-server';
import type { HealthServer } from './health-server';
import { createJsonLogger } from './log';
import type { Logger, LogLevel } from './log';
import type { Readiness, RoleDefinition, RoleOptions, RunningRole } from './role';

export interface RoleFrameOptions {
  readonly logLevel: LogLevel;
  readonly healthHost: string;
  readonly healthPort: number;
  readonly shutdownTimeoutMs: number;
  /** Every parsed flag, handed to the role. */
  readonly roleOptions: RoleOptions;
}

export interface RoleFrameDeps {
  /** Where log lines go (stderr). */
  readonly log: Writer;
  /** Where a role's data output goes (stdout). */
  readonly out: Writer;
  /** The same stdout as a ByteSink (absent in tests). */
  readonly outStream?: () => ByteSink;
  readonly clock: Clock;
  readonly signals: SignalSource;
  /** Version of this executable, reported by roles that answer version queries. */
  readonly version: string;
}

type Outcome =
  | { readonly kind: 'signal'; readonly signal: TerminationSignal }
  | { readonly kind: 'ended' }
  | { readonly kind: 'failed'; readonly error: unknown };

/** Runs a role until it ends or is signalled; resolves to the process exit code. */
export async function runRole(
  role: RoleDefinition,
  options: RoleFrameOptions,
  deps: RoleFrameDeps,
): Promise<number> {
  const logger = createJsonLogger({
    level: options.logLevel,
    out: deps.log,
    now: () => deps.clock.now(),
    fields: { role: role.name },
  });
  const abort = new AbortController();
  const signals = watchSignals(deps.signals, logger, abort);
  let running: RunningRole | undefined;
  const readiness = (): Readiness => {
    if (abort.signal.aborted) return { ready: false, reason: 'shutting down' };
    return running?.readiness() ?? { ready: false, reason: 'starting' };
  };
  const serving = (): Readiness => {
    if (abort.signal.aborted) return { ready: false, reason: 'shutting down' };
    if (running === undefined) return { ready: false, reason: 'starting' };
    return running.serving?.() ?? running.readiness();
  };
  let health: HealthServer | undefined;
  try {
    if (role.probes !== false) {
      health = await startHealthServer({
        host: options.healthHost,
        port: options.healthPort,
        // Shutting down is not wedged: a restart then would only cut the shutdown short.
        liveness: () => running?.liveness?.() ?? { ready: true },
        readiness,
        serving,
      });
      logger.info('health probes listening', { host: options.healthHost, port: health.port });
    }
    running = await role.start({
      logger,
      signal: abort.signal,
      options: options.roleOptions,
      out: deps.out,
      outStream: deps.outStream,
      version: deps.version,
    });
    logger.info('started', { version: deps.version });
    const outcome = await Promise.race<Outcome>([
      signals.first.then((signal) => ({ kind: 'signal', signal })),
      running.done.then(
        () => ({ kind: 'ended' }),
        (error: unknown) => ({ kind: 'failed', error }),
      ),
    ]);
    return await finish(outcome, running, options, { logger, clock: deps.clock, signals });
  } catch (error) {
    logger.error('role failed', { error: describeError(error) });
    return ExitCode.error;
  } finally {
    signals.dispose();
    await health?.close();
  }
}

async function finish(
  outcome: Outcome,
  running: RunningRole,
  options: RoleFrameOptions,
  context: { logger: Logger; clock: Clock; signals: SignalWatch },
): Promise<number> {
  const { logger } = context;
  switch (outcome.kind) {
    case 'ended':
      logger.info('finished');
      return ExitCode.ok;
    case 'failed':
      logger.error('role failed', { error: describeError(outcome.error) });
      return ExitCode.error;
    case 'signal':
      break;
  }
  logger.info('stopping', { signal: outcome.signal, timeoutMs: options.shutdownTimeoutMs });
  const deadline = new AbortController();
  const result = await Promise.race([
    running.stop().then(
      () => 'stopped' as const,
      (error: unknown) => error,
    ),
    context.clock.sleep(options.shutdownTimeoutMs, deadline.signal).then(
      () => 'timeout' as const,
      () => 'timeout' as const,
    ),
    context.signals.second.then(() => 'abandoned' as const),
  ]);
  deadline.abort();
  if (result === 'stopped') {
    logger.info('stopped');
    return ExitCode.ok;
  }
  if (result === 'abandoned') {
    logger.warn('second signal: exiting without waiting for shutdown');
    return ExitCode.interrupted;
  }
  if (result === 'timeout') {
    logger.error('shutdown timed out', { timeoutMs: options.shutdownTimeoutMs });
    return ExitCode.error;
  }
  logger.error('shutdown failed', { error: describeError(result) });
  return ExitCode.error;
}

interface SignalWatch {
  readonly first: Promise<TerminationSignal>;
  readonly second: Promise<TerminationSignal>;
  dispose(): void;
}

function watchSignals(source: SignalSource, logger: Logger, abort: AbortController): SignalWatch {
  let resolveFirst: (signal: TerminationSignal) => void = () => undefined;
  let resolveSecond: (signal: TerminationSignal) => void = () => undefined;
  const first = new Promise<TerminationSignal>((resolve) => (resolveFirst = resolve));
  const second = new Promise<TerminationSignal>((resolve) => (resolveSecond = resolve));
  let count = 0;
  const dispose = source.onSignal((signal) => {
    count += 1;
    logger.info('signal received', { signal });
    if (count === 1) {
      abort.abort(new Error(`received ${signal}`));
      resolveFirst(signal);
    } else {
      resolveSecond(signal);
    }
  });
  return { first, second, dispose };
}
