// injectPodTemplate's decisions: what it refuses (with NGINX Service Mesh's wording where NSM
// had one), what it leaves alone, and what it never does to its input.
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import type {
  InjectionOutcome,
  InjectionSettings,
  PodOwner,
  PodTemplate,
} from '../../src/manifests/inject/types';
import { InjectionError } from '../../src/manifests/inject/types';

const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 'registry.test/nginx-mesh-sidecar:1',
  initImage: 'registry.test/nginx-mesh-init:1',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: false,
};
const owner: PodOwner = { kind: 'deployment', name: 'web' };
const prefix = 'error injecting sidecar: creating injection config for "web": ';

function pod(
  containers: unknown[],
  annotations?: Record<string, string>,
  extraSpec: Record<string, unknown> = {},
): PodTemplate {
  return {
    metadata: annotations === undefined ? { labels: { app: 'web' } } : { annotations },
    spec: { containers, ...extraSpec },
  };
}

function inject(template: PodTemplate, config: InjectionSettings = settings): InjectionOutcome {
  return injectPodTemplate(template, owner, config, 'web');
}

function injected(outcome: InjectionOutcome): Extract<InjectionOutcome, { status: 'injected' }> {
  if (outcome.status !== 'injected') throw new Error(`expected injected, got ${outcome.status}`);
  return outcome;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const entry of Object.values(value)) deepFreeze(entry);
    Object.freeze(value);
  }
  return value;
}

function initArgs(outcome: InjectionOutcome): string[] {
  const spec = injected(outcome).template.spec as {
    initContainers: { name: string; args: string[] }[];
  };
  return spec.initContainers.find((c) => c.name === 'nginx-mesh-init')?.args ?? [];
}

const app = { name: 'app', image: 'app:1', ports: [{ containerPort: 8080 }] };

describe('validation errors', () => {
  it.each<[string, PodTemplate, InjectionSettings, string]>([
    [
      'rejects SCTP ports',
      pod([{ name: 'app', image: 'a', ports: [{ containerPort: 9000, protocol: 'SCTP' }] }]),
      settings,
      'unsupported protocol SCTP; container protocol must be TCP',
    ],
    [
      'rejects one port number declared by two containers, even with different protocols',
      pod([
        { name: 'a', image: 'a', ports: [{ containerPort: 53, protocol: 'TCP' }] },
        { name: 'b', image: 'b', ports: [{ containerPort: 53, protocol: 'UDP' }] },
      ]),
      settings,
      '53 container port number already defined; duplicate ports are not supported',
    ],
    [
      'rejects a port the sidecar listens on',
      pod([{ name: 'app', image: 'a', ports: [{ containerPort: 8888 }] }]),
      settings,
      'container port 8888 of container "app" is reserved by the sidecar (8886-8909)',
    ],
    [
      'rejects an out-of-range container port',
      pod([{ name: 'app', image: 'a', ports: [{ containerPort: 70000 }] }]),
      settings,
      'invalid port "70000" in container "app": expected 1-65535',
    ],
    [
      'rejects ports the user native sidecar shares with an app container',
      pod([app], undefined, {
        initContainers: [
          { name: 'side', image: 's', restartPolicy: 'Always', ports: [{ containerPort: 8080 }] },
        ],
      }),
      settings,
      '8080 container port number already defined; duplicate ports are not supported',
    ],
    [
      'rejects an out-of-range port in the ignore-incoming-ports annotation',
      pod([app], { 'config.nsm.nginx.com/ignore-incoming-ports': '80, 70000' }),
      settings,
      'invalid port "70000" in annotation config.nsm.nginx.com/ignore-incoming-ports: expected 1-65535',
    ],
    [
      'rejects a non-number in the ignore-outgoing-ports annotation',
      pod([app], { 'config.nsm.nginx.com/ignore-outgoing-ports': '1433,mssql' }),
      settings,
      'invalid port "mssql" in annotation config.nsm.nginx.com/ignore-outgoing-ports: expected 1-65535',
    ],
    [
      'rejects an empty item in an annotation port list',
      pod([app], { 'config.nsm.nginx.com/ignore-outgoing-ports': '1433,,1434' }),
      settings,
      'invalid port "" in annotation config.nsm.nginx.com/ignore-outgoing-ports: expected 1-65535',
    ],
    [
      'rejects port 0 from the command line',
      pod([app]),
      { ...settings, ignoreIncomingPorts: [0] },
      'invalid port "0" in --ignore-incoming-ports: expected 1-65535',
    ],
    [
      'rejects an annotation that disagrees with the flag',
      pod([app], { 'config.nsm.nginx.com/ignore-incoming-ports': '80,81' }),
      { ...settings, ignoreIncomingPorts: [80] },
      'ignore ports in annotation do not match those provided as arguments: config.nsm.nginx.com/ignore-incoming-ports is "80,81", --ignore-incoming-ports is "80"',
    ],
    [
      'rejects a weaker mTLS annotation under global strict',
      pod([app], { 'config.nsm.nginx.com/mtls-mode': 'permissive' }),
      { ...settings, mtlsMode: 'strict' },
      "global mtls mode is 'strict'; mtls annotation for 'web' cannot conflict",
    ],
    [
      'rejects a probe naming a port the container does not declare',
      pod([{ ...app, livenessProbe: { httpGet: { path: '/', port: 'http' } } }]),
      settings,
      'unknown port "http" in the liveness probe of container "app": the container declares no port of that name',
    ],
    [
      'rejects a probe with an out-of-range port',
      pod([{ ...app, startupProbe: { httpGet: { path: '/', port: 0 } } }]),
      settings,
      'invalid port "0" in the startup probe of container "app": expected 1-65535',
    ],
    [
      'rejects a container running as the sidecar UID',
      pod([{ ...app, securityContext: { runAsUser: 2102 } }]),
      settings,
      'container "app" runs as UID 2102, which is reserved for the sidecar: its traffic would bypass the mesh',
    ],
    [
      'rejects a pod whose containers inherit the sidecar UID',
      pod([app], undefined, { securityContext: { runAsUser: 2102 } }),
      settings,
      'container "app" runs as UID 2102, which is reserved for the sidecar: its traffic would bypass the mesh',
    ],
    [
      'rejects a user volume named like a sidecar volume',
      pod([app], undefined, { volumes: [{ name: 'nginx-mesh-config', emptyDir: {} }] }),
      settings,
      'volume name "nginx-mesh-config" is reserved for the sidecar',
    ],
    [
      "rejects an app container mounting the sidecar's run directory by name",
      pod([{ ...app, volumeMounts: [{ name: 'nginx-mesh-config', mountPath: '/peek' }] }]),
      settings,
      'container "app" mounts volume "nginx-mesh-config", which is reserved for the sidecar',
    ],
    [
      "rejects an init container mounting the sidecar's identity by name",
      pod([app], undefined, {
        initContainers: [
          {
            name: 'setup',
            image: 'i',
            volumeMounts: [{ name: 'nginx-mesh-identity', mountPath: '/t' }],
          },
        ],
      }),
      settings,
      'container "setup" mounts volume "nginx-mesh-identity", which is reserved for the sidecar',
    ],
    [
      'rejects a container entry that is not an object',
      pod([app, 'oops']),
      settings,
      'containers[1] is not an object',
    ],
  ])('%s', (_name, template, config, message) => {
    const attempt = (): InjectionOutcome => inject(template, config);
    expect(attempt).toThrow(InjectionError);
    expect(attempt).toThrow(`${prefix}${message}`);
  });

  it('accepts a strict mTLS annotation under global strict', () => {
    const outcome = inject(pod([app], { 'config.nsm.nginx.com/mtls-mode': 'STRICT' }), {
      ...settings,
      mtlsMode: 'strict',
    });
    expect(injected(outcome).warnings).toEqual([]);
  });

  it('accepts an annotation and a flag that list the same ports in another order', () => {
    const outcome = inject(pod([app], { 'config.nsm.nginx.com/ignore-incoming-ports': '81, 80' }), {
      ...settings,
      ignoreIncomingPorts: [80, 81],
    });
    expect(initArgs(outcome)).toEqual([
      'run',
      '--role',
      'init',
      '--ignore-incoming-ports',
      '8887,80,81',
    ]);
  });

  it('treats an empty flag list as no flag', () => {
    const outcome = inject(pod([app], { 'config.nsm.nginx.com/ignore-incoming-ports': '5432' }), {
      ...settings,
      ignoreIncomingPorts: [],
    });
    expect(initArgs(outcome)).toContain('8887,5432');
  });
});

describe('pods left alone', () => {
  it.each<[string, PodTemplate]>([
    [
      'carries the injected annotation',
      pod([app], { 'injector.nsm.nginx.com/status': 'injected' }),
    ],
    ['has a nginx-mesh-sidecar container', pod([app, { name: 'nginx-mesh-sidecar', image: 's' }])],
    [
      'has a nginx-mesh-sidecar init container',
      pod([app], undefined, { initContainers: [{ name: 'nginx-mesh-sidecar', image: 's' }] }),
    ],
    [
      'has a nginx-mesh-init init container',
      pod([app], undefined, { initContainers: [{ name: 'nginx-mesh-init', image: 'i' }] }),
    ],
  ])('answers unchanged when the pod %s', (_name, template) => {
    const outcome = inject(deepFreeze(template));
    expect(outcome.status).toBe('unchanged');
  });

  it('answers unchanged before validating (an already-injected pod with SCTP is not an error)', () => {
    const template = pod(
      [{ name: 'app', image: 'a', ports: [{ containerPort: 1, protocol: 'SCTP' }] }],
      { 'injector.nsm.nginx.com/status': 'injected' },
    );
    expect(inject(template)).toEqual({
      status: 'unchanged',
      reason: '"web" is already injected (injector.nsm.nginx.com/status: injected)',
    });
  });

  it('skips hostNetwork pods', () => {
    expect(inject(pod([app], undefined, { hostNetwork: true }))).toEqual({
      status: 'skipped',
      reason: `"web" uses hostNetwork: the redirect would capture the node's traffic`,
    });
  });

  it('skips pods labelled auto-inject: disabled', () => {
    const template: PodTemplate = {
      metadata: { labels: { 'injector.nsm.nginx.com/auto-inject': 'disabled' } },
      spec: { containers: [app] },
    };
    expect(inject(template)).toEqual({
      status: 'skipped',
      reason: '"web" is labelled injector.nsm.nginx.com/auto-inject: disabled',
    });
  });

  it('injects pods labelled auto-inject: enabled', () => {
    const template: PodTemplate = {
      metadata: { labels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' } },
      spec: { containers: [app] },
    };
    expect(inject(template).status).toBe('injected');
  });

  it('skips templates without containers', () => {
    expect(inject({ metadata: {} })).toEqual({
      status: 'skipped',
      reason: '"web" has no containers',
    });
  });

  it('answers unchanged for its own output', () => {
    const once = injected(inject(pod([app])));
    expect(inject(once.template).status).toBe('unchanged');
    expect(inject(once.template, { ...settings, nativeSidecar: true }).status).toBe('unchanged');
  });
});

describe('the input', () => {
  const rich = (): PodTemplate =>
    pod(
      [
        {
          ...app,
          ports: [{ name: 'http', containerPort: 8080 }],
          livenessProbe: { httpGet: { path: '/l', port: 'http' } },
          readinessProbe: { httpGet: { path: '/r', port: 8080, scheme: 'HTTPS' } },
        },
      ],
      { 'config.nsm.nginx.com/ignore-incoming-ports': '5432' },
      {
        initContainers: [
          {
            name: 'side',
            image: 's',
            restartPolicy: 'Always',
            ports: [{ name: 'side', containerPort: 9000 }],
            startupProbe: { httpGet: { path: '/s', port: 'side' } },
          },
        ],
        volumes: [{ name: 'v', emptyDir: {} }],
        imagePullSecrets: [{ name: 'mine' }],
      },
    );

  it.each([false, true])('is never modified (nativeSidecar %s)', (nativeSidecar) => {
    const template = deepFreeze(rich());
    const config = { ...settings, nativeSidecar, registryKeyName: 'key' };
    const outcome = injected(inject(template, config));
    expect(template).toEqual(rich());
    expect(outcome.template).not.toBe(template);
  });

  it('keeps fields it does not own, in their places', () => {
    const template: PodTemplate = {
      metadata: { name: 'p', namespace: 'n', labels: { a: '1' }, annotations: { b: '2' } },
      spec: { restartPolicy: 'Never', containers: [app], nodeSelector: { disk: 'ssd' } },
    };
    const { template: out } = injected(inject(template));
    expect(Object.keys(out.metadata ?? {})).toEqual(['name', 'namespace', 'labels', 'annotations']);
    expect(Object.keys(out.spec ?? {})).toEqual([
      'restartPolicy',
      'containers',
      'nodeSelector',
      'initContainers',
      'volumes',
    ]);
    expect(out.metadata?.labels).toEqual({ a: '1', 'nsm.nginx.com/deployment': 'web' });
    expect(out.metadata?.annotations).toEqual({
      b: '2',
      'injector.nsm.nginx.com/status': 'injected',
    });
  });
});

describe('warnings', () => {
  it.each<[string, string, string]>([
    ['config.nsm.nginx.com/mtls-mode', 'on', 'off, permissive or strict'],
    ['config.nsm.nginx.com/client-max-body-size', '1.5m', 'a size such as 0, 64k or 10m'],
    ['config.nsm.nginx.com/client-max-body-size', '10mb', 'a size such as 0, 64k or 10m'],
    ['config.nsm.nginx.com/default-egress-allowed', 'maybe', 'true or false'],
  ])('ignores %s: %s with a warning', (key, value, expected) => {
    const outcome = injected(inject(pod([app], { [key]: value })));
    expect(outcome.warnings).toEqual([
      `ignoring annotation ${key}: "${value}" of "web": expected ${expected}`,
    ]);
    const spec = outcome.template.spec as { containers: { name: string; args: string[] }[] };
    const args = spec.containers.find((c) => c.name === 'nginx-mesh-sidecar')?.args ?? [];
    expect(args).toEqual([
      'run',
      '--role',
      'agent',
      '--container-port',
      '8080',
      '--owner',
      'deployment/web',
      '--mesh-namespace',
      'nginx-mesh',
    ]);
  });

  it('warns about an invalid mTLS annotation under global strict instead of failing', () => {
    const outcome = injected(
      inject(pod([app], { 'config.nsm.nginx.com/mtls-mode': 'bogus' }), {
        ...settings,
        mtlsMode: 'strict',
      }),
    );
    expect(outcome.warnings).toHaveLength(1);
  });

  it.each(['0', '64k', '10M', '1g'])('accepts client-max-body-size %s', (value) => {
    const outcome = injected(
      inject(pod([app], { 'config.nsm.nginx.com/client-max-body-size': value })),
    );
    expect(outcome.warnings).toEqual([]);
  });
});
