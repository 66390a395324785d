// `run --role cert-reloader`: keeps a pod's X.509-SVID on disk for a process that cannot fetch it
// itself (nats-server), and has that process reload it when it is renewed. It runs beside the
// process (a native sidecar sharing the pod's process namespace) and is ready once the first SVID
// is written, so the process starts only with its certificate present. Only the flags live here.
import { DEFAULT_MESH_NAMESPACE } from '../../manifests/constants';
import { IDENTITY_FLAGS } from '../svid/identity-flags';
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
    ...IDENTITY_FLAGS,
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
      long: 'nats-config',
      type: 'string',
      usage:
        "where to keep nats.conf, whose users follow the cluster's ServiceAccounts (NATS's pod only)",
    },
  ],
  start: async (context) => (await import('./start-cert-reloader')).startCertReloader(context),
};
