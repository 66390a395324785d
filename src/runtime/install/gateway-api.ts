// The Gateway API release deploy installs from, loaded on first use: its CRDs are half a megabyte
// that only deploy and upgrade need (the executable carries them as a bundle of their own).
import type { GatewayApiRelease } from '../../manifests/gateway-api/crds';

export async function loadGatewayApiRelease(): Promise<GatewayApiRelease> {
  const loaded = (await import('../../manifests/gateway-api/crds.generated.json')) as {
    readonly default: GatewayApiRelease;
  };
  return loaded.default;
}
