// `npm run demo` / `npm run demo:down`: the mesh with real traffic on a fresh machine. Up builds
// the executable, starts the local cluster (instance 0 in .cluster/, or NMK_CLUSTER_INSTANCE in
// NMK_CLUSTER_DIR), runs Prometheus on the host's end of the node link scraping every sidecar and
// Jaeger beside it receiving their spans, deploys the mesh pointed at both, runs the sample
// application with its traffic generator, and prints `nginx-meshctl top` once the figures arrive
// and a trace of the traffic. Down removes all of it. Each step says what it does and how long it
// took.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import { SIDECAR_METRICS_PORT } from '../../src/manifests/constants';
import { startCluster, stopCluster } from '../../test/cluster/harness/cluster';
import { buildTopology } from '../../test/cluster/harness/topology';
import { LOCAL_IMAGE_FLAGS } from '../../test/support/images';
import { buildJaeger, jaegerConfig } from '../../test/support/jaeger';
import { API_FAIL_PERCENT, DEMO_NAMESPACE, sampleServices, trafficGenerator } from './sample-app';

const root = process.cwd();
/** The local cluster, as `npm run cluster:up` starts it unless the environment names another. */
const INSTANCE = Number(process.env.NMK_CLUSTER_INSTANCE ?? 0);
const clusterDir = process.env.NMK_CLUSTER_DIR ?? join(root, '.cluster');
const demoDir = join(clusterDir, 'demo');
const kubeconfig = join(clusterDir, 'kubeconfig');
const kubectlPath = join(clusterDir, 'bin', 'kubectl');
const meshctlPath = join(root, 'dist', 'nginx-meshctl');
const prometheusPidFile = join(demoDir, 'prometheus.pid');
const jaegerPidFile = join(demoDir, 'jaeger.pid');
const PROMETHEUS_PORT = 9090;
/** Jaeger's query UI and API, and its OTLP receivers (gRPC, HTTP), at their usual ports. */
const JAEGER_QUERY_PORT = 16686;
const JAEGER_OTLP_GRPC_PORT = 4317;
const JAEGER_OTLP_HTTP_PORT = 4318;
/** The share of the demo's requests traced: about two traces a second. */
const DEMO_SAMPLER_RATIO = '0.2';
/** How often Prometheus scrapes the sidecars: short, so that top has figures soon. */
const SCRAPE_INTERVAL = '5s';
/** The longest the demo waits for top to show both services. */
const TRAFFIC_WAIT_MS = 240_000;
/** Every step's commands end within this bound. */
const COMMAND_TIMEOUT_MS = 900_000;

let stepNumber = 0;

async function step<T>(total: number, title: string, run: () => Promise<T>): Promise<T> {
  stepNumber += 1;
  const started = Date.now();
  process.stderr.write(`[${stepNumber}/${total}] ${title}...\n`);
  const result = await run();
  process.stderr.write(`[${stepNumber}/${total}] ${title}: done in ${seconds(started)}\n`);
  return result;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/** Runs a command with its output shown; fails with the command named. */
async function run(command: string, args: readonly string[], input?: string): Promise<string> {
  const result = await execa(command, args, {
    reject: false,
    timeout: COMMAND_TIMEOUT_MS,
    env: { KUBECONFIG: kubeconfig },
    ...(input === undefined ? {} : { input }),
    stdout: 'pipe',
    stderr: 'inherit',
  });
  if (result.exitCode !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (exit ${String(result.exitCode)})`);
  }
  return result.stdout;
}

const kubectl = (args: readonly string[], input?: string) => run(kubectlPath, args, input);
const meshctl = (args: readonly string[]) =>
  run(meshctlPath, ['--kubeconfig', kubeconfig, ...args]);

function prometheusHost(): string {
  return buildTopology(INSTANCE).hostAddress;
}

/**
 * Debian's Prometheus is built without Kubernetes service discovery, so the demo lists the
 * sidecars itself (file_sd), with the labels the shipped scrape job's relabelling would give.
 */
function prometheusConfig(targetsFile: string): string {
  return toYaml({
    global: { scrape_interval: SCRAPE_INTERVAL },
    scrape_configs: [
      {
        job_name: 'nginx-mesh-sidecars',
        file_sd_configs: [{ files: [targetsFile], refresh_interval: SCRAPE_INTERVAL }],
      },
    ],
  });
}

interface PodList {
  readonly items: readonly {
    metadata: { name: string; namespace: string; labels?: Record<string, string> };
    status?: { podIP?: string };
  }[];
}

/** Every injected pod's sidecar metrics port, labelled namespace, pod and owner. */
async function writeScrapeTargets(): Promise<number> {
  const pods = JSON.parse(
    await kubectl(['get', 'pods', '-n', DEMO_NAMESPACE, '-o', 'json']),
  ) as PodList;
  const targets = pods.items.flatMap((pod) => {
    const ip = pod.status?.podIP;
    const owner = Object.entries(pod.metadata.labels ?? {}).find(([name]) =>
      /^nsm\.nginx\.com\/(deployment|statefulset|daemonset)$/.test(name),
    );
    if (ip === undefined || owner === undefined) return [];
    return [
      {
        targets: [`${ip}:${SIDECAR_METRICS_PORT}`],
        labels: {
          namespace: pod.metadata.namespace,
          pod: pod.metadata.name,
          [owner[0].slice('nsm.nginx.com/'.length)]: owner[1],
        },
      },
    ];
  });
  const file = join(demoDir, 'prometheus', 'targets.json');
  writeFileSync(`${file}.new`, JSON.stringify(targets, null, 2));
  renameSync(`${file}.new`, file);
  return targets.length;
}

/** Stops the process group a pid file names, and removes the file. */
function stopDetached(pidFile: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    if (pid > 0) process.kill(-pid, 'SIGTERM');
  } catch {
    // already gone
  }
  rmSync(pidFile, { force: true });
}

const stopPrometheus = (): void => stopDetached(prometheusPidFile);
const stopJaeger = (): void => stopDetached(jaegerPidFile);

/**
 * Jaeger (built from its Go module once, then cached) on the host's end of the node link, where
 * the sidecars export their spans over OTLP/gRPC; its query API answers on JAEGER_QUERY_PORT.
 */
async function startJaegerBackground(): Promise<string> {
  stopJaeger();
  const binary = await buildJaeger(root);
  const dir = join(demoDir, 'jaeger');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'jaeger.yaml');
  writeFileSync(
    config,
    jaegerConfig({
      dir,
      host: prometheusHost(),
      otlpGrpcPort: JAEGER_OTLP_GRPC_PORT,
      otlpHttpPort: JAEGER_OTLP_HTTP_PORT,
      queryPort: JAEGER_QUERY_PORT,
    }),
  );
  const log = openSync(join(dir, 'jaeger.log'), 'a');
  const child = spawn(binary, ['--config', config], {
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  child.unref();
  writeFileSync(jaegerPidFile, `${String(child.pid)}\n`);
  const url = `http://${prometheusHost()}:${JAEGER_QUERY_PORT}`;
  await waitUntil('Jaeger ready', 60_000, async () => {
    const response = await fetch(`${url}/api/services`).catch(() => undefined);
    return response?.ok === true ? true : undefined;
  });
  return url;
}

/** The id of a trace of the demo's traffic with at least two spans (both sidecars'). */
async function demoTrace(jaegerUrl: string): Promise<string> {
  return waitUntil('a trace of the demo in Jaeger', TRAFFIC_WAIT_MS, async () => {
    const response = await fetch(`${jaegerUrl}/api/traces?service=traffic&limit=20`).catch(
      () => undefined,
    );
    if (response?.ok !== true) return undefined;
    const body = (await response.json()) as {
      data?: { traceID: string; spans: unknown[] }[];
    };
    return body.data?.find((trace) => trace.spans.length >= 2)?.traceID;
  });
}

async function startPrometheus(): Promise<string> {
  stopPrometheus();
  const dir = join(demoDir, 'prometheus');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus.yml');
  const targets = join(dir, 'targets.json');
  writeFileSync(targets, '[]\n');
  writeFileSync(config, prometheusConfig(targets));
  const url = `http://${prometheusHost()}:${PROMETHEUS_PORT}`;
  const log = openSync(join(dir, 'prometheus.log'), 'a');
  const child = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${prometheusHost()}:${PROMETHEUS_PORT}`,
      '--storage.tsdb.retention.time=6h',
      '--log.level=warn',
    ],
    // Its own process group, outliving this script until demo:down.
    { stdio: ['ignore', log, log], detached: true },
  );
  closeSync(log);
  child.unref();
  writeFileSync(prometheusPidFile, `${String(child.pid)}\n`);
  await waitUntil('Prometheus ready', 30_000, async () => {
    const response = await fetch(`${url}/-/ready`).catch(() => undefined);
    return response?.ok === true ? true : undefined;
  });
  return url;
}

async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/**
 * Requests each row of the first table shows at least: enough that api's injected failures
 * (one request in ten) are part of the figures rather than a matter of which scrape came first.
 */
const MIN_ROW_REQUESTS = 30;

/** The request count of a top table's row for name, or undefined when it has no row. */
function rowRequests(table: string, name: string): number | undefined {
  const columns = table
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/))
    .find((row) => row[0] === name);
  return columns === undefined ? undefined : Number(columns[columns.length - 1]);
}

/** top's table once it shows enough traffic for the generator and both services. */
async function topWithTraffic(): Promise<string> {
  return waitUntil('traffic figures in nginx-meshctl top', TRAFFIC_WAIT_MS, async () => {
    const result = await execa(
      meshctlPath,
      ['--kubeconfig', kubeconfig, 'top', 'deployments', '-n', DEMO_NAMESPACE],
      {
        reject: false,
        timeout: 60_000,
      },
    );
    const enough = (name: string) => (rowRequests(result.stdout, name) ?? 0) >= MIN_ROW_REQUESTS;
    return result.exitCode === 0 && enough('web') && enough('api') && enough('traffic')
      ? result.stdout
      : undefined;
  });
}

async function up(): Promise<void> {
  const started = Date.now();
  const total = 8;
  await step(total, 'building nginx-meshctl and the nginx module', async () => {
    await run('node', [join(root, 'scripts', 'build-binary.mjs'), '--if-stale']);
    await run('bash', [join(root, 'scripts', 'build-ngx-mesh.sh')]);
  });
  await step(
    total,
    'starting the local cluster (builds the Kubernetes binaries once)',
    async () => {
      const cluster = await startCluster({ instance: INSTANCE, stateDir: clusterDir, root });
      writeFileSync(kubeconfig, readFileSync(cluster.kubeconfig));
      mkdirSync(join(clusterDir, 'bin'), { recursive: true });
      rmSync(kubectlPath, { force: true });
      await run('ln', ['-s', join(cluster.binDir, 'kubectl'), kubectlPath]);
    },
  );
  const prometheusUrl = await step(total, 'starting Prometheus', startPrometheus);
  const jaegerUrl = await step(
    total,
    'starting Jaeger (built from its Go module once)',
    startJaegerBackground,
  );
  await step(total, 'deploying the mesh', () =>
    meshctl([
      'deploy',
      ...LOCAL_IMAGE_FLAGS,
      '--prometheus-address',
      prometheusUrl,
      '--telemetry-exporters',
      `type=otlp,host=${prometheusHost()},port=${JAEGER_OTLP_GRPC_PORT}`,
      '--telemetry-sampler-ratio',
      DEMO_SAMPLER_RATIO,
    ]),
  );
  await step(total, 'deploying the sample app (web, api) in namespace demo', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: sampleServices() }),
    );
    for (const name of ['web', 'api'])
      await kubectl([
        'rollout',
        'status',
        `deployment/${name}`,
        '-n',
        DEMO_NAMESPACE,
        '--timeout=180s',
      ]);
  });
  await step(
    total,
    'starting the traffic generator; Prometheus scrapes every sidecar',
    async () => {
      const generator = trafficGenerator();
      await kubectl(['apply', '-f', '-'], JSON.stringify(generator));
      await kubectl([
        'rollout',
        'status',
        'deployment/traffic',
        '-n',
        DEMO_NAMESPACE,
        '--timeout=180s',
      ]);
      const scraped = await writeScrapeTargets();
      process.stderr.write(`Prometheus scrapes ${scraped} sidecars\n`);
    },
  );
  const table = await step(
    total,
    'waiting for the first figures in nginx-meshctl top',
    topWithTraffic,
  );
  process.stdout.write(`\n$ nginx-meshctl top deployments -n ${DEMO_NAMESPACE}\n${table}`);
  const traceId = await demoTrace(jaegerUrl);
  process.stdout.write(
    [
      '',
      `The demo is up after ${seconds(started)}. api fails ${API_FAIL_PERCENT}% of its requests on purpose.`,
      'Try:',
      `  export KUBECONFIG=${kubeconfig}`,
      `  dist/nginx-meshctl top deployments -n ${DEMO_NAMESPACE} --watch`,
      `  dist/nginx-meshctl top deployment/traffic -n ${DEMO_NAMESPACE}`,
      `  ${kubectlPath} get pods -n ${DEMO_NAMESPACE}`,
      `Prometheus: ${prometheusUrl}`,
      `Jaeger: ${jaegerUrl} (query API; ${DEMO_SAMPLER_RATIO} of the requests are traced)`,
      `  a trace of the demo: ${jaegerUrl}/api/traces/${traceId}`,
      'Remove it all with: npm run demo:down',
      '',
    ].join('\n'),
  );
}

async function down(): Promise<void> {
  const total = 4;
  const clusterRunning = existsSync(kubeconfig) && existsSync(kubectlPath);
  await step(total, 'removing the sample app and the mesh', async () => {
    if (!clusterRunning) return;
    const reachable = await execa(kubectlPath, ['get', '--raw', '/readyz'], {
      reject: false,
      timeout: 10_000,
      env: { KUBECONFIG: kubeconfig },
    });
    if (reachable.exitCode !== 0) return;
    await kubectl(['delete', 'namespace', DEMO_NAMESPACE, '--ignore-not-found', '--timeout=120s']);
    const removed = await execa(meshctlPath, ['--kubeconfig', kubeconfig, 'remove', '-y'], {
      reject: false,
      timeout: 300_000,
      stderr: 'inherit',
    });
    // Exit 1 with "not found" when no mesh is left: nothing to do. The cluster stops either way.
    if (removed.exitCode !== 0)
      process.stderr.write('demo: no mesh removed; stopping the cluster\n');
  });
  await step(total, 'stopping Prometheus', () => Promise.resolve(stopPrometheus()));
  await step(total, 'stopping Jaeger', () => Promise.resolve(stopJaeger()));
  await step(total, 'stopping the local cluster', async () => {
    await stopCluster(clusterDir, INSTANCE);
    rmSync(demoDir, { recursive: true, force: true });
  });
}

const command = process.argv[2];
const action = command === 'up' ? up : command === 'down' ? down : undefined;
if (action === undefined) {
  process.stderr.write(`usage: demo (up|down); got ${JSON.stringify(command)}\n`);
  process.exitCode = 2;
} else {
  action().catch((error: unknown) => {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
