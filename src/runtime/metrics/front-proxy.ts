// Who is asking: the API server's aggregator calls with its front-proxy client certificate and
// names the user it authenticated in request headers (X-Remote-User, X-Remote-Group,
// X-Remote-Extra-*), as the ConfigMap kube-system/extension-apiserver-authentication describes.
// Headers are believed only over a connection whose certificate the requestheader CA verified.
import { MeshctlError } from '../../errors';
import {
  EXTENSION_API_AUTH_CONFIG_MAP,
  EXTENSION_API_AUTH_NAMESPACE,
} from '../../manifests/constants';

export interface RequestHeaderConfig {
  /** PEM bundle that verifies the front-proxy's client certificate. */
  readonly clientCaPem: string;
  /** Common names a front-proxy certificate may carry; empty accepts any the CA signed. */
  readonly allowedNames: readonly string[];
  readonly usernameHeaders: readonly string[];
  readonly groupHeaders: readonly string[];
  readonly extraHeaderPrefixes: readonly string[];
}

/** The user the API server authenticated, as a SubjectAccessReview names it. */
export interface RemoteUser {
  readonly user: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** What the TLS layer established about the client. */
export interface ClientCertificate {
  /** The certificate chains to the requestheader CA. */
  readonly verified: boolean;
  readonly commonName: string | undefined;
}

export type Authentication =
  | { readonly kind: 'front-proxy'; readonly remote: RemoteUser | undefined }
  | { readonly kind: 'rejected'; readonly message: string };

function stringList(data: Readonly<Record<string, string>>, key: string): string[] {
  const text = data[key];
  if (text === undefined || text === '') return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? parsed.filter((item) => typeof item === 'string') : [];
  } catch {
    return [];
  }
}

/** Reads the requestheader settings from the ConfigMap's data; throws when there is no CA. */
export function parseRequestHeaderConfig(
  data: Readonly<Record<string, string>>,
): RequestHeaderConfig {
  const clientCaPem = data['requestheader-client-ca-file'] ?? '';
  if (!clientCaPem.includes('BEGIN CERTIFICATE')) {
    throw new MeshctlError(
      `ConfigMap ${EXTENSION_API_AUTH_NAMESPACE}/${EXTENSION_API_AUTH_CONFIG_MAP} has no requestheader-client-ca-file: start the API server with --requestheader-client-ca-file to serve aggregated APIs`,
    );
  }
  return {
    clientCaPem,
    allowedNames: stringList(data, 'requestheader-allowed-names'),
    usernameHeaders: stringList(data, 'requestheader-username-headers'),
    groupHeaders: stringList(data, 'requestheader-group-headers'),
    extraHeaderPrefixes: stringList(data, 'requestheader-extra-headers-prefix'),
  };
}

type Headers = Readonly<Record<string, readonly string[] | undefined>>;

function values(headers: Headers, name: string): string[] {
  return (headers[name.toLowerCase()] ?? []).filter((value) => value !== '');
}

function extrasOf(headers: Headers, prefixes: readonly string[]): Record<string, string[]> {
  const extra: Record<string, string[]> = {};
  for (const prefix of prefixes.map((item) => item.toLowerCase())) {
    for (const [name, list] of Object.entries(headers)) {
      if (!name.startsWith(prefix) || name.length === prefix.length) continue;
      const key = decodeExtraKey(name.slice(prefix.length));
      extra[key] = [...(extra[key] ?? []), ...(list ?? [])];
    }
  }
  return extra;
}

/** Extra keys are percent-encoded in header names (Kubernetes' requestheader convention). */
function decodeExtraKey(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Authenticates a request: the client certificate must be the front-proxy's, then the user comes
 * from the headers (undefined when none is named, as in the aggregator's own discovery calls).
 */
export function authenticateRequest(
  config: RequestHeaderConfig,
  client: ClientCertificate,
  headers: Headers,
): Authentication {
  if (!client.verified) {
    return {
      kind: 'rejected',
      message:
        'Unauthorized: requests must come through the Kubernetes API server (a client certificate signed by its requestheader CA)',
    };
  }
  const name = client.commonName ?? '';
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(name)) {
    return {
      kind: 'rejected',
      message: `Unauthorized: client certificate CN "${name}" is not among requestheader-allowed-names`,
    };
  }
  const user = config.usernameHeaders.flatMap((header) => values(headers, header))[0];
  if (user === undefined) return { kind: 'front-proxy', remote: undefined };
  return {
    kind: 'front-proxy',
    remote: {
      user,
      groups: config.groupHeaders.flatMap((header) => values(headers, header)),
      extra: extrasOf(headers, config.extraHeaderPrefixes),
    },
  };
}
