// What a gateway's agent knows next to the controller's snapshot: its pod (as a sidecar's agent
// does), the Gateway it serves, and which listener certificates it holds. Pure data; the agent
// fills it from its flags and its look at the certificate directory.
import type { SidecarContext } from '../sidecar/context';

/** The second input of renderGatewayConfig. */
export interface GatewayContext extends SidecarContext {
  /** "<namespace>/<name>" of the Gateway served. */
  readonly gateway: string;
  /** Where each HTTPS listener's "<listener>.crt" and "<listener>.key" are. */
  readonly certificateDir: string;
  /**
   * The HTTPS listeners whose certificate and key exist there and are valid; an HTTPS listener
   * not named is left out of the configuration.
   */
  readonly certificates: ReadonlySet<string>;
}
