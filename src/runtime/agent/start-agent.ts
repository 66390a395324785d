// The agent's work, loaded only when the agent role starts: the transparent configuration goes
// through the same applier later configurations will, then the supervisor runs nginx on it.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { MeshctlError, UsageError, describeError } from '../../errors';
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
import type { Readiness, RoleContext, RoleOptions, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { createConfigApplier } from './config-applier';
import type { NginxPaths } from './nginx-process';
import { Supervisor } from './supervisor';

const DEFAULT_MODULES =
  '/usr/lib/nginx/modules/ngx_stream_module.so,/usr/lib/nginx/modules/ngx_mesh_module.so';
const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

function ipv6Available(): boolean {
  try {
    return readFileSync('/proc/net/if_inet6', 'utf8').trim() !== '';
  } catch {
    return false;
  }
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
  const supervisor = new Supervisor({
    paths,
    logger,
    readyPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
  });
  // Before nginx starts, applying only writes and checks the file; the first start reads it.
  const applier = createConfigApplier({ paths, supervisor, logger });
  const outcome = await applier.apply(renderConfig(options, runDir), 'transparent');
  if (!outcome.applied) throw new MeshctlError(outcome.error ?? `cannot apply ${paths.config}`);
  logger.info('configuration written', { path: paths.config, owner: options.string('owner') });
  const status = await startStatusServer(options, () => supervisor.readiness());
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop();
    await closeServer(status);
    throw error;
  }
  logger.info('proxy is transparent until the controller sends its configuration');
  return runningUntilStopped(
    async () => {
      await supervisor.stop();
      await closeServer(status);
    },
    () => supervisor.readiness(),
  );
}
