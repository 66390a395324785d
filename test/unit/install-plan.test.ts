// The install plan's promises: order (CRDs before custom resources, backends before the doors
// that point at them), least privilege, hardened pods, and an upgrade that keeps what was set.
import { buildInstallPlan, planObjects } from '../../src/manifests/install/plan';
import type { Manifest } from '../../src/manifests/install/objects';
import { collectionPath, objectPath, resourceType } from '../../src/manifests/install/resources';
import { buildMeshConfig, defaultDeployInput } from '../../src/manifests/mesh-config';
import type { DeployInput } from '../../src/manifests/mesh-config';
import type { MeshSecrets } from '../../src/manifests/mesh-config/types';
import { compareVersions, upgradeInput } from '../../src/manifests/mesh-config/stored';
import { renderMeshConfigJson } from '../../src/manifests/mesh-config/render';
import { existingMeshProblem } from '../../src/commands/deploy/run-deploy';

const encode = (text: string): string => Buffer.from(text).toString('base64');

function configFor(input: Partial<DeployInput> = {}, namespace = 'nginx-mesh') {
  const outcome = buildMeshConfig(
    { ...defaultDeployInput('2.0.0'), ...input },
    {
      namespace,
      files: new Map(),
    },
  );
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  return outcome.config;
}

function plan(
  input: Partial<DeployInput> = {},
  secrets: { secrets?: MeshSecrets } = { secrets: {} },
) {
  return buildInstallPlan(
    { config: configFor(input), version: '2.0.0', upstreamCa: false, ...secrets },
    encode,
  );
}

const byKind = (objects: readonly Manifest[], kind: string): Manifest[] =>
  objects.filter((object) => object.kind === kind);

describe('install plan order', () => {
  const steps = plan();
  const ids = steps.map((step) => step.id);

  it('creates the namespace first and registers the webhook and APIService last', () => {
    expect(ids).toEqual([
      'namespace',
      'crds',
      'rbac',
      'config',
      'registrar',
      'nats',
      'controller',
      'metrics',
      'registration',
    ]);
  });

  it('waits for every CRD to be Established before any custom resource is applied', () => {
    const crds = steps.find((step) => step.id === 'crds');
    expect(crds?.waits).toHaveLength(8);
    expect(crds?.waits.every((wait) => wait.kind === 'crd-established')).toBe(true);
    const firstCustom = steps.findIndex((step) =>
      step.objects.some((object) => object.apiVersion.startsWith('nsm.nginx.com/')),
    );
    expect(firstCustom).toBeGreaterThan(ids.indexOf('crds'));
  });

  it('waits for each backend before the webhook and the APIService point at it', () => {
    for (const id of ['nats', 'registrar', 'controller', 'metrics'] as const) {
      const step = steps.find((each) => each.id === id);
      expect(step?.waits.map((wait) => wait.kind)).toEqual(['deployment-ready']);
    }
    const registration = steps.at(-1);
    expect(registration?.objects.map((object) => object.kind)).toEqual([
      'MutatingWebhookConfiguration',
      'APIService',
    ]);
    expect(registration?.caBundles.map((source) => source.secret)).toEqual([
      'nginx-mesh-webhook-tls',
      'nginx-mesh-metrics-tls',
    ]);
  });

  it('labels every object as part of the mesh', () => {
    for (const object of planObjects(steps)) {
      expect(object.metadata.labels?.['app.kubernetes.io/part-of']).toBe('nginx-service-mesh');
    }
  });
});

describe('least privilege', () => {
  const objects = planObjects(plan());
  const rules = [...byKind(objects, 'ClusterRole'), ...byKind(objects, 'Role')].flatMap(
    (role) =>
      role.rules as {
        apiGroups: string[];
        resources: string[];
        verbs: string[];
        resourceNames?: string[];
      }[],
  );

  it('grants no wildcard and no cluster-admin', () => {
    expect(rules.length).toBeGreaterThan(10);
    for (const rule of rules) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      expect(rule.apiGroups).not.toContain('*');
    }
    const refs = [...byKind(objects, 'ClusterRoleBinding'), ...byKind(objects, 'RoleBinding')].map(
      (binding) => (binding.roleRef as { name: string }).name,
    );
    expect(refs).not.toContain('cluster-admin');
  });

  it('lets no one but the controller read every Secret: reads and updates of Secrets are by name', () => {
    // The controller serves Gateways: it reads the Secrets their listeners name as certificates
    // and copies each to its gateway's own Secret, which the admission policy confines it to.
    const gatewayRules = (rule: (typeof rules)[number]): boolean =>
      rule.resources.includes('secrets') &&
      rule.resourceNames === undefined &&
      rule.verbs.some((verb) => verb === 'list' || verb === 'patch');
    const secretRules = rules.filter(
      (rule) => rule.resources.includes('secrets') && !gatewayRules(rule),
    );
    expect(secretRules.length).toBeGreaterThan(0);
    const controllerRole = objects.find(
      (object) =>
        object.kind === 'ClusterRole' &&
        object.metadata.name === 'nginx-mesh-controller.internal.builtin.nsm.nginx',
    ) as { rules: typeof rules } | undefined;
    const others = rules.filter(
      (rule) => gatewayRules(rule) && !(controllerRole?.rules ?? []).includes(rule),
    );
    expect(others).toEqual([]);
    for (const rule of secretRules) {
      if (rule.verbs.some((verb) => verb !== 'create')) {
        expect(rule.resourceNames?.length).toBeGreaterThan(0);
      }
      expect(rule.verbs).not.toContain('list');
      expect(rule.verbs).not.toContain('watch');
    }
  });
});

describe('controller RBAC', () => {
  interface RbacRule {
    apiGroups: string[];
    resources: string[];
    verbs: string[];
    resourceNames?: string[];
  }
  const objects = planObjects(plan());
  const rulesOf = (kind: string): RbacRule[] =>
    byKind(objects, kind)
      .filter((role) => role.metadata.name === 'nginx-mesh-controller.internal.builtin.nsm.nginx')
      .flatMap((role) => role.rules as RbacRule[]);
  const clusterRules = rulesOf('ClusterRole');
  const namespaceRules = rulesOf('Role');
  const allows = (
    rules: RbacRule[],
    group: string,
    resource: string,
    verb: string,
    name?: string,
  ): boolean =>
    rules.some(
      (rule) =>
        rule.apiGroups.includes(group) &&
        rule.resources.includes(resource) &&
        rule.verbs.includes(verb) &&
        (rule.resourceNames === undefined ||
          (name !== undefined && rule.resourceNames.includes(name))),
    );

  it.each([
    ['', 'services'],
    ['', 'pods'],
    ['', 'namespaces'],
    ['discovery.k8s.io', 'endpointslices'],
    ['split.smi-spec.io', 'trafficsplits'],
    ['access.smi-spec.io', 'traffictargets'],
    ['specs.smi-spec.io', 'httproutegroups'],
    ['specs.smi-spec.io', 'tcproutes'],
    ['specs.smi.nginx.com', 'ratelimits'],
    ['specs.smi.nginx.com', 'circuitbreakers'],
  ])('lets the controller list and watch %s %s in every namespace', (group, resource) => {
    expect(allows(clusterRules, group, resource, 'list')).toBe(true);
    expect(allows(clusterRules, group, resource, 'watch')).toBe(true);
  });

  it.each([
    ['split.smi-spec.io', 'trafficsplits/status'],
    ['access.smi-spec.io', 'traffictargets/status'],
    ['specs.smi-spec.io', 'httproutegroups/status'],
    ['specs.smi-spec.io', 'tcproutes/status'],
    ['specs.smi.nginx.com', 'ratelimits/status'],
    ['specs.smi.nginx.com', 'circuitbreakers/status'],
  ])('lets the controller read and patch %s %s, not the objects', (group, resource) => {
    for (const verb of ['get', 'patch', 'update']) {
      expect(allows(clusterRules, group, resource, verb)).toBe(true);
    }
    const object = resource.replace('/status', '');
    expect(allows(clusterRules, group, object, 'patch')).toBe(false);
    expect(allows(clusterRules, group, object, 'update')).toBe(false);
  });

  it('lets the controller record Events', () => {
    expect(allows(clusterRules, '', 'events', 'create')).toBe(true);
    expect(allows(clusterRules, '', 'events', 'patch')).toBe(true);
  });

  it('confines the Lease, MeshConfig and the meshconfig ConfigMap to the mesh namespace', () => {
    for (const [group, resource] of [
      ['coordination.k8s.io', 'leases'],
      ['', 'configmaps'],
      ['nsm.nginx.com', 'meshconfigs'],
      ['nsm.nginx.com', 'meshconfigs/status'],
    ] as const) {
      expect(
        clusterRules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource)),
      ).toBe(false);
    }
    expect(allows(namespaceRules, 'coordination.k8s.io', 'leases', 'create')).toBe(true);
    for (const verb of ['get', 'update']) {
      expect(
        allows(namespaceRules, 'coordination.k8s.io', 'leases', verb, 'nginx-mesh-controller'),
      ).toBe(true);
      expect(allows(namespaceRules, 'coordination.k8s.io', 'leases', verb, 'other')).toBe(false);
    }
    for (const verb of ['get', 'list', 'watch']) {
      expect(allows(namespaceRules, '', 'configmaps', verb, 'meshconfig')).toBe(true);
      expect(allows(namespaceRules, '', 'configmaps', verb, 'other')).toBe(false);
      expect(
        allows(namespaceRules, 'nsm.nginx.com', 'meshconfigs', verb, 'nginx-mesh-config'),
      ).toBe(true);
    }
    expect(allows(namespaceRules, '', 'configmaps', 'update', 'meshconfig')).toBe(false);
    expect(
      allows(namespaceRules, 'nsm.nginx.com', 'meshconfigs/status', 'patch', 'nginx-mesh-config'),
    ).toBe(true);
  });
});

describe('control-plane pods', () => {
  const deployments = byKind(planObjects(plan()), 'Deployment');

  it.each(['nats-server', 'nginx-mesh-registrar', 'nginx-mesh-controller', 'nginx-mesh-metrics'])(
    '%s runs hardened, probed and with resource requests',
    (name) => {
      const deployment = deployments.find((each) => each.metadata.name === name);
      const pod = (deployment?.spec as { template: { spec: Record<string, unknown> } }).template
        .spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 2102 });
      const [container] = pod.containers as Record<string, unknown>[];
      expect(container?.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(container?.readinessProbe).toBeDefined();
      expect(container?.livenessProbe).toBeDefined();
      const resources = container?.resources as { requests?: { cpu?: string } } | undefined;
      expect(resources?.requests?.cpu).toMatch(/^\d+m$/);
    },
  );

  it('pulls every image from --registry-server with --disable-public-images', () => {
    const images = byKind(
      planObjects(
        plan({ registryServer: 'registry.test/nsm', imageTag: '9.9.9', disablePublicImages: true }),
      ),
      'Deployment',
    ).map(
      (deployment) =>
        (
          (deployment.spec as { template: { spec: { containers: { image: string }[] } } }).template
            .spec.containers[0] ?? { image: '' }
        ).image,
    );
    expect(images).toEqual([
      'registry.test/nsm/nginx-mesh-controller:9.9.9',
      'registry.test/nsm/nats:2.9',
      'registry.test/nsm/nginx-mesh-controller:9.9.9',
      'registry.test/nsm/nginx-mesh-controller:9.9.9',
    ]);
  });
});

describe('--disable-public-images', () => {
  const natsImages = (input: Partial<DeployInput>): string[] =>
    byKind(planObjects(plan({ registryServer: 'registry.test/nsm', ...input })), 'Deployment')
      .filter((each) => each.metadata.name === 'nats-server')
      .map((each) => JSON.stringify(each.spec))
      .flatMap((spec) => [...spec.matchAll(/"image":"([^"]*nats[^"]*)"/g)].map((m) => m[1] ?? ''));

  it('moves NATS, the one third-party image, from its public name to --registry-server', () => {
    expect(natsImages({})).toEqual(['nats:2.9']);
    expect(natsImages({ disablePublicImages: true })).toEqual(['registry.test/nsm/nats:2.9']);
  });
});

describe('NATS with TLS', () => {
  const objects = planObjects(plan());
  const nats = byKind(objects, 'Deployment').find((each) => each.metadata.name === 'nats-server');
  const pod = (nats?.spec as { template: { spec: Record<string, unknown> } }).template.spec;
  const [reloader] = pod.initContainers as Record<string, unknown>[];

  it('starts nats-server only after a native cert-reloader sidecar has the SVID on disk', () => {
    expect(reloader).toMatchObject({
      name: 'nginx-mesh-cert-reloader',
      restartPolicy: 'Always',
      startupProbe: { httpGet: { path: '/readyz', port: 8081 } },
      securityContext: { readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    });
    expect(reloader?.args).toEqual(
      expect.arrayContaining(['--role=cert-reloader', '--pid-file=/var/run/nats/nats.pid']),
    );
    expect(pod.shareProcessNamespace).toBe(true);
  });

  it("gives the cert-reloader the registrar's token audience and the mesh namespace's bundle", () => {
    const identity = (pod.volumes as { name: string; projected?: unknown }[]).find(
      (volume) => volume.name === 'nginx-mesh-identity',
    );
    expect(JSON.stringify(identity?.projected)).toContain('"audience":"nginx-mesh-registrar"');
    expect(JSON.stringify(identity?.projected)).toContain(
      '"configMap":{"name":"nginx-mesh-bundle","items":[{"key":"bundle.crt","path":"bundle.crt"}]}',
    );
  });

  it('runs nats-server on the configuration the cert-reloader keeps, with no password', () => {
    const [server] = pod.containers as Record<string, unknown>[];
    expect(server?.args).toEqual(['--config', '/etc/nats-tls/nats.conf']);
    expect(server?.env).toBeUndefined();
    expect(reloader?.args).toContain('--nats-config=/etc/nats-tls/nats.conf');
    expect(JSON.stringify(objects)).not.toContain('password');
    expect(byKind(objects, 'ConfigMap').map((each) => each.metadata.name)).not.toContain(
      'nats-config',
    );
  });

  it('gives only the cert-reloader an API token, to list ServiceAccounts', () => {
    const [server] = pod.containers as { volumeMounts: { name: string }[] }[];
    const mounts = (container: unknown): string[] =>
      ((container as { volumeMounts?: { name: string }[] }).volumeMounts ?? []).map(
        (mount) => mount.name,
      );
    expect(mounts(reloader)).toContain('kube-api-access');
    expect(mounts(server)).not.toContain('kube-api-access');
    const role = byKind(objects, 'ClusterRole').find(
      (each) => each.metadata.name === 'nats-server.internal.builtin.nsm.nginx',
    );
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['list', 'watch'] },
    ]);
  });

  it('exposes the client port only: monitoring stays on loopback', () => {
    const [server] = pod.containers as Record<string, unknown>[];
    expect(server?.ports).toEqual([{ name: 'client', containerPort: 4222, protocol: 'TCP' }]);
    expect(server?.readinessProbe).toMatchObject({ tcpSocket: { port: 4222 } });
    const service = byKind(objects, 'Service').find((each) => each.metadata.name === 'nats-server');
    expect((service?.spec as { ports: { port: number }[] }).ports.map((p) => p.port)).toEqual([
      4222,
    ]);
    const policy = byKind(objects, 'NetworkPolicy').find(
      (each) => each.metadata.name === 'nats-server',
    );
    expect(policy?.spec).toMatchObject({
      policyTypes: ['Ingress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: 4222 }] }],
    });
  });
});

describe('API paths', () => {
  it('are derived from apiVersion, kind and scope', () => {
    expect(
      objectPath({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', namespace: 'ns' }),
    ).toBe('/apis/apps/v1/namespaces/ns/deployments/x');
    expect(
      objectPath({ apiVersion: 'v1', kind: 'Namespace', name: 'ns', namespace: 'ignored' }),
    ).toBe('/api/v1/namespaces/ns');
    expect(collectionPath(resourceType('nsm.nginx.com/v1alpha2', 'MeshConfig'), 'm')).toBe(
      '/apis/nsm.nginx.com/v1alpha2/namespaces/m/meshconfigs',
    );
    expect(() => objectPath({ apiVersion: 'v1', kind: 'Secret', name: 's' })).toThrow(
      'Secret s needs a namespace',
    );
  });

  it('exist for every kind the plan applies', () => {
    for (const object of planObjects(plan())) {
      expect(() => resourceType(object.apiVersion, object.kind)).not.toThrow();
    }
  });
});

describe('upgrade input', () => {
  const stored = JSON.parse(
    renderMeshConfigJson(
      configFor({
        mtlsMode: 'strict',
        registryServer: 'registry.test/nsm',
        imageTag: '1.0.0',
        nginxMeshSidecarImage: 'mirror.test/sidecar:pinned',
        telemetryExporters: ['type=otlp,host=otel,port=4317'],
        telemetrySamplerRatio: '0.25',
        mtlsTrustDomain: 'corp.test',
      }),
    ),
  ) as unknown;

  it('keeps the stored settings and explicit images, and moves the rest to the new tag', () => {
    const input = upgradeInput(stored, undefined, { imageTag: '1.1.0' });
    expect(input).toMatchObject({
      mtlsMode: 'strict',
      mtlsTrustDomain: 'corp.test',
      registryServer: 'registry.test/nsm',
      imageTag: '1.1.0',
      nginxMeshSidecarImage: 'mirror.test/sidecar:pinned',
      nginxMeshControllerImage: '',
      nginxMeshInitImage: '',
      telemetryExporters: ['type=otlp,host=otel,port=4317'],
      telemetrySamplerRatio: '0.25',
    });
  });

  it('lays MeshConfig edits made with kubectl over the stored configuration', () => {
    const input = upgradeInput(
      stored,
      { accessControlMode: 'deny', mtls: { mode: 'permissive' }, clientMaxBodySize: '8m' },
      { imageTag: '1.1.0', registryServer: 'other.test/nsm' },
    );
    expect(input).toMatchObject({
      accessControlMode: 'deny',
      mtlsMode: 'permissive',
      clientMaxBodySize: '8m',
      registryServer: 'other.test/nsm',
    });
    const outcome = buildMeshConfig(input, { namespace: 'nginx-mesh', files: new Map() });
    expect('config' in outcome && outcome.config.registry.sidecarInitImage).toBe(
      'other.test/nsm/nginx-mesh-init:1.1.0',
    );
  });

  it('replays a stored --environment kubernetes, and the CA storage values, without a problem', () => {
    const deployed = configFor({ persistentStorage: 'on', spireServerKeyManager: 'memory' });
    const input = upgradeInput(JSON.parse(renderMeshConfigJson(deployed)) as unknown, undefined, {
      imageTag: '2.0.0',
    });
    const outcome = buildMeshConfig(input, { namespace: 'nginx-mesh', files: new Map() });
    expect('config' in outcome && outcome.config).toEqual(deployed);
  });

  it('compares versions numerically', () => {
    expect(compareVersions('2.10.0', '2.9.1')).toBe(1);
    expect(compareVersions('v1.2.3', '1.2.3')).toBe(0);
    expect(compareVersions('1.2.3-rc.1', '1.2.4')).toBe(-1);
  });
});

describe('existing mesh detection', () => {
  const empty = {
    namespaceExists: false,
    namespaceOwned: false,
    namespaceTerminating: false,
    controller: false,
    crds: [],
    foreignCrds: [],
    gatewayApiCrds: [],
    clusterObjects: [],
    bundles: [],
    gateways: [],
  };

  it('lets deploy run on a clean cluster', () => {
    expect(existingMeshProblem(empty, 'nginx-mesh')).toBeUndefined();
  });

  it("uses NGINX Service Mesh's messages", () => {
    expect(existingMeshProblem({ ...empty, crds: ['a.b', 'c.d'] }, 'nginx-mesh')).toBe(
      "mesh already exists: NGINX Service Mesh CRDs detected: 'a.b, c.d'. Delete before deploying the mesh",
    );
    expect(
      existingMeshProblem({ ...empty, foreignCrds: ['trafficsplits.split.smi-spec.io'] }, 'x'),
    ).toBe(
      "NGINX Service Mesh not detected, but 'trafficsplits.split.smi-spec.io' CRD already exists. Please remove before deploying NGINX Service Mesh",
    );
    expect(
      existingMeshProblem({ ...empty, namespaceExists: true, namespaceOwned: true }, 'nginx-mesh'),
    ).toContain('To remove the existing mesh, run "nginx-meshctl remove"');
  });

  it('refuses to take over a namespace it did not create', () => {
    expect(existingMeshProblem({ ...empty, namespaceExists: true }, 'team-a')).toContain(
      "namespace 'team-a' already exists and is not a mesh namespace",
    );
  });
});
