// `run --role controller`: the control plane's controller. It serves the sidecar injection
// webhook (HTTPS, AdmissionReview v1 → JSON Patch from the same function as `inject`) with a
// certificate it manages until the registrar issues one. Only the flags live here; the work
// loads when the role starts.
import {
  CONTROLLER_NAME,
  CONTROLLER_VERSION_PORT,
  DEFAULT_MESH_NAMESPACE,
  WEBHOOK_PORT,
} from '../../manifests/constants';
import { MTLS_MODES } from '../../manifests/mesh-config/deploy-flags';
import type { RoleDefinition } from '../role/role';

export const controllerRole: RoleDefinition = {
  name: 'controller',
  description: 'serves the sidecar injection webhook',
  flags: [
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
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
      long: 'sidecar-layout',
      type: 'string',
      usage: 'auto: native sidecars on Kubernetes 1.29+, else classic',
      defaultValue: 'auto',
      choices: ['auto', 'classic', 'native'],
    },
  ],
  start: async (context) => (await import('./start-controller')).startController(context),
};
