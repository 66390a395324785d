// The projected volume with which a pod proves its identity to the registrar: a ServiceAccount
// token for the registrar's audience, and optionally the trust bundle that verifies the
// registrar, from ConfigMap nginx-mesh-bundle of the pod's own namespace. Pure.
//
// For injected pods the bundle is optional: the registrar publishes the ConfigMap into every
// namespace, but a pod created in a brand-new namespace before that must still start; the
// kubelet fills the file in once the ConfigMap exists, and the SVID client retries until then.
import {
  IDENTITY_TOKEN_AUDIENCE,
  IDENTITY_TOKEN_EXPIRATION_SECONDS,
  IDENTITY_TOKEN_PATH,
  IDENTITY_VOLUME_NAME,
  TRUST_BUNDLE_CONFIG_MAP_NAME,
  TRUST_BUNDLE_KEY,
} from './constants';
import type { JsonObject } from './inject/json';

export function buildIdentityVolume(options: {
  readonly withBundle: boolean;
  readonly bundleOptional?: boolean;
}): JsonObject {
  const token = {
    serviceAccountToken: {
      audience: IDENTITY_TOKEN_AUDIENCE,
      expirationSeconds: IDENTITY_TOKEN_EXPIRATION_SECONDS,
      path: IDENTITY_TOKEN_PATH,
    },
  };
  const bundle = {
    configMap: {
      name: TRUST_BUNDLE_CONFIG_MAP_NAME,
      items: [{ key: TRUST_BUNDLE_KEY, path: TRUST_BUNDLE_KEY }],
      ...(options.bundleOptional === true ? { optional: true } : {}),
    },
  };
  return {
    name: IDENTITY_VOLUME_NAME,
    projected: { sources: options.withBundle ? [token, bundle] : [token] },
  };
}
