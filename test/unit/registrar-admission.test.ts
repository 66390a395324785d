// The registrar's cluster-wide `configmaps create` is confined by an admission policy to the
// trust-bundle ConfigMap: the policy and its binding are installed before the right they guard,
// judge only the registrar's own ServiceAccount in the mesh's namespace, and deny.
import { buildInstallPlan, planObjects } from '../../src/manifests/install/plan';
import type { Manifest } from '../../src/manifests/install/objects';
import { buildMeshConfig, defaultDeployInput } from '../../src/manifests/mesh-config';

function objects(namespace: string): readonly Manifest[] {
  const outcome = buildMeshConfig(defaultDeployInput('2.0.0'), { namespace, files: new Map() });
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  return planObjects(
    buildInstallPlan(
      {
        config: outcome.config,
        version: '2.0.0',
        upstreamCa: false,
        secrets: {},
      },
      (text) => Buffer.from(text).toString('base64'),
    ),
  );
}

interface Policy {
  spec: {
    failurePolicy: string;
    matchConstraints: { resourceRules: { resources: string[]; operations: string[] }[] };
    matchConditions: { expression: string }[];
    validations: { expression: string; message: string }[];
  };
}

const named = (all: readonly Manifest[], kind: string): Manifest[] =>
  all.filter((object) => object.kind === kind);

describe("the registrar's ConfigMap writes", () => {
  const all = objects('mesh-x');
  const [policy] = named(all, 'ValidatingAdmissionPolicy') as unknown as Policy[];
  const [binding] = named(all, 'ValidatingAdmissionPolicyBinding');

  it('are judged by a policy bound with Deny, which fails closed', () => {
    expect(policy?.spec.failurePolicy).toBe('Fail');
    expect(binding?.spec).toEqual({
      policyName: 'nginx-mesh-registrar.security.builtin.nsm.nginx',
      validationActions: ['Deny'],
    });
    expect(policy?.spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({ resources: ['configmaps'], operations: ['CREATE', 'UPDATE'] }),
    ]);
  });

  it("judge only the registrar's ServiceAccount of the mesh's namespace", () => {
    expect(policy?.spec.matchConditions.map((condition) => condition.expression)).toEqual([
      "request.userInfo.username == 'system:serviceaccount:mesh-x:nginx-mesh-registrar'",
    ]);
  });

  it("allow only ConfigMap nginx-mesh-bundle holding only bundle.crt, owned by nothing but the registrar's ClusterRole", () => {
    expect(policy?.spec.validations.map((validation) => validation.expression)).toEqual([
      "object.metadata.name == 'nginx-mesh-bundle'",
      "!has(object.binaryData) && (!has(object.data) || object.data.all(key, key == 'bundle.crt'))",
      "!has(object.metadata.ownerReferences) || object.metadata.ownerReferences.all(owner, owner.apiVersion == 'rbac.authorization.k8s.io/v1' && owner.kind == 'ClusterRole' && owner.name == 'nginx-mesh-registrar.security.builtin.nsm.nginx')",
    ]);
  });

  it('are confined before the ClusterRole that grants configmaps create is applied', () => {
    const grants = all.findIndex(
      (object) =>
        object.kind === 'ClusterRole' &&
        (object as unknown as { rules: { resources: string[]; verbs: string[] }[] }).rules.some(
          (rule) => rule.resources.includes('configmaps') && rule.verbs.includes('create'),
        ),
    );
    expect(grants).toBeGreaterThan(-1);
    expect(all.indexOf(policy as unknown as Manifest)).toBeLessThan(grants);
    expect(all.indexOf(binding as Manifest)).toBeLessThan(grants);
  });
});
