// `run --role agent`: the sidecar's agent. It renders the proxy's nginx configuration, checks it
// with `nginx -t`, runs and supervises nginx, and answers on the metrics port /readyz/proxy once
// the proxy accepts connections and /readyz once it also runs the controller's configuration.
// Until that configuration reaches it, the proxy is transparent: every connection goes on to its
// original destination. Only the flags live here.
import {
  DEFAULT_MESH_NAMESPACE,
  DEFAULT_SIDECAR_DRAIN_MS,
  SIDECAR_METRICS_PORT,
} from '../../manifests/constants';
import { MTLS_MODES } from '../../manifests/mesh-config/deploy-flags';
import type { RoleDefinition } from '../role/role';
import { IDENTITY_FLAGS } from '../svid/identity-flags';

export const agentRole: RoleDefinition = {
  name: 'agent',
  description: 'runs and supervises the sidecar proxy',
  // The pod's app may use the frame's probe port; the agent answers on the metrics port instead.
  probes: false,
  flags: [
    { long: 'container-port', type: 'ints', usage: 'ports the app serves on', defaultValue: [] },
    { long: 'owner', type: 'string', usage: 'kind/name of the workload the pod belongs to' },
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    {
      long: 'nats-url',
      type: 'string',
      usage: "NATS's URL (default: its DNS name in the mesh namespace)",
    },
    ...IDENTITY_FLAGS,
    {
      long: 'health-redirects',
      type: 'string',
      usage: 'rewritten probe paths and their original probes (JSON)',
    },
    {
      long: 'mtls-mode',
      type: 'string',
      usage: 'mesh-wide mTLS mode (for the agent: the pod annotation overriding it)',
      defaultValue: 'permissive',
      choices: MTLS_MODES,
    },
    {
      long: 'client-max-body-size',
      type: 'string',
      usage: 'the pod annotation overriding the mesh-wide limit',
    },
    {
      long: 'default-egress-allowed',
      type: 'bool',
      usage:
        'the pod annotation: under strict mTLS, let traffic to destinations outside the mesh leave the pod directly (refused otherwise)',
    },
    {
      long: 'nginx',
      type: 'string',
      usage: 'the nginx executable',
      defaultValue: '/usr/sbin/nginx',
    },
    {
      long: 'nginx-modules',
      type: 'string',
      usage:
        "comma-separated modules to load, the stream module first (default: $NGINX_MESH_MODULES, else Debian's paths)",
    },
    {
      long: 'run-dir',
      type: 'string',
      usage: 'writable directory for the configuration, pid and temporary files',
      defaultValue: '/etc/nginx-mesh',
    },
    {
      long: 'drain-duration',
      type: 'duration',
      usage:
        'after SIGTERM, how long the proxy keeps serving (not ready) while peers learn the pod is going',
      defaultValue: DEFAULT_SIDECAR_DRAIN_MS,
    },
    {
      long: 'config-wait',
      type: 'duration',
      usage:
        'how long /readyz waits for the mesh configuration before it reports a transparent proxy ready',
      defaultValue: 30_000,
    },
    {
      long: 'status-bind-address',
      type: 'string',
      usage: 'address of /readyz and /healthz',
      defaultValue: `:${SIDECAR_METRICS_PORT}`,
    },
  ],
  loadFrame: async () => (await import('../role/agent-frame')).runRole,
  start: async (context) => (await import('./start-agent')).startAgent(context),
};
