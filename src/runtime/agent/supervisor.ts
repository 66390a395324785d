// Keeps the sidecar's nginx running and switches it to new configurations without dropping
// connections. A master that dies is restarted with a doubling, capped delay; a reload is a
// SIGHUP that counts as done only once nginx has started workers for the new configuration.
import { connect } from 'node:net';
import { MeshctlError, describeError } from '../../errors';
import type { Logger } from '../role/log';
import type { Readiness } from '../role/role';
import type { NginxPaths, RunningNginx } from './nginx-process';
import { listNginxChildren, startNginx } from './nginx-process';
import type { RestartBackoff } from './supervisor-policy';
import { reloadComplete, reloadRefusal, restartDelayMs } from './supervisor-policy';

/** How a Supervisor runs nginx. */
export interface SupervisorOptions {
  readonly paths: NginxPaths;
  readonly logger: Logger;
  /** A loopback port the configuration listens on: nginx is ready once it accepts there. */
  readonly readyPort: number;
  /** How long a starting master may take to listen on readyPort. */
  readonly listenWaitMs?: number;
  readonly backoff?: RestartBackoff;
  /** How long a reload may take to start the new workers. */
  readonly reloadTimeoutMs?: number;
  /** How long a graceful stop may take before nginx is killed. */
  readonly stopGraceMs?: number;
  /**
   * Called before every start of nginx, the restarts included: clears what a master that was
   * killed left behind (nginx cannot bind a unix socket whose file exists).
   */
  readonly beforeStart?: () => void;
}

const DEFAULT_BACKOFF: RestartBackoff = { initialMs: 1_000, maxMs: 30_000 };
const POLL_MS = 25;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 500 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Resolves once the master accepts on 127.0.0.1:port; rejects if it exits or times out first. */
async function waitForListener(master: RunningNginx, port: number, timeoutMs: number) {
  let exit: string | undefined;
  void master.exited.then((reason) => (exit = reason));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(port)) return;
    if (exit !== undefined) throw new MeshctlError(`nginx exited while starting (${exit})`);
    if (Date.now() > deadline)
      throw new MeshctlError(`nginx did not listen on ${port} within ${timeoutMs}ms`);
    await sleep(50);
  }
}

/**
 * One supervised nginx. `start` once, `reload` after each change of the configuration file,
 * `stop` at the end. Restarts read the configuration file as it is then.
 */
export class Supervisor {
  private master: RunningNginx | undefined;
  private starting: Promise<void> | undefined;
  private stopping = false;
  private ready = false;
  private notReadyReason = 'nginx has not started';
  private failures = 0;
  private wake: (() => void) | undefined;
  private reloads: Promise<void> = Promise.resolve();

  constructor(private readonly options: SupervisorOptions) {}

  readiness(): Readiness {
    return this.ready ? { ready: true } : { ready: false, reason: this.notReadyReason };
  }

  /** The pid of the running master, if there is one. */
  masterPid(): number | undefined {
    return this.master?.pid;
  }

  /** Starts nginx and resolves once it listens; from then on a master that dies is restarted. */
  async start(): Promise<void> {
    await this.launch();
    void this.watch();
  }

  /**
   * Makes the running master read the configuration file again. Resolves once workers for the
   * new configuration run and the old ones no longer accept connections (those they serve may
   * finish); rejects with nginx's reason when it refuses the file (it then keeps serving with
   * the previous configuration) or when the workers are not replaced within the timeout. When no
   * master runs (not started yet, or waiting to be restarted), or the master exits during the
   * reload, this resolves at once: the next master reads the current file anyway, so no reload
   * is lost. A master that is still starting is waited for, then reloaded.
   */
  reload(): Promise<void> {
    const next = this.reloads.catch(() => undefined).then(() => this.reloadOnce());
    this.reloads = next;
    return next;
  }

  /** Stops nginx gracefully; no restart follows. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ready = false;
    this.notReadyReason = 'the proxy is stopping';
    this.wake?.();
    await this.starting?.catch(() => undefined);
    await this.master?.stop(this.options.stopGraceMs ?? 5_000);
  }

  private async launch(): Promise<void> {
    const { paths, logger, readyPort } = this.options;
    this.options.beforeStart?.();
    const master = startNginx(paths, logger);
    this.master = master;
    this.starting = waitForListener(master, readyPort, this.options.listenWaitMs ?? 10_000);
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
    this.ready = true;
    logger.info('proxy ready', { pid: master.pid });
  }

  private async watch(): Promise<void> {
    while (!this.stopping && this.master !== undefined) {
      const reason = await this.master.exited;
      if (this.stopping) return;
      this.ready = false;
      this.notReadyReason = `nginx exited (${reason}); restarting`;
      this.failures += 1;
      const delayMs = restartDelayMs(this.failures, this.options.backoff ?? DEFAULT_BACKOFF);
      this.options.logger.error('nginx exited; restarting', { reason, delayMs });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopping) return;
      await this.restart();
    }
  }

  private async restart(): Promise<void> {
    try {
      await this.launch();
      this.failures = 0;
    } catch (error) {
      this.options.logger.error('nginx restart failed', { error: describeError(error) });
      // A master that runs but never listens would otherwise hold the loop forever.
      await this.master?.stop(this.options.stopGraceMs ?? 5_000);
    }
  }

  private async reloadOnce(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const master = this.master;
    if (this.stopping || master === undefined || !this.ready) {
      this.options.logger.debug('no running nginx to reload; its next start reads the file');
      return;
    }
    const before = new Set(listNginxChildren(master.pid).map((child) => child.pid));
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearInterval(poll);
        clearTimeout(timer);
        unsubscribe();
        if (error === undefined) resolve();
        else reject(error);
      };
      const unsubscribe = master.onLine((line) => {
        const refusal = reloadRefusal(line);
        if (refusal !== undefined)
          finish(
            new MeshctlError(`nginx refused to reload ${this.options.paths.config}: ${refusal}`),
          );
      });
      const poll = setInterval(() => {
        // A master that exited meanwhile is restarted on the current file: nothing to wait for.
        if (this.master !== master || !this.ready) finish();
        else if (reloadComplete(before, listNginxChildren(master.pid))) finish();
      }, POLL_MS);
      const timeoutMs = this.options.reloadTimeoutMs ?? 10_000;
      const timer = setTimeout(
        () =>
          finish(
            new MeshctlError(`nginx did not replace its workers within ${timeoutMs}ms of SIGHUP`),
          ),
        timeoutMs,
      );
      if (!master.signal('SIGHUP')) finish();
    });
  }
}
