// The frame every role runs in, with its real health server on loopback.
import { runCli } from '../support/cli';
import { createBufferedIo, createManualSignals } from '../support/fakes';
import type { BufferedIo, ManualSignals } from '../support/fakes';
import type { Readiness, RoleDefinition } from '../../src/runtime/role/role';
import { systemClock } from '../../src/runtime/clock';

interface Probe {
  readonly role: RoleDefinition;
  setReadiness(state: Readiness): void;
  setLiveness(state: Readiness): void;
  setServing(state: Readiness): void;
  finish(error?: Error): void;
  readonly stopCalls: () => number;
}

/** A role whose readiness, end and stop behaviour the test controls. */
function probeRole(stopBehaviour: 'prompt' | 'hang' | 'fail' = 'prompt'): Probe {
  let readiness: Readiness = { ready: false, reason: 'warming up' };
  let liveness: Readiness | undefined;
  let serving: Readiness | undefined;
  let stops = 0;
  let settle: (error?: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  return {
    setReadiness: (state) => (readiness = state),
    setLiveness: (state) => (liveness = state),
    setServing: (state) => (serving = state),
    finish: (error) => settle(error),
    stopCalls: () => stops,
    role: {
      name: 'probe',
      description: 'a role driven by the test',
      start: ({ logger }) => {
        logger.debug('probe starting', { detail: 1 });
        return Promise.resolve({
          readiness: () => readiness,
          liveness: () => liveness ?? { ready: true },
          serving: () => serving ?? readiness,
          done,
          stop: () => {
            stops += 1;
            if (stopBehaviour === 'hang') return new Promise<void>(() => undefined);
            if (stopBehaviour === 'fail') return Promise.reject(new Error('flush failed'));
            settle();
            return Promise.resolve();
          },
        });
      },
    },
  };
}

async function waitFor<T>(read: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function logLines(io: BufferedIo): Record<string, unknown>[] {
  return io
    .stderr()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function startProbe(
  probe: Probe,
  extraArgs: string[] = [],
): Promise<{ io: BufferedIo; signals: ManualSignals; port: number; exit: Promise<number> }> {
  const io = createBufferedIo();
  const signals = createManualSignals();
  const exit = runCli(
    ['run', '--role', 'probe', '--health-probe-bind-address', '127.0.0.1:0', ...extraArgs],
    { io, signals, clock: systemClock, roles: [probe.role] },
  ).then((result) => result.code);
  const port = await waitFor(
    () =>
      logLines(io).find((line) => line.msg === 'health probes listening')?.port as
        number | undefined,
    'the health server',
  );
  await waitFor(
    () => (logLines(io).some((line) => line.msg === 'started') ? true : undefined),
    'start',
  );
  return { io, signals, port, exit };
}

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

describe('role frame', () => {
  it('serves liveness at once and readiness from the role', async () => {
    const role = probeRole();
    const { port, signals, exit } = await startProbe(role);
    expect(await probe(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await probe(port, '/readyz')).toEqual({ status: 503, body: 'not ready: warming up\n' });
    role.setReadiness({ ready: true });
    expect(await probe(port, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await probe(port, '/metrics')).status).toBe(404);
    signals.send('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('fails liveness with the reason a wedged role gives, and recovers with it', async () => {
    const role = probeRole();
    const { port, signals, exit } = await startProbe(role);
    role.setLiveness({ ready: false, reason: 'a build has run for 121s' });
    expect(await probe(port, '/healthz')).toEqual({
      status: 503,
      body: 'not alive: a build has run for 121s\n',
    });
    role.setLiveness({ ready: true });
    expect(await probe(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    signals.send('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('answers /readyz/serving for what its Service may send, /readyz for the whole job', async () => {
    const role = probeRole();
    const { port, signals, exit } = await startProbe(role);
    role.setServing({ ready: true });
    role.setReadiness({ ready: false, reason: 'leading, but cannot publish on NATS' });
    expect(await probe(port, '/readyz/serving')).toEqual({ status: 200, body: 'ok\n' });
    expect(await probe(port, '/readyz')).toEqual({
      status: 503,
      body: 'not ready: leading, but cannot publish on NATS\n',
    });
    signals.send('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('stops the role on SIGTERM, logs JSON lines and releases the port', async () => {
    const role = probeRole();
    const { io, port, signals, exit } = await startProbe(role);
    signals.send('SIGTERM');
    expect(await exit).toBe(0);
    expect(role.stopCalls()).toBe(1);
    const lines = logLines(io);
    expect(lines.map((line) => line.msg)).toEqual([
      'health probes listening',
      'started',
      'signal received',
      'stopping',
      'stopped',
    ]);
    for (const line of lines) {
      expect(line.role).toBe('probe');
      expect(line.level).toBe('info');
      expect(typeof line.time).toBe('string');
    }
    expect(signals.listenerCount()).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('writes debug lines only at --log-level debug', async () => {
    const quiet = await startProbe(probeRole());
    quiet.signals.send('SIGTERM');
    await quiet.exit;
    expect(logLines(quiet.io).some((line) => line.level === 'debug')).toBe(false);
    const verbose = await startProbe(probeRole(), ['--log-level', 'debug']);
    verbose.signals.send('SIGTERM');
    await verbose.exit;
    expect(logLines(verbose.io)).toContainEqual(
      expect.objectContaining({ level: 'debug', msg: 'probe starting', detail: 1 }),
    );
  });

  it('reports not ready while shutting down', async () => {
    const role = probeRole('hang');
    role.setReadiness({ ready: true });
    const { port, signals, exit } = await startProbe(role, ['--shutdown-timeout', '2s']);
    signals.send('SIGTERM');
    expect(await probe(port, '/readyz')).toEqual({
      status: 503,
      body: 'not ready: shutting down\n',
    });
    signals.send('SIGTERM');
    expect(await exit).toBe(130);
  });

  it('gives up on a role that does not stop within --shutdown-timeout and exits 1', async () => {
    const started = Date.now();
    const { io, signals, exit } = await startProbe(probeRole('hang'), [
      '--shutdown-timeout',
      '300ms',
    ]);
    signals.send('SIGTERM');
    expect(await exit).toBe(1);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(logLines(io)).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'shutdown timed out', timeoutMs: 300 }),
    );
  });

  it('exits 1 and logs the reason when stopping fails', async () => {
    const { io, signals, exit } = await startProbe(probeRole('fail'));
    signals.send('SIGINT');
    expect(await exit).toBe(1);
    expect(logLines(io)).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'shutdown failed', error: 'flush failed' }),
    );
  });

  it('exits 0 when the role finishes by itself and 1 when it fails', async () => {
    const finishing = probeRole();
    const first = await startProbe(finishing);
    finishing.finish();
    expect(await first.exit).toBe(0);

    const failing = probeRole();
    const second = await startProbe(failing);
    failing.finish(new Error('lost the lease'));
    expect(await second.exit).toBe(1);
    expect(logLines(second.io)).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'role failed', error: 'lost the lease' }),
    );
  });

  it('exits 1 with a log line when the probe port is taken', async () => {
    const holder = await startProbe(probeRole());
    const io = createBufferedIo();
    const code = await runCli(
      ['run', '--role', 'probe', '--health-probe-bind-address', `127.0.0.1:${holder.port}`],
      { io, clock: systemClock, roles: [probeRole().role] },
    );
    expect(code.code).toBe(1);
    expect(logLines(io)).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'role failed',
        error: expect.stringContaining('EADDRINUSE') as unknown,
      }),
    );
    holder.signals.send('SIGTERM');
    await holder.exit;
  });
});
