// Who the registrar counts as a mesh member, from the live pod's spec: the sidecar exactly as the
// injector renders it with nothing else in the pod able to reach its token or SVID, or a
// control-plane component's own container. Pods come from the product's builders and are then
// changed the way a hostile pod author could.
import type { PodFacts } from '../../src/manifests/registrar/pod-facts';
import { toPodFacts } from '../../src/manifests/registrar/pod-facts';
import { imageRepositoryOf } from '../../src/manifests/registrar/mesh-member';
import { authorizeWorkload, isRefusal } from '../../src/manifests/registrar/svid-policy';
import {
  controlPlanePodFacts,
  controlPlanePods,
  injectedPod,
  TEST_IMAGES,
} from '../support/registrar-pods';

const context = { meshNamespace: 'nginx-mesh', trustDomain: 'example.org', ...TEST_IMAGES };
const ref = { namespace: 'app', name: 'web-1', uid: 'u1', serviceAccount: 'web' };
const claimOf = (pod: PodFacts) => ({
  namespace: pod.namespace,
  serviceAccount: pod.serviceAccountName,
  podName: pod.name,
  podUid: pod.uid,
});

type Json = Record<string, unknown>;
type Container = Json & { name: string };
interface Spec extends Json {
  containers: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  volumes?: Json[];
}

/** The injected pod (native layout unless classic), changed by change. */
function podWith(change: (spec: Spec) => void, native = true): PodFacts {
  const pod = structuredClone(injectedPod(ref, native)) as { spec: Spec };
  change(pod.spec);
  return toPodFacts(pod, ref);
}

function sidecarOf(spec: Spec): Container {
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  const sidecar = all.find((container) => container.name === 'nginx-mesh-sidecar');
  if (sidecar === undefined) throw new Error('no sidecar');
  return sidecar;
}

const app = (spec: Spec): Container => {
  const container = spec.containers.find((each) => each.name === 'app');
  if (container === undefined) throw new Error('no app container');
  return container;
};

const mount = (name: string) => ({ name, mountPath: '/stolen' });

function expectRefused(pod: PodFacts, reason: string): void {
  const result = authorizeWorkload(claimOf(pod), pod, context);
  expect(result).toMatchObject({ refused: true, status: 403 });
  const text = (result as { reason: string }).reason;
  expect(text).toContain(`pod ${pod.namespace}/${pod.name} is not in the mesh: `);
  expect(text).toContain(reason);
  expect(text).not.toContain('\n');
}

/** The volume the ServiceAccount admission adds to every pod that automounts its token. */
function apiAccessVolume(name: string): Json {
  return {
    name,
    projected: {
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        {
          downwardAPI: {
            items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }],
          },
        },
      ],
    },
  };
}

function expectGranted(pod: PodFacts, spiffeId: string): void {
  expect(authorizeWorkload(claimOf(pod), pod, context)).toMatchObject({ spiffeId });
}

describe('an application pod', () => {
  it.each([
    ['native', true],
    ['classic', false],
  ])('is a member when the injector rendered its sidecar (%s layout)', (_layout, native) => {
    expectGranted(
      podWith(() => undefined, native),
      'spiffe://example.org/ns/app/sa/web',
    );
  });

  it("stays a member with the kubelet's API-access volume in every container, as it runs", () => {
    // The ServiceAccount admission mounts kube-api-access-<x> into every container, the
    // sidecar's too: it carries the pod's API token, which every container gets anyway.
    const pod = podWith((spec) => {
      spec.volumes = [...(spec.volumes ?? []), apiAccessVolume('kube-api-access-x2x9z')];
      for (const container of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
        container.volumeMounts = [
          ...((container.volumeMounts as Json[] | undefined) ?? []),
          mount('kube-api-access-x2x9z'),
        ];
      }
    });
    expectGranted(pod, 'spiffe://example.org/ns/app/sa/web');
  });

  it('is refused when a volume dressed as API access also carries a Secret shared with the app', () => {
    const pod = podWith((spec) => {
      const volume = apiAccessVolume('kube-api-access-evil') as Json & {
        projected: { sources: object[] };
      };
      volume.projected.sources.push({ secret: { name: 'loot' } });
      spec.volumes = [...(spec.volumes ?? []), volume];
      const sidecar = sidecarOf(spec);
      sidecar.volumeMounts = [
        ...((sidecar.volumeMounts as Json[] | undefined) ?? []),
        mount('kube-api-access-evil'),
      ];
      app(spec).volumeMounts = [mount('kube-api-access-evil')];
    });
    expectRefused(
      pod,
      'container app mounts volume kube-api-access-evil, which only nginx-mesh-sidecar may mount',
    );
  });

  it('stays a member with another tag of the sidecar image, as after an upgrade', () => {
    const pod = podWith((spec) => {
      sidecarOf(spec).image = 'registry.example/nginx-mesh-sidecar:1.9.0@sha256:00ff';
    });
    expectGranted(pod, 'spiffe://example.org/ns/app/sa/web');
  });

  it('is refused when it only carries the injected annotation and the identity volume', () => {
    const pod = toPodFacts(
      {
        metadata: {
          ...ref,
          annotations: { 'injector.nsm.nginx.com/status': 'injected' },
        },
        spec: {
          serviceAccountName: 'web',
          containers: [
            {
              name: 'app',
              image: 'app:1',
              volumeMounts: [{ name: 'nginx-mesh-identity', mountPath: '/t' }],
            },
          ],
          volumes: (injectedPod(ref) as { spec: Spec }).spec.volumes,
        },
      },
      ref,
    );
    expectRefused(pod, 'it has no container nginx-mesh-sidecar');
  });

  it.each<[string, (spec: Spec) => void, string]>([
    [
      'a sidecar that is a plain init container',
      (spec) => delete sidecarOf(spec).restartPolicy,
      'container nginx-mesh-sidecar is an init container without restartPolicy: Always',
    ],
    [
      'a sidecar that is an ephemeral container',
      (spec) => {
        const sidecar = sidecarOf(spec);
        spec.initContainers = (spec.initContainers ?? []).filter((c) => c !== sidecar);
        spec.ephemeralContainers = [sidecar];
      },
      'container nginx-mesh-sidecar is an ephemeral container',
    ],
    [
      'a sidecar of another image',
      (spec) => (sidecarOf(spec).image = 'evil.example/nginx-mesh-sidecar:2.0.0'),
      'container nginx-mesh-sidecar runs image "evil.example/nginx-mesh-sidecar:2.0.0", not the mesh\'s sidecar image',
    ],
    [
      "a sidecar that overrides the image's command",
      (spec) =>
        (sidecarOf(spec).command = ['/bin/sh', '-c', 'cat /var/run/secrets/nginx-mesh/token']),
      "container nginx-mesh-sidecar overrides the image's command",
    ],
    [
      'a sidecar that runs another role',
      (spec) => (sidecarOf(spec).args = ['run', '--role', 'controller']),
      'container nginx-mesh-sidecar runs neither the agent role nor the gateway role',
    ],
    [
      'a sidecar that runs as another user',
      (spec) => (sidecarOf(spec).securityContext = { runAsUser: 1000 }),
      'container nginx-mesh-sidecar does not run as UID 2102',
    ],
    [
      'a sidecar with an environment variable of its own',
      (spec) =>
        (sidecarOf(spec).env = [
          { name: 'NODE_OPTIONS', value: '--import=data:text/javascript,evil()' },
        ]),
      'container nginx-mesh-sidecar sets environment variable NODE_OPTIONS',
    ],
    [
      'a sidecar with envFrom',
      (spec) => (sidecarOf(spec).envFrom = [{ configMapRef: { name: 'x' } }]),
      'container nginx-mesh-sidecar takes environment variables from envFrom',
    ],
    [
      'a sidecar with a lifecycle hook',
      (spec) => (sidecarOf(spec).lifecycle = { postStart: { exec: { command: ['/bin/sh'] } } }),
      'container nginx-mesh-sidecar has lifecycle hooks or exec probes',
    ],
    [
      'a sidecar with an exec probe',
      (spec) => (sidecarOf(spec).readinessProbe = { exec: { command: ['/bin/sh'] } }),
      'container nginx-mesh-sidecar has lifecycle hooks or exec probes',
    ],
    [
      'a pod that shares its process namespace',
      (spec) => (spec.shareProcessNamespace = true),
      'it shares its process namespace',
    ],
    ['a pod in the node PID namespace', (spec) => (spec.hostPID = true), 'it shares its process'],
    [
      "an app container that mounts the sidecar's token",
      (spec) => (app(spec).volumeMounts = [mount('nginx-mesh-identity')]),
      'container app mounts volume nginx-mesh-identity, which only nginx-mesh-sidecar may mount',
    ],
    [
      "an app container that mounts the sidecar's SVID directory",
      (spec) => (app(spec).volumeMounts = [mount('nginx-mesh-config')]),
      'container app mounts volume nginx-mesh-config, which only nginx-mesh-sidecar may mount',
    ],
    [
      'an app container with a token of its own for the registrar',
      (spec) => {
        spec.volumes = [
          ...(spec.volumes ?? []),
          {
            name: 'stolen',
            projected: {
              sources: [{ serviceAccountToken: { audience: 'nginx-mesh-registrar', path: 't' } }],
            },
          },
        ];
        app(spec).volumeMounts = [mount('stolen')];
      },
      'container app mounts volume stolen, which only nginx-mesh-sidecar may mount',
    ],
    [
      "a user init container that mounts the sidecar's token",
      (spec) =>
        (spec.initContainers = [
          ...(spec.initContainers ?? []),
          { name: 'setup', image: 'app:1', volumeMounts: [mount('nginx-mesh-identity')] },
        ]),
      'container setup mounts volume nginx-mesh-identity',
    ],
    [
      "an ephemeral container that mounts the sidecar's SVID directory",
      (spec) =>
        (spec.ephemeralContainers = [
          { name: 'debug', image: 'busybox', volumeMounts: [mount('nginx-mesh-config')] },
        ]),
      'container debug mounts volume nginx-mesh-config',
    ],
  ])('is refused for %s', (_name, change, reason) => {
    expectRefused(podWith(change), reason);
  });

  it('is refused in the classic layout when the app mounts the token', () => {
    const pod = podWith((spec) => (app(spec).volumeMounts = [mount('nginx-mesh-identity')]), false);
    expectRefused(pod, 'container app mounts volume nginx-mesh-identity');
  });
});

describe('a control-plane pod', () => {
  it.each([
    ['the controller', 'nginx-mesh-controller', 'nginx-mesh-controller'],
    ['NATS (its cert-reloader)', 'nats-server', 'nats'],
  ])('is a member as deploy renders %s', (_name, deployment, account) => {
    expectGranted(
      controlPlanePodFacts(deployment),
      `spiffe://example.org/ns/nginx-mesh/sa/${account}`,
    );
  });

  it('is refused for a component that holds no SVID (metrics)', () => {
    expectRefused(
      controlPlanePodFacts('nginx-mesh-metrics'),
      'it has no container nginx-mesh-sidecar',
    );
  });

  /** The controller's pod in the mesh namespace, changed by change. */
  function controller(change: (spec: Spec) => void, namespace = 'nginx-mesh'): PodFacts {
    const template = structuredClone(
      controlPlanePods().get('nginx-mesh-controller'),
    ) as unknown as {
      spec: Spec;
    };
    change(template.spec);
    const where = { namespace, name: 'c-0' };
    return toPodFacts({ metadata: { ...where, uid: 'uid-cp' }, spec: template.spec }, where);
  }
  const main = (spec: Spec): Container => spec.containers[0] as Container;

  it.each<[string, (spec: Spec) => void, string]>([
    [
      'another image in the controller container',
      (spec) => (main(spec).image = 'evil.example/nginx-mesh-controller:2.0.0'),
      'container nginx-mesh-controller runs image "evil.example/nginx-mesh-controller:2.0.0", not the control-plane image',
    ],
    [
      "a command instead of the image's",
      (spec) => (main(spec).command = ['/bin/sh']),
      "container nginx-mesh-controller overrides the image's command",
    ],
    [
      'another role',
      (spec) => (main(spec).args = ['run', '--role=agent']),
      'container nginx-mesh-controller does not run the controller role',
    ],
    [
      'a second container that mounts its token',
      (spec) =>
        spec.containers.push({
          name: 'thief',
          image: 'busybox',
          volumeMounts: [mount('nginx-mesh-identity')],
        }),
      'container thief mounts volume nginx-mesh-identity, which only nginx-mesh-controller may mount',
    ],
    [
      'no controller container',
      (spec) => (main(spec).name = 'renamed'),
      'it has no container nginx-mesh-controller',
    ],
  ])('is refused for %s', (_name, change, reason) => {
    expectRefused(controller(change), reason);
  });

  it('gets no control-plane rule outside the mesh namespace', () => {
    expectRefused(
      controller(() => undefined, 'app'),
      'it has no container nginx-mesh-sidecar',
    );
  });
});

describe('pod facts', () => {
  it('takes the pod-level user when the container sets none, and sees deletion', () => {
    const facts = toPodFacts(
      {
        metadata: { name: 'p', namespace: 'n', uid: 'u', deletionTimestamp: new Date(0) },
        spec: {
          securityContext: { runAsUser: 2102 },
          containers: [{ name: 'a' }, { name: 'b', securityContext: { runAsUser: 7 } }],
        },
      },
      { namespace: 'n', name: 'p' },
    );
    expect(facts.containers.map((c) => [c.name, c.runAsUser])).toEqual([
      ['a', 2102],
      ['b', 7],
    ]);
    expect(facts.deleting).toBe(true);
    expect(facts.serviceAccountName).toBe('default');
  });

  it('reads a token without an audience as one for the API server, not the registrar', () => {
    const facts = toPodFacts(
      {
        spec: {
          volumes: [
            { name: 'v', projected: { sources: [{ serviceAccountToken: { path: 't' } }] } },
          ],
        },
      },
      { namespace: 'n', name: 'p' },
    );
    expect(facts.volumes).toEqual([{ name: 'v', tokenAudiences: [''], apiAccessOnly: true }]);
  });

  it.each([
    ['registry.example/nginx-mesh-sidecar:2.0.0', 'registry.example/nginx-mesh-sidecar'],
    ['registry.example:5000/nginx-mesh-sidecar', 'registry.example:5000/nginx-mesh-sidecar'],
    ['registry.example:5000/sidecar:1@sha256:ab', 'registry.example:5000/sidecar'],
  ])('compares image %s by its repository', (image, repository) => {
    expect(imageRepositoryOf(image)).toBe(repository);
  });
});

it('is total on garbage', () => {
  const facts = toPodFacts({ spec: { containers: [7, null, { name: 3 }] } }, ref);
  expect(isRefusal(authorizeWorkload(claimOf(facts), facts, context))).toBe(true);
});
