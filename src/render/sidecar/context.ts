// What the agent knows about its own pod, next to the controller's snapshot, when it renders the
// sidecar's nginx configuration: identity, addresses, ports, pod annotations and file paths.
// Pure data; the agent fills it from its flags and the SVID client.
import type { MeshMtlsMode } from '../../manifests/mesh-config/deploy-flags';
import type { HealthRedirect } from '../agent-nginx';

/** This sidecar's pod and files, the second input of renderSidecarConfig. */
export interface SidecarContext {
  /** "<namespace>/<pod name>" of this sidecar's pod. */
  readonly pod: string;
  /** This pod's service account. */
  readonly serviceAccount: string;
  readonly podIPs: readonly string[];
  /** Ports the app serves on. */
  readonly containerPorts: readonly number[];
  /** The pod's annotation overriding the mesh-wide mode (it cannot weaken strict). */
  readonly mtlsMode?: MeshMtlsMode;
  /** The pod's annotation overriding the mesh-wide limit. */
  readonly clientMaxBodySize?: string;
  /**
   * The pod's annotation config.nsm.nginx.com/default-egress-allowed: under strict mTLS, traffic
   * to a destination outside the mesh leaves directly instead of being refused.
   */
  readonly defaultEgressAllowed?: boolean;
  readonly healthRedirects: Readonly<Record<string, HealthRedirect>>;
  readonly ipv6: boolean;
  /** Absolute .so paths, the stream module first, then ngx_mesh. */
  readonly modules: readonly string[];
  /** Directory for the pid file and nginx's temporary files. */
  readonly runDir: string;
  /** One PEM: certificate chain + key (rotated by atomic rename). */
  readonly svidFile: string;
  /** Trust bundle PEM. */
  readonly bundleFile: string;
  /**
   * Where nginx writes its access log, in the mesh configuration's format: the FIFO the agent
   * copies to its stdout. Absent: no access log.
   */
  readonly accessLog?: string;
  /**
   * The slots each upstream had in the configuration in force (by upstream name): kept while the
   * members still fit, so that endpoints coming and going change only the members file.
   */
  readonly upstreamSlots?: ReadonlyMap<string, UpstreamSlots>;
}

/** How many members an upstream's configuration has room for (upstream-slots.ts). */
export interface UpstreamSlots {
  readonly primary: number;
  readonly backup: number;
}
