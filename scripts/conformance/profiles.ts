// The Gateway API conformance profiles `npm run conformance` can run, and the features the mesh
// claims in each. A claim is a promise the suite then tests, so an extended feature is claimed
// only where docs/gateway-api.md says the mesh supports it; the rest stay unclaimed, with the
// reason, and the suite reports them as unsupported. Pure data.

/** A profile's name as the suite's --conformance-profiles takes it. */
export type ProfileName = 'GATEWAY-HTTP' | 'MESH-HTTP' | 'MESH-GRPC';

export interface Profile {
  readonly name: ProfileName;
  /**
   * What has to run for the profile's tests: 'mesh' is the mesh deployed with automatic
   * injection of the suite's namespaces.
   */
  readonly needs: 'mesh';
  /**
   * Whether the suite's namespaces are labelled for sidecar injection. The mesh profiles test
   * meshed pods; the gateway profile tests the gateway, whose backends need no sidecar (and a
   * sidecar in each of its many backend pods would only slow the run).
   */
  readonly injected: boolean;
  /**
   * The features claimed: the profile's core features, its extended features the mesh supports,
   * and the other features its tests require that the mesh supports.
   */
  readonly claimed: readonly string[];
  /** Extended features of the profile left unclaimed, each with why. */
  readonly unclaimed: Readonly<Record<string, string>>;
}

const MESH_HTTP: Profile = {
  name: 'MESH-HTTP',
  needs: 'mesh',
  injected: true,
  claimed: [
    // Core.
    'Mesh',
    'HTTPRoute',
    // Extended (MeshExtendedFeatures).
    'MeshConsumerRoute',
    'MeshHTTPRouteQueryParamMatching',
    'MeshHTTPRouteRewritePath',
    'MeshHTTPRouteRedirectPath',
    'MeshHTTPRouteRedirectPort',
    'MeshHTTPRouteSchemeRedirect',
    // HTTPRoute features that tests of the profile require: the ResponseHeaderModifier filter
    // (MeshFrontend, MeshConsumerRoute, MeshPorts), parentRefs[].port (MeshPorts) and the
    // redirect status codes beyond 301 and 302 (MeshHTTPRoute303Redirect, …307…, …308…).
    'HTTPRouteResponseHeaderModification',
    'HTTPRouteParentRefPort',
    'HTTPRoute303RedirectStatusCode',
    'HTTPRoute307RedirectStatusCode',
    'HTTPRoute308RedirectStatusCode',
  ],
  unclaimed: {
    MeshClusterIPMatching: 'docs/gateway-api.md does not promise routing by the cluster IP alone',
    MeshHTTPRouteBackendRequestHeaderModification:
      'backendRefs[].filters are refused (docs/gateway-api.md)',
    MeshHTTPRouteNamedRouteRule: 'docs/gateway-api.md does not cover rules[].name',
  },
};

const MESH_GRPC: Profile = {
  name: 'MESH-GRPC',
  needs: 'mesh',
  injected: true,
  claimed: [
    // Core.
    'Mesh',
    'GRPCRoute',
    // Extended: the mesh's own, as MESH-HTTP claims them.
    'MeshConsumerRoute',
    'MeshHTTPRouteQueryParamMatching',
    'MeshHTTPRouteRewritePath',
    'MeshHTTPRouteRedirectPath',
    'MeshHTTPRouteRedirectPort',
    'MeshHTTPRouteSchemeRedirect',
  ],
  unclaimed: MESH_HTTP.unclaimed,
};

const GATEWAY_HTTP: Profile = {
  name: 'GATEWAY-HTTP',
  needs: 'mesh',
  injected: false,
  claimed: [
    // Core.
    'Gateway',
    'HTTPRoute',
    'ReferenceGrant',
    // Extended: what the gateway's routes do as the sidecars' do (docs/gateway-api.md).
    'GatewayPort8080',
    'HTTPRouteQueryParamMatching',
    'HTTPRouteMethodMatching',
    'HTTPRouteResponseHeaderModification',
    'HTTPRoutePathRewrite',
    'HTTPRouteHostRewrite',
    'HTTPRoutePathRedirect',
    'HTTPRoutePortRedirect',
    'HTTPRouteSchemeRedirect',
    'HTTPRoute303RedirectStatusCode',
    'HTTPRoute307RedirectStatusCode',
    'HTTPRoute308RedirectStatusCode',
    'HTTPRouteParentRefPort',
    'HTTPRouteRequestMirror',
    'HTTPRouteRequestMultipleMirrors',
    'HTTPRouteRequestPercentageMirror',
    'HTTPRouteRequestTimeout',
    'HTTPRouteBackendTimeout',
  ],
  unclaimed: {
    HTTPRouteBackendRequestHeaderModification:
      'backendRefs[].filters are refused (docs/gateway-api.md)',
    HTTPRouteCORS: 'the CORS filter is refused (docs/gateway-api.md)',
    HTTPRouteBackendProtocolH2C:
      "a gateway answers 500 for an HTTPRoute's share to an HTTP/2 port (docs/gateway-api.md)",
    HTTPRouteNamedRouteRule: 'docs/gateway-api.md does not cover rules[].name',
  },
};

/** Every profile, by name. */
export const PROFILES: Readonly<Record<ProfileName, Profile>> = {
  'GATEWAY-HTTP': GATEWAY_HTTP,
  'MESH-HTTP': MESH_HTTP,
  'MESH-GRPC': MESH_GRPC,
};

/**
 * The profile names a run takes when none is asked for, and whose report the repository keeps.
 * MESH-GRPC runs when asked for (--profile MESH-GRPC).
 */
export const DEFAULT_PROFILES: readonly ProfileName[] = ['GATEWAY-HTTP', 'MESH-HTTP'];

/** The profile of a name, or an error naming the known ones. */
export function parseProfileName(name: string): ProfileName {
  if (Object.hasOwn(PROFILES, name)) return name as ProfileName;
  throw new Error(
    `unknown conformance profile "${name}": expected one of ${Object.keys(PROFILES).join(', ')}`,
  );
}

/**
 * The suite runs a set of profiles needs: one per injection setting, gateway profiles first,
 * each profile in the order given.
 */
export function suiteRuns(profiles: readonly ProfileName[]): ProfileName[][] {
  return [false, true]
    .map((injected) => profiles.filter((name) => PROFILES[name].injected === injected))
    .filter((group) => group.length > 0);
}
