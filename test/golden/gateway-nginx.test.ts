// An ingress gateway's nginx configuration and members file, byte for byte. Each golden
// configuration also passes the real `nginx -t` (test/integration/gateway-nginx.test.ts).
import { renderGatewayConfig } from '../../src/render/gateway';
import { expectGolden } from '../support/golden';
import { gatewayScenarios } from '../support/gateway-snapshots';

describe.each(gatewayScenarios())('$name', ({ name, snapshot, context, warnings }) => {
  it('renders the golden configuration', () => {
    const rendered = renderGatewayConfig(snapshot, context);
    expectGolden(`gateway-nginx/${name}.conf`, rendered.text);
    expectGolden(`gateway-nginx/${name}.members`, rendered.members);
    expect(rendered.warnings).toEqual(warnings);
  });

  it('renders identical bytes for identical input', () => {
    const again = renderGatewayConfig(structuredClone(snapshot), structuredClone(context));
    const first = renderGatewayConfig(snapshot, context);
    expect(again.text).toBe(first.text);
    expect(again.members).toBe(first.members);
  });
});
