// The agent's work, loaded only when the agent role starts.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { UsageError, describeError } from '../../errors';
import {
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
} from '../../manifests/constants';
import {
  buildTransparentModel,
  parseHealthRedirects,
  printNginxConfig,
} from '../../render/agent-nginx';
import { closeServer, listen } from '../listen';
import { parseBindAddress } from '../role/bind-address';
import type { Logger } from '../role/log';
import type { Readiness, RoleContext, RoleOptions, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import type { NginxPaths, RunningNginx } from './nginx-process';
import { startNginx, testNginxConfig } from './nginx-process';

const DEFAULT_MODULES =
  '/usr/lib/nginx/modules/ngx_stream_module.so,/usr/lib/nginx/modules/ngx_mesh_module.so';
const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
const STOP_GRACE_MS = 5_000;
const LISTEN_WAIT_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

function ipv6Available(): boolean {
  try {
    return readFileSync('/proc/net/if_inet6', 'utf8').trim() !== '';
  } catch {
    return false;
  }
}

/** Writes the configuration atomically: nginx never reads half a file. */
function writeConfig(path: string, text: string): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
}

function renderConfig(options: RoleOptions, runDir: string): string {
  const modules = (
    options.string('nginx-modules') ||
    process.env.NGINX_MESH_MODULES ||
    DEFAULT_MODULES
  )
    .split(',')
    .map((module) => module.trim())
    .filter((module) => module !== '');
  for (const module of modules) {
    if (!existsSync(module))
      throw new UsageError(`nginx module ${module} not found`, 'nginx-meshctl run');
  }
  let healthRedirects;
  try {
    healthRedirects = parseHealthRedirects(options.string('health-redirects'));
  } catch (error) {
    throw new UsageError(describeError(error), 'nginx-meshctl run');
  }
  return printNginxConfig(
    buildTransparentModel({
      runDir,
      modules,
      errorLogLevel: 'warn',
      ipv6: ipv6Available(),
      outboundPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
      inboundPort: SIDECAR_INBOUND_REDIRECT_PORT,
      healthHttpPort: SIDECAR_HEALTH_HTTP_PORT,
      healthHttpsPort: SIDECAR_HEALTH_HTTPS_PORT,
      healthRedirects,
    }),
  );
}

/** Resolves once something accepts connections on 127.0.0.1:port, or rejects after timeoutMs. */
async function waitForListener(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
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
    if (open) return;
    if (Date.now() > deadline)
      throw new Error(`nginx did not listen on ${port} within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Keeps nginx running: a master that dies is restarted with a growing delay. */
class Supervisor {
  private current: RunningNginx | undefined;
  private stopping = false;
  private ready = false;
  private failures = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly paths: NginxPaths,
    private readonly logger: Logger,
  ) {}

  readiness(): Readiness {
    return this.ready ? { ready: true } : { ready: false, reason: 'the proxy is not running' };
  }

  async start(): Promise<void> {
    this.current = startNginx(this.paths, this.logger);
    await waitForListener(SIDECAR_OUTBOUND_REDIRECT_PORT, LISTEN_WAIT_MS);
    this.ready = true;
    this.logger.info('proxy ready (transparent pass-through)', { pid: this.current.pid });
    void this.watch();
  }

  private async watch(): Promise<void> {
    while (!this.stopping && this.current !== undefined) {
      const reason = await this.current.exited;
      if (this.stopping) return;
      this.ready = false;
      this.failures += 1;
      const delay = Math.min(1_000 * 2 ** (this.failures - 1), MAX_RESTART_DELAY_MS);
      this.logger.error('nginx exited; restarting', { reason, delayMs: delay });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopping) return;
      try {
        await this.start();
        this.failures = 0;
      } catch (error) {
        this.logger.error('nginx restart failed', { error: describeError(error) });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.ready = false;
    this.wake?.();
    await this.current?.stop(STOP_GRACE_MS);
  }
}

async function startStatusServer(
  options: RoleOptions,
  readiness: () => Readiness,
): Promise<http.Server> {
  const bind = parseBindAddress(options.string('status-bind-address'));
  if (bind === undefined) {
    throw new UsageError(
      'invalid --status-bind-address: expected host:port or :port',
      'nginx-meshctl run',
    );
  }
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const state = readiness();
      res.writeHead(state.ready ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(state.ready ? 'ok\n' : `not ready: ${state.reason}\n`);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  await listen(server, bind.port, bind.host);
  return server;
}

export async function startAgent({ logger, options }: RoleContext): Promise<RunningRole> {
  const runDir = options.string('run-dir');
  for (const dir of TEMP_DIRS) mkdirSync(join(runDir, dir), { recursive: true });
  const paths: NginxPaths = {
    nginx: options.string('nginx'),
    prefix: runDir,
    config: join(runDir, 'nginx.conf'),
  };
  const candidate = `${paths.config}.new`;
  writeConfig(candidate, renderConfig(options, runDir));
  // A rejected configuration never replaces the one in use.
  await testNginxConfig({ ...paths, config: candidate });
  renameSync(candidate, paths.config);
  logger.info('configuration written', { path: paths.config, owner: options.string('owner') });
  const supervisor = new Supervisor(paths, logger);
  const status = await startStatusServer(options, () => supervisor.readiness());
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop();
    await closeServer(status);
    throw error;
  }
  return runningUntilStopped(
    async () => {
      await supervisor.stop();
      await closeServer(status);
    },
    () => supervisor.readiness(),
  );
}
