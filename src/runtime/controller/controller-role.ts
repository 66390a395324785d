// `run --role controller`: the control plane's controller. It serves the sidecar injection
// webhook (HTTPS, AdmissionReview v1 → JSON Patch from the same function as `inject`) with a
// certificate it manages until the registrar issues one. Only the flags live here; the work
// loads when the role starts.
import {
  CONTROLLER_NAME,
  CONTROLLER_SVID_DIR,
  CONTROLLER_VERSION_PORT,
  DEFAULT_MESH_NAMESPACE,
  WEBHOOK_PORT,
} from '../../manifests/constants';
import { MTLS_MODES } from '../../manifests/mesh-config/deploy-flags';
import { clusterRoleFlag } from '../kube/owner';
import type { RoleDefinition } from '../role/role';
import { IDENTITY_FLAGS } from '../svid/identity-flags';
import { CONTROLLER_RBAC_NAME } from '../../manifests/install/rbac';

export const controllerRole: RoleDefinition = {
  name: 'controller',
  description: 'publishes the mesh configuration to the sidecars and serves the injection webhook',
  flags: [
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    clusterRoleFlag(CONTROLLER_RBAC_NAME),
    {
      long: 'webhook-bind-address',
      type: 'string',
      usage: 'address of the injection webhook',
      defaultValue: `:${WEBHOOK_PORT}`,
    },
    {
      long: 'version-bind-address',
      type: 'string',
      usage: `address of GET /version (the ${CONTROLLER_NAME} Service's port ${CONTROLLER_VERSION_PORT})`,
      defaultValue: `:${CONTROLLER_VERSION_PORT}`,
    },
    { long: 'sidecar-image', type: 'string', usage: 'image of the injected sidecar' },
    { long: 'init-image', type: 'string', usage: 'image of the injected init container' },
    {
      long: 'image-pull-policy',
      type: 'string',
      usage: 'pull policy of the injected containers',
      defaultValue: 'IfNotPresent',
      choices: ['Always', 'IfNotPresent', 'Never'],
    },
    {
      long: 'mtls-mode',
      type: 'string',
      usage: 'mesh-wide mTLS mode',
      defaultValue: 'permissive',
      choices: MTLS_MODES,
    },
    { long: 'enable-udp', type: 'bool', usage: 'intercept UDP traffic too' },
    { long: 'registry-key-name', type: 'string', usage: 'image pull Secret for injected pods' },
    {
      long: 'nats-url',
      type: 'string',
      usage:
        "NATS's URL (default: its Service's address from the pod's environment, else its DNS name)",
    },
    {
      long: 'svid-dir',
      type: 'string',
      usage: 'where the SVID for NATS is kept',
      defaultValue: CONTROLLER_SVID_DIR,
    },
    ...IDENTITY_FLAGS,
    {
      long: 'pod-name',
      type: 'string',
      usage: 'name of this replica in leader election (default: $MY_POD_NAME, else the host name)',
    },
    {
      long: 'sidecar-layout',
      type: 'string',
      usage: 'auto: native sidecars on Kubernetes 1.29+, else classic',
      defaultValue: 'auto',
      choices: ['auto', 'classic', 'native'],
    },
  ],
  start: async (context) => (await import('./start-controller')).startController(context),
};
