// The Gateway API CRDs deploy installs when a cluster lacks them: the standard channel of the
// release GATEWAY_API_VERSION names, exactly as the release ships them (the file
// scripts/build-gateway-api.sh generates; it never enters the repository), with the part-of
// label that marks them as installed by deploy, so that remove deletes those and only those.
// Pure: the release's contents arrive as a parameter.
import { GATEWAY_API_VERSION, PART_OF_LABEL, PART_OF_VALUE } from '../constants';
import type { Manifest } from '../install/objects';

/** The API group of every Gateway API kind. */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/** The plurals of the kinds installed, in apply order: classes before what refers to them. */
export const GATEWAY_API_PLURALS = [
  'gatewayclasses',
  'gateways',
  'httproutes',
  'grpcroutes',
  'referencegrants',
] as const;

/** The CRD names, in apply order. */
export const GATEWAY_API_CRD_NAMES: readonly string[] = GATEWAY_API_PLURALS.map(
  (plural) => `${plural}.${GATEWAY_API_GROUP}`,
);

/** What scripts/build-gateway-api.sh writes. */
export interface GatewayApiRelease {
  readonly generator: string;
  readonly version: string;
  readonly channel: string;
  readonly crds: readonly Readonly<Record<string, unknown>>[];
}

function nameOf(crd: Readonly<Record<string, unknown>>): string {
  const metadata = crd.metadata as { name?: unknown } | undefined;
  return typeof metadata?.name === 'string' ? metadata.name : '';
}

/**
 * The release's CRDs as deploy applies them, in apply order, each with the part-of label added
 * to its own labels. Throws when the file is not the standard channel of GATEWAY_API_VERSION
 * with exactly the expected CRDs (a stale generated file: run scripts/build-gateway-api.sh).
 */
export function buildGatewayApiCrds(release: GatewayApiRelease): readonly Manifest[] {
  const stale = `run scripts/build-gateway-api.sh to generate the Gateway API ${GATEWAY_API_VERSION} CRDs`;
  if (release.version !== GATEWAY_API_VERSION || release.channel !== 'standard') {
    throw new Error(
      `the Gateway API CRDs are of ${release.version} (${release.channel} channel), expected ${GATEWAY_API_VERSION} (standard): ${stale}`,
    );
  }
  const byName = new Map(release.crds.map((crd) => [nameOf(crd), crd]));
  return GATEWAY_API_CRD_NAMES.map((name) => {
    const crd = byName.get(name);
    if (crd === undefined) throw new Error(`the Gateway API CRD ${name} is missing: ${stale}`);
    const metadata = crd.metadata as { labels?: Record<string, string> };
    return {
      ...crd,
      metadata: { ...metadata, labels: { ...metadata.labels, [PART_OF_LABEL]: PART_OF_VALUE } },
    } as unknown as Manifest;
  });
}
