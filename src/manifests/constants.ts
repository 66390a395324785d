// Every NGINX Service Mesh literal the product mirrors is defined here, once.

/** Name of the executable, as users type it. */
export const CLI_NAME = 'nginx-meshctl';

/** Namespace the control plane is deployed into unless -n/--namespace says otherwise. */
export const DEFAULT_MESH_NAMESPACE = 'nginx-mesh';

/** Default -t/--timeout for talking to the mesh (NSM: 5s). */
export const DEFAULT_MESH_TIMEOUT_MS = 5_000;

/** The controller's Deployment and Service name. */
export const CONTROLLER_NAME = 'nginx-mesh-controller';

/** Port on the controller Service that answers GET /version with component versions. */
export const CONTROLLER_VERSION_PORT = 8082;

/** Environment variable naming the kubeconfig file, as kubectl reads it. */
export const KUBECONFIG_ENV = 'KUBECONFIG';

/** Default bind address of a role's /healthz and /readyz server (controller-runtime's port). */
export const DEFAULT_HEALTH_PROBE_BIND_ADDRESS = ':8081';

/** How long a role may take to stop after SIGTERM before it is abandoned. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
