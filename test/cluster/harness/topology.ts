// Names and addresses of one test cluster, derived from its instance number so that two
// clusters (a developer's `npm run cluster:up` and a test run) never share a namespace, a link
// or an address. Everything lives in 198.18.0.0/15, the benchmarking range, sealed inside the
// node's network namespace. Pure.

/** Instances 0 (cluster:up) to 7 (test runs). */
export const MAX_INSTANCE = 7;

export interface Topology {
  readonly instance: number;
  /** Prefix of every network namespace and host link of this cluster. */
  readonly prefix: string;
  /** The node's network namespace: it holds the pods' links, routes and the service NAT rules. */
  readonly nodeNetns: string;
  /** Host end of the host↔node veth pair; the API server listens on hostAddress. */
  readonly hostLink: string;
  /** Node end of the pair, inside nodeNetns. */
  readonly nodeLink: string;
  readonly hostAddress: string;
  readonly nodeAddress: string;
  /** The /30 of the host↔node link. */
  readonly linkCidr: string;
  /** Pod addresses, on the node's CNI bridge (its gateway is the first address). */
  readonly podCidr: string;
  readonly serviceCidr: string;
  /** ClusterIP of default/kubernetes: the first address of serviceCidr. */
  readonly kubernetesServiceIP: string;
  /** ClusterIP of kube-system/kube-dns (CoreDNS), the kubelet's clusterDNS. */
  readonly dnsServiceIP: string;
  /** The kubelet's cgroupRoot, in every cgroup v1 hierarchy: all pods live below it. */
  readonly cgroupRoot: string;
  /**
   * host:port of an image registry on the host end of the link, which the node may pull from
   * over plain HTTP (a test starts one there when it needs it).
   */
  readonly registryHost: string;
}

export function buildTopology(instance: number): Topology {
  if (!Number.isInteger(instance) || instance < 0 || instance > MAX_INSTANCE) {
    throw new Error(`cluster instance ${instance} is out of range 0-${MAX_INSTANCE}`);
  }
  const prefix = `nmk${instance}`;
  return {
    instance,
    prefix,
    nodeNetns: `${prefix}-node`,
    hostLink: `${prefix}h`,
    nodeLink: `${prefix}n`,
    hostAddress: `198.18.${instance}.1`,
    nodeAddress: `198.18.${instance}.2`,
    linkCidr: `198.18.${instance}.0/30`,
    podCidr: `198.18.${100 + instance}.0/24`,
    serviceCidr: `198.19.${instance * 16}.0/20`,
    kubernetesServiceIP: `198.19.${instance * 16}.1`,
    dnsServiceIP: `198.19.${instance * 16}.10`,
    cgroupRoot: `/${prefix}`,
    registryHost: `198.18.${instance}.1:5000`,
  };
}
