// The contract of sidecar injection: what it needs to know about the mesh, what it is given,
// and what it answers. One function (injectPodTemplate) serves `inject`, the webhook and tests.
import { MeshctlError } from '../../errors';

export type MtlsMode = 'off' | 'permissive' | 'strict';
export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** Mesh-wide settings the injected containers depend on. */
export interface InjectionSettings {
  /** Namespace of the control plane (passed to the sidecar). */
  readonly meshNamespace: string;
  readonly sidecarImage: string;
  readonly initImage: string;
  readonly imagePullPolicy: ImagePullPolicy;
  /** Global mTLS mode; a pod annotation may differ unless this is strict. */
  readonly mtlsMode: MtlsMode;
  readonly enableUdp: boolean;
  /** Name of the registry credentials Secret to reference, when the mesh was deployed with one. */
  readonly registryKeyName?: string | undefined;
  /**
   * Where the sidecar finds NATS and the registrar, when the injector knows their Services'
   * addresses (the webhook does); otherwise the agent uses their DNS names.
   */
  readonly natsUrl?: string | undefined;
  readonly registrarUrl?: string | undefined;
  /**
   * Inject the sidecar as a native sidecar (an init container with restartPolicy Always,
   * Kubernetes 1.29+) rather than as a regular container.
   */
  readonly nativeSidecar: boolean;
  /** Ports from `inject --ignore-incoming-ports`/`--ignore-outgoing-ports`, when given. */
  readonly ignoreIncomingPorts?: readonly number[] | undefined;
  readonly ignoreOutgoingPorts?: readonly number[] | undefined;
}

/** A pod template as it appears in a workload (or a Pod's own metadata and spec), as JSON. */
export interface PodTemplate {
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
  readonly spec?: Readonly<Record<string, unknown>> | undefined;
}

/** The workload the pod belongs to: kind lower-cased as NSM labels it (deployment, job, pod …). */
export interface PodOwner {
  readonly kind: string;
  readonly name: string;
}

export type InjectionOutcome =
  | {
      readonly status: 'injected';
      readonly template: PodTemplate;
      readonly warnings: readonly string[];
    }
  | { readonly status: 'unchanged'; readonly reason: string }
  | { readonly status: 'skipped'; readonly reason: string };

/** The pod cannot be injected as written; the message names the object and the problem. */
export class InjectionError extends MeshctlError {}
