// `run --role registrar`: the mesh's SPIFFE certificate authority. It keeps its CA in a Secret
// shared by every replica, rotates it before expiry, publishes the trust bundle, and issues
// X.509-SVIDs over HTTPS to pods that prove their identity with a projected ServiceAccount
// token. Only the flags live here; the work loads when the role starts.
import {
  DEFAULT_MESH_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  REGISTRAR_API_PORT,
} from '../../manifests/constants';
import { MTLS_CA_KEY_TYPES } from '../../manifests/mesh-config/deploy-flags';
import { clusterRoleFlag } from '../kube/owner';
import type { RoleDefinition } from '../role/role';
import { REGISTRAR_RBAC_NAME } from '../../manifests/install/rbac';

export const registrarRole: RoleDefinition = {
  name: 'registrar',
  description: 'issues and rotates the mesh certificates (SPIFFE X.509-SVIDs)',
  flags: [
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    clusterRoleFlag(REGISTRAR_RBAC_NAME),
    {
      long: 'trust-domain',
      type: 'string',
      usage: 'SPIFFE trust domain of the issued identities',
      defaultValue: DEFAULT_TRUST_DOMAIN,
    },
    {
      long: 'ca-key-type',
      type: 'string',
      usage: 'key type of the CA (takes effect at the next rotation)',
      defaultValue: 'ec-p256',
      choices: MTLS_CA_KEY_TYPES,
    },
    { long: 'ca-ttl', type: 'duration', usage: 'lifetime of a CA', defaultValue: 720 * 3_600_000 },
    {
      long: 'svid-ttl',
      type: 'duration',
      usage: 'lifetime of an issued SVID',
      defaultValue: 3_600_000,
    },
    {
      long: 'upstream-ca-dir',
      type: 'string',
      usage: 'directory with upstreamCA.crt, upstreamCA.key and optionally upstreamBundle.crt',
    },
    {
      long: 'sidecar-image',
      type: 'string',
      usage: 'image of the injected sidecar: only pods that run it get SVIDs (required)',
    },
    {
      long: 'control-plane-image',
      type: 'string',
      usage: 'image of the controller and the cert-reloader, which get SVIDs too (required)',
    },
    {
      long: 'api-bind-address',
      type: 'string',
      usage: 'address of the SVID API (HTTPS)',
      defaultValue: `:${REGISTRAR_API_PORT}`,
    },
  ],
  start: async (context) => (await import('./start-registrar')).startRegistrar(context),
};
