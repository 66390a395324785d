// Restarts the test cluster's kube-apiserver and etcd the way a control-plane host reboot does:
// both stop (the API server first), everything else keeps running (the controller-manager, the
// node, every pod), and both start again with the very command lines they ran with, on the same
// ports, over the same etcd data. The recorded processes are rewritten, so the cluster's
// teardown stops the new processes.
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  launchDetached,
  readProcessRecords,
  stopRecordedProcess,
  writeProcessRecords,
} from '../harness/processes';
import type { ProcessRecord } from '../harness/processes';
import { buildTopology } from '../harness/topology';
import { TEST_CLUSTER_INSTANCE } from './global-setup';
import { kubectl } from './mesh-apps';
import { inNetns } from './node-access';

/** The components stopped, in stop order; they start in the reverse order. */
const STOPPED = ['kube-apiserver', 'etcd'] as const;
const STOP_GRACE_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;
const POLL_MS = 250;

interface StoppedProcess {
  readonly record: ProcessRecord;
  readonly argv: readonly string[];
}

export interface StoppedApiServer {
  /** Starts etcd, then kube-apiserver, and resolves once the API server answers ready. */
  start(): Promise<void>;
}

/** The control plane's state directory of the test cluster that global setup started. */
export function testControlPlaneDir(): string {
  const stateDir = process.env.NMK_TEST_STATE_DIR;
  if (stateDir === undefined || stateDir === '')
    throw new Error('NMK_TEST_STATE_DIR is not set: the cluster tier global setup did not run');
  return join(stateDir, 'control-plane');
}

async function commandLineOf(record: ProcessRecord): Promise<string[]> {
  const text = await readFile(`/proc/${record.pid}/cmdline`, 'utf8');
  const argv = text.split('\0');
  if (argv.at(-1) === '') argv.pop();
  return argv;
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await check().catch(() => false))) {
    if (Date.now() >= deadline)
      throw new Error(`${what} was not ready within ${READY_TIMEOUT_MS / 1000} s after a restart`);
    await sleep(POLL_MS);
  }
}

async function etcdHealthy(record: ProcessRecord): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${record.ports.client}/health`, {
    signal: AbortSignal.timeout(2_000),
  });
  return (await response.text()).includes('"health":"true"');
}

async function apiServerReady(): Promise<boolean> {
  const ready = await kubectl(['get', '--raw', '/readyz', '--request-timeout=2s']);
  return ready.exitCode === 0 && ready.stdout.trim() === 'ok';
}

/**
 * Stops kube-apiserver and etcd of the control plane in controlPlaneDir, keeping their data;
 * the returned start() brings them back as they were.
 */
export async function stopApiServerAndEtcd(controlPlaneDir: string): Promise<StoppedApiServer> {
  const records = await readProcessRecords(controlPlaneDir);
  const stopped: StoppedProcess[] = [];
  for (const name of STOPPED) {
    const record = records.find((each) => each.name === name);
    if (record === undefined) throw new Error(`no ${name} recorded in ${controlPlaneDir}`);
    const argv = await commandLineOf(record);
    await stopRecordedProcess(record, controlPlaneDir, STOP_GRACE_MS);
    stopped.push({ record, argv });
  }
  return {
    start: async () => {
      const restarted = new Map<string, ProcessRecord>();
      for (const { record, argv } of [...stopped].reverse()) {
        const [binary = record.binary, ...args] = argv;
        const launched = await launchDetached({
          stateDir: controlPlaneDir,
          name: record.name,
          binary,
          args,
          ports: record.ports,
          // A log of its own, so the earlier runs' logs stay readable.
          logPath: record.log.replace(/(\.restarted-\d+)?\.log$/, `.restarted-${Date.now()}.log`),
        });
        restarted.set(record.name, launched.record);
        await writeProcessRecords(
          controlPlaneDir,
          (await readProcessRecords(controlPlaneDir)).map(
            (each) => restarted.get(each.name) ?? each,
          ),
        );
        if (record.name === 'etcd') await waitUntil('etcd', () => etcdHealthy(launched.record));
        else await waitUntil('kube-apiserver', apiServerReady);
      }
    },
  };
}

/**
 * Whether the API server answers at the kubernetes Service's address, as in-cluster clients (the
 * mesh's roles among them) dial it, through kube-proxy's rules: from the network namespace at
 * netns (a pod's, as a host path), by default the node's. Any HTTP answer counts; a refused or
 * unanswered connection does not.
 */
export async function apiServiceAnswers(netns?: string): Promise<boolean> {
  const topology = buildTopology(TEST_CLUSTER_INSTANCE);
  const script = `require('node:https').get({ host: ${JSON.stringify(topology.kubernetesServiceIP)}, port: 443, path: '/readyz', rejectUnauthorized: false, timeout: 2000 }, (r) => { console.log(r.statusCode); r.resume(); }).on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => console.log('error ' + (e.code ?? e.message)))`;
  const [file, args] = inNetns(netns ?? `/run/netns/${topology.nodeNetns}`, [
    process.execPath,
    '-e',
    script,
  ]);
  const answer = await execa(file, args, { reject: false, timeout: 10_000 });
  return /^\d{3}$/.test(answer.stdout.trim());
}
