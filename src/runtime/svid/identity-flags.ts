// The flags every role with an SVID takes (cert-reloader, controller, agent): where the
// registrar, the projected token and the trust bundle are. Declarations only: the role
// definitions load at every start of the executable, the SVID client only when a role runs.
import {
  IDENTITY_MOUNT_PATH,
  IDENTITY_TOKEN_PATH,
  TRUST_BUNDLE_KEY,
} from '../../manifests/constants';
import type { FlagSpec } from '../../manifests/flag-spec';
import { MTLS_CA_KEY_TYPES } from '../../manifests/mesh-config/deploy-flags';

export const IDENTITY_FLAGS: readonly FlagSpec[] = [
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
    long: 'key-type',
    type: 'string',
    usage: 'key type of the SVID',
    defaultValue: 'ec-p256',
    choices: MTLS_CA_KEY_TYPES,
  },
];
