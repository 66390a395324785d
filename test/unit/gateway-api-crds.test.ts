// The Gateway API CRDs deploy installs: the release's own objects, marked as deploy's, in a step
// that leaves CRDs someone else installed alone.
import { GATEWAY_API_VERSION, PART_OF_LABEL, PART_OF_VALUE } from '../../src/manifests/constants';
import type { GatewayApiRelease } from '../../src/manifests/gateway-api/crds';
import { buildGatewayApiCrds, GATEWAY_API_CRD_NAMES } from '../../src/manifests/gateway-api/crds';
import { buildInstallPlan } from '../../src/manifests/install/plan';
import { defaultDeployInput } from '../../src/manifests/mesh-config/deploy-input';
import { fullConfig } from '../../src/manifests/mesh-config/model';
import { loadGatewayApiRelease } from '../../src/runtime/install/gateway-api';

const crd = (name: string): Record<string, unknown> => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name, labels: { 'gateway.networking.k8s.io/policy': 'none' } },
  spec: { group: 'gateway.networking.k8s.io' },
});

const release = (overrides: Partial<GatewayApiRelease> = {}): GatewayApiRelease => ({
  generator: 'test',
  version: GATEWAY_API_VERSION,
  channel: 'standard',
  // Out of order on purpose: deploy applies them in its own order.
  crds: [...GATEWAY_API_CRD_NAMES].reverse().map(crd),
  ...overrides,
});

describe('buildGatewayApiCrds', () => {
  it('gives the five CRDs in apply order, classes before what names them', () => {
    expect(buildGatewayApiCrds(release()).map((each) => each.metadata.name)).toEqual([
      'gatewayclasses.gateway.networking.k8s.io',
      'gateways.gateway.networking.k8s.io',
      'httproutes.gateway.networking.k8s.io',
      'grpcroutes.gateway.networking.k8s.io',
      'referencegrants.gateway.networking.k8s.io',
    ]);
  });

  it("adds the part-of label that marks them as deploy's, keeping the release's labels", () => {
    for (const each of buildGatewayApiCrds(release())) {
      expect(each.metadata.labels).toEqual({
        'gateway.networking.k8s.io/policy': 'none',
        [PART_OF_LABEL]: PART_OF_VALUE,
      });
      expect(each.spec).toEqual({ group: 'gateway.networking.k8s.io' });
    }
  });

  it('refuses a file of another version or channel, or one that lacks a CRD', () => {
    expect(() => buildGatewayApiCrds(release({ version: 'v1.0.0' }))).toThrow(
      /v1\.0\.0.*run scripts\/build-gateway-api\.sh/,
    );
    expect(() => buildGatewayApiCrds(release({ channel: 'experimental' }))).toThrow(/experimental/);
    expect(() =>
      buildGatewayApiCrds(release({ crds: [crd(GATEWAY_API_CRD_NAMES[0] ?? '')] })),
    ).toThrow(/gateways\.gateway\.networking\.k8s\.io is missing/);
  });

  it('reads the generated file: the standard channel of GATEWAY_API_VERSION, from the release', async () => {
    const generated = await loadGatewayApiRelease();
    expect(generated.version).toBe(GATEWAY_API_VERSION);
    expect(generated.channel).toBe('standard');
    const crds = buildGatewayApiCrds(generated);
    for (const each of crds) {
      const annotations = each.metadata.annotations ?? {};
      expect(annotations['gateway.networking.k8s.io/bundle-version']).toBe(GATEWAY_API_VERSION);
      expect(annotations['gateway.networking.k8s.io/channel']).toBe('standard');
    }
    const served = (name: string): string[] =>
      (
        crds.find((each) => each.metadata.name === name)?.spec as {
          versions: { name: string; served: boolean }[];
        }
      ).versions
        .filter((version) => version.served)
        .map((version) => version.name);
    // The versions the controller watches.
    expect(served('httproutes.gateway.networking.k8s.io')).toContain('v1');
    expect(served('referencegrants.gateway.networking.k8s.io')).toContain('v1beta1');
  });
});

describe('the install plan', () => {
  const config = fullConfig(defaultDeployInput('1.0.0'), 'nginx-mesh', false);
  const plan = (gatewayApiCrds?: ReturnType<typeof buildGatewayApiCrds>) =>
    buildInstallPlan(
      {
        config,
        version: '1.0.0',
        upstreamCa: false,
        ...(gatewayApiCrds ? { gatewayApiCrds } : {}),
      },
      (text) => text,
    );

  it('installs the Gateway API CRDs right after the mesh CRDs, leaving foreign ones alone, waiting until Established', () => {
    const crds = buildGatewayApiCrds(release());
    const steps = plan(crds);
    const index = steps.findIndex((step) => step.id === 'gateway-api');
    expect(steps[index - 1]?.id).toBe('crds');
    expect(steps[index + 1]?.id).toBe('gateway-class');
    expect(steps[index + 2]?.id).toBe('rbac');
    const step = steps[index];
    expect(step?.objects).toEqual(crds);
    expect(step?.keepForeign).toBe(true);
    expect(step?.note).toContain('only when the cluster lacks it');
    expect(step?.waits).toEqual(
      GATEWAY_API_CRD_NAMES.map((name) => ({ kind: 'crd-established', name })),
    );
  });

  it("then creates the mesh's GatewayClass, leaving a foreign one of that name alone", () => {
    const step = plan(buildGatewayApiCrds(release())).find((each) => each.id === 'gateway-class');
    expect(step?.keepForeign).toBe(true);
    const [gatewayClass, ...others] = step?.objects ?? [];
    expect(others).toEqual([]);
    expect(gatewayClass?.kind).toBe('GatewayClass');
    expect(gatewayClass?.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(gatewayClass?.metadata.name).toBe('nginx-mesh');
    expect((gatewayClass?.spec as { controllerName?: string }).controllerName).toBe(
      'nsm.nginx.com/nginx-mesh',
    );
  });

  it('has no such step when it is given none (the Helm chart)', () => {
    expect(plan().map((step) => step.id)).not.toContain('gateway-api');
  });
});
