// The test cluster's node: registers a Node, binds pending pods to itself (the cluster has no
// scheduler), runs its pods through PodRunner, reports their status, and keeps the service NAT
// rules in sync with Services and EndpointSlices.
import type { Server } from 'node:https';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { KubeObject, KubeRest } from '../harness/kube-rest';
import { KubeRestError } from '../harness/kube-rest';
import { keyOf, startInformer } from '../harness/informer';
import type { Informer } from '../harness/informer';
import type { Topology } from '../harness/topology';
import type { ServiceRule } from '../harness/service-rules';
import type { ImageRule } from './pod-spec';
import { startLogServer } from './log-server';
import { PodRunner } from './pod-runner';

/** The port of the node's kubelet endpoint (container logs), as a kubelet's. */
const KUBELET_PORT = 10_250;

export interface NodeNetwork {
  addPod(podId: string, podIP: string): Promise<void>;
  removePod(podId: string): Promise<void>;
  applyServices(rules: readonly ServiceRule[]): Promise<void>;
}

export interface AgentOptions {
  readonly rest: KubeRest;
  readonly topology: Topology;
  readonly nodeName: string;
  readonly stateDir: string;
  readonly images: readonly ImageRule[];
  readonly network: NodeNetwork;
  readonly kubeletVersion: string;
  readonly log: (msg: string, fields?: Record<string, unknown>) => void;
}

type PodObject = V1Pod & KubeObject;
type ServiceObject = V1Service & KubeObject;
type SliceObject = V1EndpointSlice & KubeObject;

/** Hands out pod addresses from the node's pod range, lowest free first. */
class AddressPool {
  private readonly used = new Map<string, string>();
  constructor(private readonly prefix: string) {}

  take(owner: string): string {
    const existing = this.used.get(owner);
    if (existing !== undefined) return existing;
    const taken = new Set(this.used.values());
    for (let host = 10; host < 250; host += 1) {
      const ip = `${this.prefix}.${host}`;
      if (!taken.has(ip)) {
        this.used.set(owner, ip);
        return ip;
      }
    }
    throw new Error('pod address range exhausted');
  }

  release(owner: string): void {
    this.used.delete(owner);
  }
}

export class NodeAgent {
  private readonly runners = new Map<string, PodRunner>();
  /** "<namespace>/<name>" → the pod's directory, for its logs. */
  private readonly podDirs = new Map<string, string>();
  private logServer: Server | undefined;
  private readonly finishing = new Set<string>();
  private readonly bound = new Set<string>();
  private readonly addresses: AddressPool;
  private readonly pendingStatus = new Map<
    string,
    { pod: PodObject; status: Record<string, unknown> }
  >();
  private statusTimer: NodeJS.Timeout | undefined;
  private serviceTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private pods: Informer<PodObject> | undefined;
  private services: Informer<ServiceObject> | undefined;
  private slices: Informer<SliceObject> | undefined;
  private stopped = false;

  constructor(private readonly options: AgentOptions) {
    this.addresses = new AddressPool(options.topology.podCidr.split('.').slice(0, 3).join('.'));
  }

  async start(): Promise<void> {
    this.logServer = await startLogServer(
      this.options.topology.hostAddress,
      KUBELET_PORT,
      this.options.stateDir,
      (namespace, pod, container, previous) => {
        const dir = this.podDirs.get(`${namespace}/${pod}`);
        if (dir === undefined) return undefined;
        return join(dir, 'logs', `${container}${previous ? '.previous' : ''}.log`);
      },
    );
    await this.registerNode();
    const { rest, log } = this.options;
    const onError = (error: unknown): void => log('watch failed', { error: String(error) });
    this.services = startInformer<ServiceObject>(
      rest,
      '/api/v1/services',
      () => this.scheduleServiceSync(),
      onError,
    );
    this.slices = startInformer<SliceObject>(
      rest,
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => this.scheduleServiceSync(),
      onError,
    );
    await Promise.all([this.services.synced, this.slices.synced]);
    this.pods = startInformer<PodObject>(
      rest,
      '/api/v1/pods',
      (type, pod) => this.onPod(type, pod),
      onError,
    );
    await this.pods.synced;
    this.heartbeat = setInterval(() => void this.reportNodeStatus().catch(onError), 20_000);
    log('node ready', { node: this.options.nodeName });
  }

  private nodeStatus(): Record<string, unknown> {
    const now = new Date().toISOString();
    const condition = (type: string, status: string, reason: string): Record<string, string> => ({
      type,
      status,
      reason,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    return {
      conditions: [
        condition('Ready', 'True', 'KubeletReady'),
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID'),
      ],
      addresses: [
        { type: 'InternalIP', address: this.options.topology.nodeAddress },
        { type: 'Hostname', address: this.options.nodeName },
        // Where the API server reaches the node's log endpoint: this process runs on the host.
        { type: 'ExternalIP', address: this.options.topology.hostAddress },
      ],
      capacity: { cpu: '2', memory: '24Gi', pods: '110' },
      allocatable: { cpu: '2', memory: '24Gi', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        kubeletVersion: this.options.kubeletVersion,
        kubeProxyVersion: this.options.kubeletVersion,
        containerRuntimeVersion: 'nmk://1',
        kernelVersion: '',
        osImage: 'network namespaces',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
      daemonEndpoints: { kubeletEndpoint: { Port: KUBELET_PORT } },
    };
  }

  private async registerNode(): Promise<void> {
    const { rest, nodeName, topology } = this.options;
    try {
      await rest.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName,
          labels: {
            'kubernetes.io/hostname': nodeName,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
          },
        },
        spec: { podCIDR: topology.podCidr, podCIDRs: [topology.podCidr] },
      });
    } catch (error) {
      if (!(error instanceof KubeRestError && error.status === 409)) throw error;
    }
    await this.reportNodeStatus();
  }

  private async reportNodeStatus(): Promise<void> {
    await this.options.rest.request(
      'PATCH',
      `/api/v1/nodes/${this.options.nodeName}/status`,
      { status: this.nodeStatus() },
      'application/merge-patch+json',
    );
  }

  private podKey(pod: PodObject): string {
    return pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`;
  }

  private onPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: PodObject): void {
    if (this.stopped) return;
    const key = this.podKey(pod);
    if (type === 'DELETED') {
      void this.finishPod(pod, 0, false);
      return;
    }
    const nodeName = pod.spec?.nodeName;
    if (nodeName === undefined || nodeName === '') {
      this.bind(pod);
      return;
    }
    if (nodeName !== this.options.nodeName) return;
    if (pod.metadata.deletionTimestamp !== undefined) {
      void this.finishPod(pod, pod.metadata.deletionGracePeriodSeconds ?? 30, true);
      return;
    }
    const phase = pod.status?.phase;
    if (
      !this.runners.has(key) &&
      !this.finishing.has(key) &&
      phase !== 'Succeeded' &&
      phase !== 'Failed'
    ) {
      this.startPod(pod);
    }
  }

  private bind(pod: PodObject): void {
    const scheduler = pod.spec?.schedulerName ?? 'default-scheduler';
    const key = this.podKey(pod);
    if (scheduler !== 'default-scheduler' || this.bound.has(key)) return;
    this.bound.add(key);
    const { namespace = 'default', name } = pod.metadata;
    this.options.rest
      .request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, uid: pod.metadata.uid },
        target: { apiVersion: 'v1', kind: 'Node', name: this.options.nodeName },
      })
      .catch((error: unknown) => {
        this.bound.delete(key);
        this.options.log('binding failed', { pod: `${namespace}/${name}`, error: String(error) });
      });
  }

  private startPod(pod: PodObject): void {
    const key = this.podKey(pod);
    const podId = (pod.metadata.uid ?? '').replace(/-/g, '').slice(0, 8);
    const podIP = this.addresses.take(key);
    const { topology, network, rest, log } = this.options;
    const podName = `${pod.metadata.namespace}/${pod.metadata.name}`;
    let networkUp = false;
    const runner = new PodRunner(pod, {
      rest,
      netns: topology.podNetns(podId),
      podIP,
      hostIP: topology.nodeAddress,
      podDir: join(this.options.stateDir, 'pods', key),
      images: this.options.images,
      services: (namespace) => this.servicesOf(namespace),
      network: {
        add: async () => {
          await network.addPod(podId, podIP);
          networkUp = true;
        },
        remove: async () => {
          if (!networkUp) return;
          networkUp = false;
          await network.removePod(podId);
        },
      },
      report: (status) => this.queueStatus(pod, status),
      log: (msg, fields) => log(msg, { pod: podName, ...fields }),
    });
    this.runners.set(key, runner);
    this.podDirs.set(podName, join(this.options.stateDir, 'pods', key));
    log('pod started', { pod: podName, ip: podIP });
  }

  private async finishPod(
    pod: PodObject,
    graceSeconds: number,
    deleteObject: boolean,
  ): Promise<void> {
    const key = this.podKey(pod);
    if (this.finishing.has(key)) return;
    const runner = this.runners.get(key);
    this.finishing.add(key);
    try {
      await runner?.stop(graceSeconds);
      this.runners.delete(key);
      this.podDirs.delete(`${pod.metadata.namespace ?? 'default'}/${pod.metadata.name ?? ''}`);
      this.addresses.release(key);
      this.pendingStatus.delete(key);
      if (deleteObject) {
        const { namespace = 'default', name } = pod.metadata;
        await this.options.rest
          .request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            gracePeriodSeconds: 0,
            preconditions: { uid: pod.metadata.uid },
          })
          .catch((error: unknown) => {
            if (!(error instanceof KubeRestError && (error.status === 404 || error.status === 409)))
              throw error;
          });
      }
    } catch (error) {
      this.options.log('pod stop failed', { pod: pod.metadata.name, error: String(error) });
    } finally {
      if (!deleteObject) this.finishing.delete(key);
    }
  }

  /** Status writes are coalesced: the newest status of each pod is sent at most every 50 ms. */
  private queueStatus(pod: PodObject, status: Record<string, unknown>): void {
    this.pendingStatus.set(this.podKey(pod), { pod, status });
    this.statusTimer ??= setTimeout(() => {
      this.statusTimer = undefined;
      const batch = [...this.pendingStatus.values()];
      this.pendingStatus.clear();
      for (const { pod: target, status: body } of batch) {
        const { namespace = 'default', name } = target.metadata;
        this.options.rest
          .request(
            'PATCH',
            `/api/v1/namespaces/${namespace}/pods/${name}/status`,
            { status: body },
            'application/merge-patch+json',
          )
          .catch((error: unknown) => {
            if (!(error instanceof KubeRestError && error.status === 404)) {
              this.options.log('status update failed', { pod: name, error: String(error) });
            }
          });
      }
    }, 50);
  }

  private servicesOf(namespace: string): {
    services: V1Service[];
    kubernetes: V1Service | undefined;
  } {
    const all = [...(this.services?.items.values() ?? [])];
    return {
      services: all.filter((service) => service.metadata.namespace === namespace),
      kubernetes: this.services?.items.get('default/kubernetes'),
    };
  }

  private scheduleServiceSync(): void {
    if (this.serviceTimer !== undefined || this.stopped) return;
    this.serviceTimer = setTimeout(() => {
      this.serviceTimer = undefined;
      this.options.network
        .applyServices(this.serviceRules())
        .catch((error: unknown) =>
          this.options.log('service rules failed', { error: String(error) }),
        );
    }, 50);
  }

  private slicesByService(): Map<string, SliceObject[]> {
    const result = new Map<string, SliceObject[]>();
    for (const slice of this.slices?.items.values() ?? []) {
      const service = slice.metadata.labels?.['kubernetes.io/service-name'];
      if (service === undefined) continue;
      const key = `${slice.metadata.namespace}/${service}`;
      result.set(key, [...(result.get(key) ?? []), slice]);
    }
    return result;
  }

  /** Service ports with the ready endpoints of their EndpointSlices. */
  private serviceRules(): ServiceRule[] {
    const slicesByService = this.slicesByService();
    return [...(this.services?.items.values() ?? [])].flatMap((service) =>
      serviceRulesOf(service, slicesByService.get(keyOf(service)) ?? []),
    );
  }

  /** Stops every pod (bounded by each pod's grace period) and the watches. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.serviceTimer);
    this.pods?.stop();
    this.services?.stop();
    this.slices?.stop();
    await Promise.all([...this.runners.values()].map((runner) => runner.stop(5)));
    clearTimeout(this.statusTimer);
    this.logServer?.close();
  }
}

/** One rule per TCP or UDP port of a Service with a cluster IP. */
function serviceRulesOf(service: ServiceObject, slices: readonly SliceObject[]): ServiceRule[] {
  const clusterIP = service.spec?.clusterIP;
  if (clusterIP === undefined || clusterIP === '' || clusterIP === 'None') return [];
  return (service.spec?.ports ?? []).flatMap((port) => {
    const protocol = port.protocol ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP') return [];
    const portName = port.name ?? '';
    return [
      {
        namespace: service.metadata.namespace ?? 'default',
        name: service.metadata.name,
        portName,
        protocol,
        clusterIP,
        port: port.port,
        endpoints: readyEndpoints(slices, portName),
      },
    ];
  });
}

/** Addresses of the ready endpoints in the slices, with the target port of the named port. */
function readyEndpoints(
  slices: readonly SliceObject[],
  portName: string,
): ServiceRule['endpoints'] {
  return slices.flatMap((slice) => {
    const slicePort = slice.ports?.find((candidate) => (candidate.name ?? '') === portName)?.port;
    if (slicePort === undefined) return [];
    return (slice.endpoints ?? [])
      .filter((endpoint) => endpoint.conditions?.ready !== false)
      .flatMap((endpoint) => endpoint.addresses.map((ip) => ({ ip, port: slicePort })));
  });
}
