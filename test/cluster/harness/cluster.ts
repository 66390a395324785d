// One whole test cluster: the sealed node network, etcd + kube-apiserver + controller-manager,
// and the node agent that runs pods. startCluster returns once the node is Ready;
// stopCluster removes everything, also what a killed run left behind.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
  renameSync,
} from 'node:fs';
import { join } from 'node:path';
import { startControlPlane, stopRecordedControlPlane } from './control-plane';
import { createKubeRest } from './kube-rest';
import { createNodeNetwork, destroyNodeNetwork } from './network';
import { buildTopology } from './topology';
import type { Topology } from './topology';

export interface ClusterOptions {
  readonly instance: number;
  /** Holds PKI, data, logs and the recorded processes; reused (after cleanup) by the next start. */
  readonly stateDir: string;
  /** Repository root. */
  readonly root: string;
  readonly log?: (line: string) => void;
}

export interface RunningCluster {
  readonly kubeconfig: string;
  readonly server: string;
  readonly topology: Topology;
  readonly nodeName: string;
  readonly binDir: string;
  stop(): Promise<void>;
}

const NODE_READY_TIMEOUT_MS = 60_000;
const AGENT_STOP_TIMEOUT_MS = 30_000;

interface AgentRecord {
  readonly pid: number;
}

function agentRecordPath(stateDir: string): string {
  return join(stateDir, 'node-agent.json');
}

function processAlive(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

async function stopAgent(stateDir: string): Promise<void> {
  const path = agentRecordPath(stateDir);
  if (!existsSync(path)) return;
  const { pid } = JSON.parse(readFileSync(path, 'utf8')) as AgentRecord;
  const marker = 'node-agent.cjs';
  if (processAlive(pid, marker)) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitUntil(() => !processAlive(pid, marker), AGENT_STOP_TIMEOUT_MS))) {
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !processAlive(pid, marker), 5_000);
    }
  }
  rmSync(path, { force: true });
}

/** Stops whatever a cluster in stateDir runs or left behind; safe to call on a clean state. */
export async function stopCluster(stateDir: string, instance: number): Promise<void> {
  await stopAgent(stateDir);
  await stopRecordedControlPlane(join(stateDir, 'control-plane'));
  await destroyNodeNetwork(buildTopology(instance));
  rmSync(join(stateDir, 'pods'), { recursive: true, force: true });
}

/**
 * Runs one of the project's build scripts (cached, fast when up to date) and returns the path
 * it prints as its last line of stdout.
 */
function buildOutput(root: string, script: string, what: string, timeoutMs: number): string {
  const result = spawnSync('bash', [join(root, 'scripts', script)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: timeoutMs,
  });
  if (result.status !== 0) throw new Error(`building ${what} failed (exit ${result.status})`);
  return result.stdout.trim().split('\n').at(-1) ?? '';
}

/** Bundles a TypeScript entry point of the test tree the way `npm run cluster:up` runs one. */
function bundle(root: string, entry: string, outfile: string): void {
  const result = spawnSync(
    process.execPath,
    [join(root, 'scripts', 'run-ts.mjs'), '--bundle-only', join(root, entry), outfile],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (result.status !== 0) throw new Error(`bundling ${entry} failed (exit ${result.status})`);
}

async function waitForNodeReady(
  kubeconfig: string,
  nodeName: string,
  agentLog: string,
): Promise<void> {
  const rest = await createKubeRest(kubeconfig);
  try {
    const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const node = await rest.request<{
          status?: { conditions?: { type: string; status: string }[] };
        }>('GET', `/api/v1/nodes/${nodeName}`);
        if (
          node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
        )
          return;
      } catch {
        // not registered yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const tail = existsSync(agentLog)
      ? readFileSync(agentLog, 'utf8').split('\n').slice(-20).join('\n')
      : '';
    throw new Error(
      `node ${nodeName} not Ready within ${NODE_READY_TIMEOUT_MS / 1000}s; agent log:\n${tail}`,
    );
  } finally {
    rest.close();
  }
}

export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { stateDir, root, instance } = options;
  const topology = buildTopology(instance);
  const started = Date.now();
  await stopCluster(stateDir, instance);
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const binDir = buildOutput(root, 'build-k8s-binaries.sh', 'the Kubernetes binaries', 40 * 60_000);
  log(`kubernetes binaries: ${binDir}`);
  const meshctl = join(root, 'dist', 'nginx-meshctl');
  const built = spawnSync(
    process.execPath,
    [join(root, 'scripts', 'build-binary.mjs'), '--if-stale'],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (built.status !== 0) throw new Error('building dist/nginx-meshctl failed');
  const ngxMesh = buildOutput(root, 'build-ngx-mesh.sh', 'the ngx_mesh module', 10 * 60_000);
  const agentBundle = join(stateDir, 'bin', 'node-agent.cjs');
  const echoServer = join(stateDir, 'bin', 'echo-server.cjs');
  bundle(root, 'test/cluster/node/main.ts', agentBundle);
  bundle(root, 'test/cluster/apps/echo-server.ts', echoServer);

  const bootStarted = Date.now();
  try {
    await createNodeNetwork(topology);
    const controlPlane = await startControlPlane({
      stateDir: join(stateDir, 'control-plane'),
      bindAddress: topology.hostAddress,
      serviceCidr: topology.serviceCidr,
      kubernetesServiceIP: topology.kubernetesServiceIP,
      binDir,
      log,
    });
    const kubeletVersion = spawnSync(join(binDir, 'kube-apiserver'), ['--version'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split(' ')
      .at(-1);
    const nodeName = `${topology.prefix}-node`;
    const configPath = join(stateDir, 'node-agent-config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        kubeconfig: controlPlane.kubeconfigPath,
        instance,
        stateDir,
        nodeName,
        kubeletVersion: kubeletVersion ?? 'v0.0.0',
        images: {
          meshctl,
          node: process.execPath,
          echoServer,
          natsServer: '/usr/sbin/nats-server',
          nginxModules: `/usr/lib/nginx/modules/ngx_stream_module.so,${ngxMesh}`,
        },
      }),
    );
    const agentLog = join(stateDir, 'logs', 'node-agent.log');
    const out = openSync(agentLog, 'a');
    const agent = spawn(process.execPath, ['--enable-source-maps', agentBundle, configPath], {
      detached: true,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    agent.unref();
    const record = agentRecordPath(stateDir);
    writeFileSync(`${record}.tmp`, JSON.stringify({ pid: agent.pid }));
    renameSync(`${record}.tmp`, record);
    await waitForNodeReady(controlPlane.kubeconfigPath, nodeName, agentLog);
    log(
      `cluster ${instance} ready: node ${nodeName} Ready ${((Date.now() - bootStarted) / 1000).toFixed(1)}s after boot (${((Date.now() - started) / 1000).toFixed(1)}s in all)`,
    );
    return {
      kubeconfig: controlPlane.kubeconfigPath,
      server: controlPlane.server,
      topology,
      nodeName,
      binDir,
      stop: () => stopCluster(stateDir, instance),
    };
  } catch (error) {
    await stopCluster(stateDir, instance).catch(() => undefined);
    throw error;
  }
}
