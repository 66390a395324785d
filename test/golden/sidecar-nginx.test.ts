// The sidecar's nginx configuration and members file for every policy and mode, byte for byte.
// Each golden configuration also passes the real `nginx -t` (test/integration/sidecar-nginx.test.ts).
import { renderSidecarConfig } from '../../src/render/sidecar';
import { expectGolden } from '../support/golden';
import { sidecarScenarios } from '../support/sidecar-snapshots';

describe.each(sidecarScenarios())('$name', ({ name, snapshot, context, warnings }) => {
  it('renders the golden configuration', () => {
    const rendered = renderSidecarConfig(snapshot, context);
    expectGolden(`sidecar-nginx/${name}.conf`, rendered.text);
    expectGolden(`sidecar-nginx/${name}.members`, rendered.members);
    expect(rendered.warnings).toEqual(warnings);
  });

  it('renders identical bytes for identical input', () => {
    const again = renderSidecarConfig(structuredClone(snapshot), structuredClone(context));
    const first = renderSidecarConfig(snapshot, context);
    expect(again.text).toBe(first.text);
    expect(again.members).toBe(first.members);
  });
});
