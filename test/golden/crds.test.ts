import { stringify } from 'yaml';
import { buildMeshCrds } from '../../src/manifests/crds';
import { expectGolden } from '../support/golden';

describe('mesh CRDs', () => {
  it('render as their golden manifest', () => {
    const text = buildMeshCrds()
      .map((crd) => `---\n${stringify(crd, { lineWidth: 0 })}`)
      .join('');
    expectGolden('crds/crds.yaml', text);
  });

  it('are the NSM set minus SPIRE, each labelled as part of the mesh', () => {
    const crds = buildMeshCrds() as { metadata: { name: string; labels: Record<string, string> } }[];
    expect(crds.map((crd) => crd.metadata.name)).toEqual([
      'trafficsplits.split.smi-spec.io',
      'traffictargets.access.smi-spec.io',
      'httproutegroups.specs.smi-spec.io',
      'tcproutes.specs.smi-spec.io',
      'ratelimits.specs.smi.nginx.com',
      'circuitbreakers.specs.smi.nginx.com',
      'meshconfigclasses.nsm.nginx.com',
      'meshconfigs.nsm.nginx.com',
    ]);
    for (const crd of crds) expect(crd.metadata.labels['app.kubernetes.io/part-of']).toBe('nginx-service-mesh');
  });
});
