// Runs one pod on the node: its network, volumes, init containers in order (native sidecars kept
// running), app containers with probes and the restart policy, and a graceful stop on deletion.
import { constants } from 'node:os';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod, V1Probe, V1Service } from '@kubernetes/client-node';
import type { KubeRest } from '../harness/kube-rest';
import { ContainerProcess } from './container-process';
import type { ExitInfo, MountSpec } from './container-process';
import type { ContainerRuntime, ContainerState, ImageRule, PodRuntime } from './pod-spec';
import { buildEnv, buildPodStatus, imageEnv, podPhase, resolveArgv } from './pod-spec';
import { runProbe } from './probes';
import { prepareVolumes } from './volumes';
import type { PreparedVolumes } from './volumes';

export interface PodRunnerDeps {
  readonly rest: KubeRest;
  readonly netns: string;
  readonly podIP: string;
  readonly hostIP: string;
  readonly podDir: string;
  readonly images: readonly ImageRule[];
  readonly services: (namespace: string) => {
    services: V1Service[];
    kubernetes: V1Service | undefined;
  };
  readonly network: { add(): Promise<void>; remove(): Promise<void> };
  readonly report: (status: Record<string, unknown>) => void;
  readonly log: (msg: string, fields?: Record<string, unknown>) => void;
}

type Kind = 'init' | 'sidecar' | 'main';

const MAX_BACKOFF_MS = 20_000;
const VOLUME_RETRY_MS = 1_000;

class Slot {
  process: ContainerProcess | undefined;
  state: ContainerState = { kind: 'waiting', reason: 'PodInitializing' };
  lastTermination: ContainerState | undefined;
  ready = false;
  started = false;
  restartCount = 0;
  containerID = '';
  /** No further restarts: the container is finished for good. */
  final = false;
  timers: NodeJS.Timeout[] = [];

  constructor(
    readonly spec: V1Container,
    readonly kind: Kind,
  ) {}

  toRuntime(): ContainerRuntime {
    return {
      name: this.spec.name,
      image: this.spec.image ?? '',
      init: this.kind === 'init',
      sidecar: this.kind === 'sidecar',
      state: this.state,
      lastTermination: this.lastTermination,
      ready: this.ready,
      started: this.started,
      restartCount: this.restartCount,
      containerID: this.containerID,
    };
  }

  clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }
}

function exitCode(exit: ExitInfo): number {
  if (exit.signal === undefined) return exit.code;
  const number = (constants.signals as Record<string, number | undefined>)[exit.signal] ?? 9;
  return 128 + number;
}

function referencedNames(container: V1Container): {
  configMaps: Set<string>;
  secrets: Set<string>;
} {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef?.name !== undefined) configMaps.add(source.configMapRef.name);
    if (source.secretRef?.name !== undefined) secrets.add(source.secretRef.name);
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from?.configMapKeyRef?.name !== undefined) configMaps.add(from.configMapKeyRef.name);
    if (from?.secretKeyRef?.name !== undefined) secrets.add(from.secretKeyRef.name);
  }
  return { configMaps, secrets };
}

export class PodRunner {
  private readonly init: Slot[];
  private readonly main: Slot[];
  private readonly startTime = new Date().toISOString();
  private networkReady = false;
  private initialized = false;
  private initFailed = false;
  private stopping = false;
  private volumes: PreparedVolumes | undefined;
  private readonly sleeps = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(
    private readonly pod: V1Pod,
    private readonly deps: PodRunnerDeps,
  ) {
    this.init = (pod.spec?.initContainers ?? []).map(
      (spec) => new Slot(spec, spec.restartPolicy === 'Always' ? 'sidecar' : 'init'),
    );
    this.main = (pod.spec?.containers ?? []).map((spec) => new Slot(spec, 'main'));
    this.done = this.run().catch((error: unknown) => {
      this.deps.log('pod failed', { error: String(error) });
    });
  }

  private get restartPolicy(): PodRuntime['restartPolicy'] {
    const policy = this.pod.spec?.restartPolicy;
    return policy === 'Never' || policy === 'OnFailure' ? policy : 'Always';
  }

  private runtime(): PodRuntime {
    return {
      restartPolicy: this.restartPolicy,
      containers: this.main.map((slot) => slot.toRuntime()),
      initContainers: this.init.map((slot) => slot.toRuntime()),
      initialized: this.initialized,
      initFailed: this.initFailed,
      networkReady: this.networkReady,
      podIP: this.networkReady || this.initialized ? this.deps.podIP : undefined,
      hostIP: this.deps.hostIP,
      startTime: this.startTime,
      now: new Date().toISOString(),
    };
  }

  private report(): void {
    this.deps.report(buildPodStatus(this.runtime()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.sleeps.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.sleeps.add(finish);
    });
  }

  private async run(): Promise<void> {
    mkdirSync(join(this.deps.podDir, 'logs'), { recursive: true });
    await this.deps.network.add();
    this.networkReady = true;
    this.report();
    this.volumes = await this.prepareVolumesUntilReady();
    if (this.volumes === undefined) return;
    for (const slot of this.init) {
      if (this.stopping) return;
      const ok =
        slot.kind === 'sidecar' ? await this.startSidecar(slot) : await this.runInitContainer(slot);
      if (!ok) {
        this.initFailed = true;
        await this.stopSidecars(2_000);
        this.report();
        return;
      }
    }
    if (this.stopping) return;
    this.initialized = true;
    for (const slot of this.main) slot.state = { kind: 'waiting', reason: 'ContainerCreating' };
    this.report();
    await Promise.all(this.main.map((slot) => this.superviseMain(slot)));
    if (this.stopping) return;
    // Every app container is finished for good (a Job): native sidecars stop now.
    await this.stopSidecars(5_000);
    this.report();
    this.volumes.close();
    await this.deps.network.remove();
  }

  private async prepareVolumesUntilReady(): Promise<PreparedVolumes | undefined> {
    while (!this.stopping) {
      try {
        return await prepareVolumes(
          this.deps.rest,
          this.pod,
          join(this.deps.podDir, 'volumes'),
          { podIP: this.deps.podIP, hostIP: this.deps.hostIP },
          this.deps.log,
        );
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        for (const slot of [...this.init, ...this.main]) {
          slot.state = { kind: 'waiting', reason: 'ContainerCreating', message };
        }
        this.report();
        await this.sleep(VOLUME_RETRY_MS);
      }
    }
    return undefined;
  }

  /** ConfigMaps and Secrets the container's environment refers to, fetched now. */
  private async configData(container: V1Container): Promise<{
    configMaps: Map<string, Record<string, string>>;
    secrets: Map<string, Record<string, string>>;
  }> {
    const namespace = this.pod.metadata?.namespace ?? 'default';
    const names = referencedNames(container);
    const configMaps = new Map<string, Record<string, string>>();
    const secrets = new Map<string, Record<string, string>>();
    for (const name of names.configMaps) {
      const object = await this.deps.rest.request<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${namespace}/configmaps/${name}`,
      );
      configMaps.set(name, object.data ?? {});
    }
    for (const name of names.secrets) {
      const object = await this.deps.rest.request<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${namespace}/secrets/${name}`,
      );
      const decoded = Object.entries(object.data ?? {}).map(
        ([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')] as const,
      );
      secrets.set(name, Object.fromEntries(decoded));
    }
    return { configMaps, secrets };
  }

  private mounts(container: V1Container): MountSpec[] {
    const paths = this.volumes?.paths ?? new Map<string, string>();
    return (container.volumeMounts ?? []).flatMap((mount) => {
      const base = paths.get(mount.name);
      if (base === undefined) return [];
      const source =
        mount.subPath === undefined || mount.subPath === '' ? base : join(base, mount.subPath);
      return [{ source, target: mount.mountPath, readOnly: mount.readOnly === true }];
    });
  }

  /** Starts the container's process; false (with a waiting reason) when it cannot be started. */
  /** The container's log file; a restart keeps the run before as the previous log. */
  private freshLog(slot: { spec: { name: string }; restartCount: number }): string {
    const logFile = join(this.deps.podDir, 'logs', `${slot.spec.name}.log`);
    if (slot.restartCount > 0 && existsSync(logFile))
      renameSync(logFile, join(this.deps.podDir, 'logs', `${slot.spec.name}.previous.log`));
    return logFile;
  }

  private async launch(slot: Slot): Promise<boolean> {
    const argv = resolveArgv(slot.spec, this.deps.images);
    if (argv === undefined) {
      slot.state = {
        kind: 'waiting',
        reason: 'ErrImagePull',
        message: `image "${slot.spec.image ?? ''}" is not in the node's image table`,
      };
      this.report();
      return false;
    }
    let data;
    try {
      data = await this.configData(slot.spec);
    } catch (error) {
      slot.state = {
        kind: 'waiting',
        reason: 'CreateContainerConfigError',
        message: String(error),
      };
      this.report();
      return false;
    }
    const namespace = this.pod.metadata?.namespace ?? 'default';
    const { services, kubernetes } = this.deps.services(namespace);
    const env = {
      ...imageEnv(slot.spec, this.deps.images),
      ...buildEnv(this.pod, slot.spec, {
        services,
        kubernetesService: kubernetes,
        ...data,
        podIP: this.deps.podIP,
        hostIP: this.deps.hostIP,
      }),
    };
    const security = { ...this.pod.spec?.securityContext, ...slot.spec.securityContext };
    const uid = security.runAsUser;
    const gid = security.runAsGroup ?? uid;
    const logFile = this.freshLog(slot);
    slot.process = new ContainerProcess({
      netns: this.deps.netns,
      argv,
      env,
      mounts: this.mounts(slot.spec),
      user: uid === undefined || uid === 0 ? undefined : { uid, gid: gid ?? uid },
      workingDir: slot.spec.workingDir,
      logFile,
    });
    slot.containerID = `nmk://${this.pod.metadata?.uid ?? ''}/${slot.spec.name}/${slot.restartCount}`;
    slot.state = { kind: 'running', startedAt: new Date().toISOString() };
    slot.started = slot.spec.startupProbe === undefined;
    slot.ready = slot.spec.readinessProbe === undefined && slot.started;
    this.startProbes(slot);
    this.deps.log('container started', { container: slot.spec.name, pid: slot.process.pid, argv });
    this.report();
    return true;
  }

  /** Waits for the running container to exit and records it as terminated. */
  private async awaitExit(slot: Slot): Promise<number> {
    const process = slot.process;
    if (process === undefined) return 128;
    const exit = await process.exited;
    slot.clearTimers();
    const code = exitCode(exit);
    const startedAt =
      slot.state.kind === 'running' ? slot.state.startedAt : new Date().toISOString();
    slot.state = {
      kind: 'terminated',
      exitCode: code,
      reason: code === 0 ? 'Completed' : 'Error',
      startedAt,
      finishedAt: new Date().toISOString(),
    };
    slot.ready = false;
    slot.process = undefined;
    this.deps.log('container exited', { container: slot.spec.name, exitCode: code });
    this.report();
    return code;
  }

  private async backoff(slot: Slot): Promise<void> {
    slot.lastTermination = slot.state;
    slot.restartCount += 1;
    const delay = Math.min(1_000 * 2 ** (slot.restartCount - 1), MAX_BACKOFF_MS);
    slot.state = {
      kind: 'waiting',
      reason: 'CrashLoopBackOff',
      message: `back-off ${delay}ms restarting failed container`,
    };
    this.report();
    await this.sleep(delay);
  }

  private async runInitContainer(slot: Slot): Promise<boolean> {
    for (;;) {
      if (this.stopping) return false;
      if (!(await this.launch(slot))) {
        await this.sleep(VOLUME_RETRY_MS);
        continue;
      }
      const code = await this.awaitExit(slot);
      if (code === 0) {
        slot.final = true;
        return true;
      }
      if (this.restartPolicy === 'Never' || this.stopping) return false;
      await this.backoff(slot);
    }
  }

  /** Starts a native sidecar and resolves once it has started; it is then kept running. */
  private async startSidecar(slot: Slot): Promise<boolean> {
    const supervise = async (): Promise<void> => {
      while (!this.stopping && !slot.final) {
        if (!(await this.launch(slot))) {
          await this.sleep(VOLUME_RETRY_MS);
          continue;
        }
        await this.awaitExit(slot);
        if (this.stopping || slot.final) return;
        await this.backoff(slot);
      }
    };
    void supervise();
    const deadline = Date.now() + 120_000;
    while (!slot.started && !this.stopping && Date.now() < deadline) await this.sleep(50);
    return slot.started;
  }

  private async superviseMain(slot: Slot): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      if (!(await this.launch(slot))) {
        await this.sleep(VOLUME_RETRY_MS);
        continue;
      }
      const code = await this.awaitExit(slot);
      if (this.stopping) return;
      const policy = this.restartPolicy;
      const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
      if (!restart) {
        slot.final = true;
        return;
      }
      await this.backoff(slot);
    }
  }

  private startProbes(slot: Slot): void {
    const target = { podIP: this.deps.podIP, netns: this.deps.netns, container: slot.spec };
    const schedule = (probe: V1Probe, onResult: (ok: boolean) => void, first: boolean): void => {
      const delay = first
        ? (probe.initialDelaySeconds ?? 0) * 1000
        : (probe.periodSeconds ?? 10) * 1000;
      slot.timers.push(
        setTimeout(() => {
          if (slot.process === undefined || this.stopping) return;
          void runProbe(probe, target).then((ok) => {
            if (slot.process === undefined) return;
            onResult(ok);
            schedule(probe, onResult, false);
          });
        }, delay),
      );
    };
    const counter = (probe: V1Probe, onChange: (ok: boolean) => void): ((ok: boolean) => void) => {
      let successes = 0;
      let failures = 0;
      return (ok) => {
        successes = ok ? successes + 1 : 0;
        failures = ok ? 0 : failures + 1;
        if (ok && successes >= (probe.successThreshold ?? 1)) onChange(true);
        if (!ok && failures >= (probe.failureThreshold ?? 3)) onChange(false);
      };
    };
    const { startupProbe, readinessProbe, livenessProbe } = slot.spec;
    const afterStart = (): void => {
      if (readinessProbe !== undefined) {
        schedule(
          readinessProbe,
          counter(readinessProbe, (ok) => {
            if (slot.ready !== ok) {
              slot.ready = ok;
              this.report();
            }
          }),
          true,
        );
      } else {
        slot.ready = true;
        this.report();
      }
      if (livenessProbe !== undefined) {
        schedule(
          livenessProbe,
          counter(livenessProbe, (ok) => {
            if (!ok) {
              this.deps.log('liveness probe failed', { container: slot.spec.name });
              void slot.process?.stop((this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
            }
          }),
          true,
        );
      }
    };
    if (startupProbe === undefined) {
      if (readinessProbe !== undefined || livenessProbe !== undefined) afterStart();
      return;
    }
    let done = false;
    schedule(
      startupProbe,
      counter(startupProbe, (ok) => {
        if (done) return;
        if (ok) {
          done = true;
          slot.started = true;
          this.report();
          afterStart();
        } else {
          void slot.process?.stop(1_000);
        }
      }),
      true,
    );
  }

  private async stopSidecars(graceMs: number): Promise<void> {
    for (const slot of [...this.init].reverse()) {
      if (slot.kind !== 'sidecar') continue;
      slot.final = true;
      slot.clearTimers();
      await slot.process?.stop(graceMs);
    }
  }

  /** Whether the pod has reached Succeeded or Failed. */
  get terminal(): boolean {
    const phase = podPhase(this.runtime());
    return phase === 'Succeeded' || phase === 'Failed';
  }

  /** Graceful stop: app containers first (SIGTERM, SIGKILL after grace), then sidecars, then the network. */
  async stop(graceSeconds: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      for (const wake of [...this.sleeps]) wake();
      const graceMs = Math.max(graceSeconds, 0) * 1000;
      const all = [...this.main, ...this.init.filter((slot) => slot.kind === 'init')];
      for (const slot of all) slot.clearTimers();
      await Promise.all(all.map((slot) => slot.process?.stop(graceMs) ?? Promise.resolve()));
      await this.stopSidecars(Math.min(graceMs, 2_000));
      this.volumes?.close();
    }
    await this.done;
    await this.deps.network.remove();
    rmSync(join(this.deps.podDir, 'volumes'), { recursive: true, force: true });
  }
}
