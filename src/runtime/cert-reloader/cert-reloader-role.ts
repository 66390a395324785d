// `run --role cert-reloader`: keeps a pod's X.509-SVID on disk for a process that cannot fetch it
// itself (nats-server), and has that process reload it when it is renewed. It runs beside the
// process (a native sidecar sharing the pod's process namespace) and is ready once the first SVID
// is written, so the process starts only with its certificate present. Only the flags live here.
import {
  DEFAULT_MESH_NAMESPACE,
  IDENTITY_MOUNT_PATH,
  IDENTITY_TOKEN_PATH,
  TRUST_BUNDLE_KEY,
} from '../../manifests/constants';
import { MTLS_CA_KEY_TYPES } from '../../manifests/mesh-config/deploy-flags';
import type { RoleDefinition } from '../role/role';

export const certReloaderRole: RoleDefinition = {
  name: 'cert-reloader',
  description: "obtains the pod's SVID and has a process reload it on renewal",
  flags: [
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane (where the registrar runs)',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    {
      long: 'registrar-url',
      type: 'string',
      usage:
        "the registrar's base URL (default: its Service's address from the pod's environment, else its DNS name)",
    },
    {
      long: 'token-path',
      type: 'string',
      usage: 'the projected ServiceAccount token for the registrar',
      defaultValue: `${IDENTITY_MOUNT_PATH}/${IDENTITY_TOKEN_PATH}`,
    },
    {
      long: 'bundle-path',
      type: 'string',
      usage: "the mounted trust bundle that verifies the registrar's certificate",
      defaultValue: `${IDENTITY_MOUNT_PATH}/${TRUST_BUNDLE_KEY}`,
    },
    {
      long: 'output-dir',
      type: 'string',
      usage: 'directory where svid.pem (chain and key) and bundle.crt are written',
    },
    {
      long: 'pid-file',
      type: 'string',
      usage: 'pid file of the process sent SIGHUP when the SVID is renewed',
    },
    {
      long: 'key-type',
      type: 'string',
      usage: 'key type of the SVID',
      defaultValue: 'ec-p256',
      choices: MTLS_CA_KEY_TYPES,
    },
  ],
  start: async (context) => (await import('./start-cert-reloader')).startCertReloader(context),
};
