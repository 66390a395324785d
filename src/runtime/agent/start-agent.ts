// The agent's work, loaded only when the agent role starts: the transparent configuration goes
// through the same applier later configurations will, then the supervisor runs nginx on it.
// Meanwhile the agent fetches its SVID, connects to NATS with it and from then on renders every
// snapshot the controller publishes into nginx's configuration, acknowledging each generation.
// NATS is dialled until it answers and again whenever a connection is given up, and each new
// connection subscribes anew, so no fault of the control plane leaves a sidecar deaf for good.
// Until the first configuration the proxy is transparent, or, in strict mTLS, closed: it passes
// no plaintext at all. /readyz, which holds a native sidecar's app back and keeps the pod out of
// its Services, waits for the first configuration; without one it turns ready after
// --config-wait only when transparent (and says so), never when closed. Once configured the
// sidecar stays ready while the control plane is away: it serves its last configuration.
// nginx counts requests in shared memory; the agent takes the counts over a unix socket only its
// uid reaches and serves them on /metrics. nginx's access log, in the mesh configuration's format,
// reaches the agent through a FIFO, which it copies to its stdout (access-log-relay.ts).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { MeshctlError, UsageError, describeError } from '../../errors';
import type { NatsConnection } from 'nats';
import {
  NATS_SERVICE_ACCOUNT_NAME,
  SIDECAR_HEALTH_HTTP_PORT,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_INBOUND_REDIRECT_PORT,
  SIDECAR_METRICS_PATH,
  SIDECAR_OUTBOUND_REDIRECT_PORT,
  SIDECAR_PROXY_READY_PATH,
  SIDECAR_READY_PATH,
  SIDECAR_STATS_HTTP_ZONE,
  SIDECAR_STATS_PATH,
  SIDECAR_STATS_TCP_ZONE,
  SVID_BUNDLE_FILE_NAME,
  SVID_FILE_NAME,
} from '../../manifests/constants';
import type { BusIdentity } from '../../manifests/install/nats-config';
import {
  agentInboxPrefix,
  agentSubscriptionSubject,
  busIdentityOfSpiffeId,
} from '../../manifests/install/nats-config';
import type { MeshMtlsMode } from '../../manifests/mesh-config/deploy-flags';
import { spiffeIdOf, trustDomainOf } from '../../manifests/registrar/svid-policy';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import type { HealthRedirect } from '../../render/agent-nginx';
import {
  buildTransparentModel,
  parseHealthRedirects,
  printNginxConfig,
} from '../../render/agent-nginx';
import type { SidecarContext } from '../../render/sidecar';
import type { AgentBus } from '../bus/agent-bus';
import { startAgentBus } from '../bus/agent-bus';
import type { BusLink } from '../bus/connect';
import { startBusLink } from '../bus/connect';
import { closeServer, listen } from '../listen';
import { parseBindAddress } from '../role/bind-address';
import type { Logger } from '../role/log';
import type { Readiness, RoleContext, RoleOptions, RunningRole } from '../role/role';
import { runningUntilStopped } from '../role/role';
import { natsUrlOf, startIdentity, svidReadiness } from '../svid/identity';
import { startAgentAccessLog } from './access-log-relay';
import type { ConfigApplier } from './config-applier';
import { podResource, startAgentTracing } from './tracing/agent-tracing';
import { applierExposition, createConfigApplier } from './config-applier';
import { createSnapshotApplier } from './snapshot-applier';
import type { SnapshotRenderer } from './snapshot-applier';
import { renderGatewayConfig } from '../../render/gateway';
import { scanCertificates } from '../gateway/certificates';
import type { CertificateScan } from '../gateway/certificates';
import { createHeapTrimmer } from './heap-trim';
import type { SidecarMetrics } from './metrics/sidecar-metrics';
import { prepareStatsSocket, startSidecarMetrics, sidecarMembers } from './metrics/sidecar-metrics';
import type { NginxPaths } from './nginx-process';
import { Supervisor } from './supervisor';

/** The modules the sidecar's nginx loads unless told otherwise: where the sidecar image puts them. */
export const DEFAULT_MODULES =
  '/usr/lib/nginx/modules/ngx_stream_module.so,/usr/lib/nginx/modules/ngx_mesh_module.so';
const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

function ipv6Available(): boolean {
  try {
    return readFileSync('/proc/net/if_inet6', 'utf8').trim() !== '';
  } catch {
    return false;
  }
}

interface ProxyInputs {
  readonly modules: readonly string[];
  readonly healthRedirects: Readonly<Record<string, HealthRedirect>>;
  readonly ipv6: boolean;
}

function proxyInputs(options: RoleOptions): ProxyInputs {
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
  return { modules, healthRedirects, ipv6: ipv6Available() };
}

function renderTransparent(inputs: ProxyInputs, runDir: string, closed: boolean): string {
  return printNginxConfig(
    buildTransparentModel({
      closed,
      runDir,
      modules: inputs.modules,
      errorLogLevel: 'warn',
      ipv6: inputs.ipv6,
      outboundPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
      inboundPort: SIDECAR_INBOUND_REDIRECT_PORT,
      healthHttpPort: SIDECAR_HEALTH_HTTP_PORT,
      healthHttpsPort: SIDECAR_HEALTH_HTTPS_PORT,
      healthRedirects: inputs.healthRedirects,
    }),
  );
}

/** This pod as the downward API describes it in the sidecar's environment. */
function podOf(env: Readonly<Record<string, string | undefined>>): {
  readonly namespace: string;
  readonly name: string;
  readonly ip: string;
  readonly serviceAccount: string;
} {
  return {
    namespace: env.MY_NAMESPACE ?? '',
    name: env.MY_POD_NAME ?? '',
    ip: env.MY_POD_IP ?? '',
    serviceAccount: env.MY_SERVICE_ACCOUNT ?? '',
  };
}

async function startStatusServer(
  options: RoleOptions,
  readiness: { readonly proxy: () => Readiness; readonly mesh: () => Readiness },
  metrics: Pick<SidecarMetrics, 'exposition'>,
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
    if (path === SIDECAR_METRICS_PATH) {
      void metrics.exposition().then((text) => {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
      });
      return;
    }
    if (path === SIDECAR_READY_PATH || path === SIDECAR_PROXY_READY_PATH) {
      const state = path === SIDECAR_READY_PATH ? readiness.mesh() : readiness.proxy();
      res.writeHead(state.ready ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(state.ready ? 'ok\n' : `not ready: ${state.reason}\n`);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  await listen(server, bind.port, bind.host);
  return server;
}

/** The metrics pipeline, taking nginx's counts from its stats socket (prepareStatsSocket). */
function startMetrics(socketPath: string): SidecarMetrics {
  return startSidecarMetrics({
    socketPath,
    path: SIDECAR_STATS_PATH,
    httpZone: SIDECAR_STATS_HTTP_ZONE,
    tcpZone: SIDECAR_STATS_TCP_ZONE,
  });
}

/** What makes the agent a gateway (gateway-role.ts): the Gateway served and its certificates. */
export interface GatewayMode {
  /** "<namespace>/<name>". */
  readonly gateway: string;
  readonly certificateDir: string;
}

/** How often a gateway looks at its certificate directory (the kubelet updates it in place). */
const CERTIFICATE_POLL_MS = 5_000;

export async function startAgent(
  { logger, options, version, outStream }: RoleContext,
  gateway?: GatewayMode,
): Promise<RunningRole> {
  const runDir = options.string('run-dir');
  for (const dir of TEMP_DIRS) mkdirSync(join(runDir, dir), { recursive: true });
  // Made before any `nginx -t`: every mesh configuration names it, and nginx opens it to check.
  const accessLog = await startAgentAccessLog(runDir, outStream, logger);
  const paths: NginxPaths = {
    nginx: options.string('nginx'),
    prefix: runDir,
    config: join(runDir, 'nginx.conf'),
  };
  const supervisor = new Supervisor({
    paths,
    logger,
    readyPort: SIDECAR_OUTBOUND_REDIRECT_PORT,
    // A master killed outright leaves its stats socket, which the next one could not bind.
    beforeStart: () => void prepareStatsSocket(runDir),
  });
  // Before nginx starts, applying only writes and checks the file; the first start reads it.
  const applier = createConfigApplier({
    paths,
    supervisor,
    logger,
    members: sidecarMembers(runDir),
  });
  const inputs = proxyInputs(options);
  // Strict mTLS: closed until the mesh configuration says otherwise.
  const closed = options.changed('mtls-mode') && options.string('mtls-mode') === 'strict';
  const outcome = await applier.apply(
    renderTransparent(inputs, runDir, closed),
    closed ? 'closed' : 'transparent',
  );
  if (!outcome.applied) {
    await accessLog?.close();
    throw new MeshctlError(outcome.error ?? `cannot apply ${paths.config}`);
  }
  logger.info('configuration written', { path: paths.config, owner: options.string('owner') });
  const configWaitMs = options.duration('config-wait');
  const startedMs = Date.now();
  let configured = false;
  // Only says so: readiness itself follows the clock.
  const configTimer = setTimeout(() => {
    if (closed) {
      logger.warn('no mesh configuration yet; strict mTLS: the proxy stays closed and not ready', {
        waitedMs: configWaitMs,
      });
    } else {
      logger.warn('no mesh configuration yet; reporting the transparent proxy ready', {
        waitedMs: configWaitMs,
      });
    }
  }, configWaitMs);
  configTimer.unref();
  /** The mesh configuration's background work, started once nginx runs. */
  const background: { mesh?: { readiness(): Readiness; stop(): Promise<void> } } = {};
  let draining = false;
  const meshReadiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'draining before the pod stops' };
    const proxy = supervisor.readiness();
    if (!proxy.ready || configured) return proxy;
    const waiting = background.mesh?.readiness() ?? { ready: false, reason: 'starting' };
    const reason = `waiting for the mesh configuration${waiting.ready ? '' : `: ${waiting.reason}`}`;
    if (closed) return { ready: false, reason: `${reason} (strict mTLS: closed until then)` };
    if (Date.now() - startedMs >= configWaitMs) return proxy;
    return { ready: false, reason };
  };
  // Counting starts before nginx does, so that no request of the first configuration is missed.
  const statsSocket = prepareStatsSocket(runDir);
  const metrics = startMetrics(statsSocket);
  const pod = podOf(process.env);
  const tracing = startAgentTracing({
    socketPath: statsSocket,
    resource: podResource({ ...pod, owner: options.string('owner') }),
    version,
    logger,
  });
  const status = await startStatusServer(
    options,
    { proxy: () => supervisor.readiness(), mesh: meshReadiness },
    {
      exposition: async () =>
        (await metrics.exposition()) + tracing.exposition() + applierExposition(applier),
    },
  );
  try {
    await supervisor.start();
  } catch (error) {
    clearTimeout(configTimer);
    await supervisor.stop();
    await accessLog?.close();
    await closeServer(status);
    await metrics.close();
    await tracing.close();
    throw error;
  }
  logger.info(
    closed
      ? 'proxy is closed (strict mTLS) until the controller sends its configuration'
      : 'proxy is transparent until the controller sends its configuration',
  );
  const heap = createHeapTrimmer(logger);
  heap.schedule();
  const mesh = startMeshConfiguration(options, {
    logger,
    version,
    gateway,
    runDir,
    inputs,
    accessLog: accessLog?.path,
    apply: (text, label, members) => applier.apply(text, label, members),
    check: (text) => applier.check(text),
    reloadFile: (path) => applier.reloadFile(path),
    onApplied: (snapshot) => {
      metrics.applySnapshot(snapshot);
      tracing.applySnapshot(snapshot);
      if (!configured) {
        logger.info('the mesh configuration runs; ready for traffic');
        // Once: the start of the mesh configuration (SVID, NATS, the first render) is a burst
        // like the agent's own start. Later configurations keep their code warm (heap-trim.ts).
        heap.schedule();
      }
      configured = true;
      clearTimeout(configTimer);
    },
  });
  background.mesh = mesh;
  return runningUntilStopped(async () => {
    clearTimeout(configTimer);
    heap.close();
    // Still serving, with the mesh configuration still applied, while peers hear the pod is going.
    const drainMs = options.duration('drain-duration');
    if (drainMs > 0) {
      draining = true;
      logger.info('draining: the proxy serves on, not ready, before it stops', { drainMs });
      await new Promise((resolve) => setTimeout(resolve, drainMs));
    }
    await mesh.stop();
    applier.close();
    // nginx still runs: the spans it recorded last are taken and sent.
    await tracing.close();
    await supervisor.stop();
    // After nginx, so that its last lines are copied.
    await accessLog?.close();
    await closeServer(status);
    await metrics.close();
  }, meshReadiness);
}

/**
 * In the background: the SVID, then NATS, then every snapshot rendered and applied. Failures
 * retry (the SVID client and the bus link on their own) and never stop the proxy; each new
 * connection gets its own subscriptions, and the one before it is let go.
 */
function startMeshConfiguration(
  options: RoleOptions,
  settings: {
    readonly logger: Logger;
    readonly version: string;
    readonly gateway: GatewayMode | undefined;
    readonly runDir: string;
    readonly inputs: ProxyInputs;
    /** The FIFO nginx logs to; absent: no access log. */
    readonly accessLog: string | undefined;
    readonly apply: ConfigApplier['apply'];
    readonly check: ConfigApplier['check'];
    /** Reloads nginx for a file its configuration names that changed (the trust bundle). */
    readonly reloadFile: ConfigApplier['reloadFile'];
    /** Called with every snapshot whose configuration runs. */
    readonly onApplied: (snapshot: MeshSnapshot) => void;
  },
): { readiness(): Readiness; stop(): Promise<void> } {
  const { logger, runDir, inputs } = settings;
  const meshNamespace = options.string('mesh-namespace');
  const pod = podOf(process.env);
  const tlsDir = join(runDir, 'tls');
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  // nginx reads the trust bundle only when it loads its configuration: a new root needs a reload.
  const identity = startIdentity(options, {
    meshNamespace,
    outputDir: tlsDir,
    logger,
    onBundleChanged: (path) => void settings.reloadFile(path),
  });
  const context: SidecarContext = {
    pod: `${pod.namespace}/${pod.name}`,
    serviceAccount: pod.serviceAccount,
    podIPs: pod.ip === '' ? [] : [pod.ip],
    containerPorts: options.ints('container-port'),
    ...(options.changed('mtls-mode')
      ? { mtlsMode: options.string('mtls-mode') as MeshMtlsMode }
      : {}),
    ...(options.string('client-max-body-size') === ''
      ? {}
      : { clientMaxBodySize: options.string('client-max-body-size') }),
    defaultEgressAllowed: options.bool('default-egress-allowed'),
    healthRedirects: inputs.healthRedirects,
    ipv6: inputs.ipv6,
    modules: inputs.modules,
    runDir,
    svidFile: join(tlsDir, SVID_FILE_NAME),
    bundleFile: join(tlsDir, SVID_BUNDLE_FILE_NAME),
    ...(settings.accessLog === undefined ? {} : { accessLog: settings.accessLog }),
  };
  let stopped = false;
  let link: BusLink | undefined;
  // Set from the SVID before the first connection: NATS knows the agent by its SPIFFE ID.
  let busIdentity: BusIdentity = { namespace: pod.namespace, serviceAccount: pod.serviceAccount };
  let bus: Promise<AgentBus | undefined> = Promise.resolve(undefined);
  const certificates = startCertificateWatch(settings.gateway, logger, () => snapshots.reapply());
  const snapshots = createSnapshotApplier({
    context,
    ...(certificates === undefined ? {} : { render: certificates.render }),
    logger,
    apply: settings.apply,
    check: settings.check,
    onApplied: settings.onApplied,
  });
  /** Subscribes on a new connection once the previous connection's bus has let go. */
  const listenOn = (connection: NatsConnection): void => {
    const previous = bus;
    bus = (async () => {
      await (await previous)?.close();
      if (stopped || connection.isClosed()) return undefined;
      return startAgentBus(connection, {
        pod: context.pod,
        subject: agentSubscriptionSubject(busIdentity),
        version: settings.version,
        logger,
        apply: (snapshot, generation, unrendered) =>
          snapshots.apply(snapshot, generation, unrendered),
      });
    })().catch((error: unknown) => {
      if (!stopped && !connection.isClosed())
        logger.error('cannot subscribe to the mesh configuration', { error: describeError(error) });
      return undefined;
    });
  };
  const started = identity.ready.then(
    (svid) => {
      if (stopped) return;
      busIdentity = busIdentityOfSpiffeId(svid.spiffeId) ?? busIdentity;
      link = startBusLink({
        servers: [natsUrlOf(options.string('nats-url'), process.env, meshNamespace)],
        name: `agent ${context.pod}`,
        svidFile: context.svidFile,
        bundleFile: context.bundleFile,
        expectedServerId: spiffeIdOf(
          trustDomainOf(svid.spiffeId),
          meshNamespace,
          NATS_SERVICE_ACCOUNT_NAME,
        ),
        inboxPrefix: agentInboxPrefix(busIdentity),
        logger,
        onConnection: listenOn,
      });
    },
    (error: unknown) => {
      if (!stopped) logger.error('cannot get an SVID', { error: describeError(error) });
    },
  );
  return {
    readiness(): Readiness {
      const svid = svidReadiness(identity);
      if (!svid.ready) return svid;
      if (link === undefined)
        return { ready: false, reason: 'waiting for an SVID from the registrar' };
      return link.readiness();
    },
    async stop() {
      stopped = true;
      certificates?.stop();
      await identity.stop();
      await started;
      await (await bus)?.close();
      await link?.close();
    },
  };
}

/**
 * A gateway's renderer and the watch on its certificate directory: the Gateway's configuration
 * with the listeners whose certificates are usable, rendered again whenever the files change.
 */
function startCertificateWatch(
  gateway: GatewayMode | undefined,
  logger: Logger,
  reapply: () => Promise<string | undefined>,
): { render: SnapshotRenderer; stop(): void } | undefined {
  if (gateway === undefined) return undefined;
  let scan: CertificateScan = scanCertificates(gateway.certificateDir);
  const report = (): void => {
    for (const [listener, reason] of scan.refused)
      logger.warn('listener certificate not usable; the listener is left out', {
        listener,
        reason,
      });
  };
  report();
  const timer = setInterval(() => {
    const next = scanCertificates(gateway.certificateDir);
    if (next.fingerprint === scan.fingerprint) return;
    scan = next;
    report();
    logger.info('listener certificates changed', { usable: [...scan.usable].sort() });
    void reapply().then((error) => {
      if (error !== undefined)
        logger.warn('configuration with the new certificates not applied', { error });
    });
  }, CERTIFICATE_POLL_MS);
  timer.unref();
  return {
    render: (snapshot, context) =>
      renderGatewayConfig(snapshot, {
        ...context,
        gateway: gateway.gateway,
        certificateDir: gateway.certificateDir,
        certificates: scan.usable,
      }),
    stop: () => clearInterval(timer),
  };
}
