// The node agent's pure decisions, as the kubelet makes them.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ContainerRuntime, ImageRule, PodRuntime } from '../cluster/node/pod-spec';
import { buildEnv, buildPodStatus, podPhase, resolveArgv } from '../cluster/node/pod-spec';

const rules: ImageRule[] = [
  {
    pattern: /(^|\/)nginx-mesh-sidecar(:|$)/,
    program: {
      entrypoint: ['/usr/bin/nginx-meshctl'],
      cmd: ['--help'],
      paths: { '/usr/bin/nginx-meshctl': '/opt/meshctl' },
    },
  },
];

describe('resolveArgv', () => {
  const container = (fields: Partial<V1Container>): V1Container => ({
    name: 'c',
    image: 'r/nginx-mesh-sidecar:1',
    ...fields,
  });

  it('runs ENTRYPOINT and CMD when the container sets neither', () => {
    expect(resolveArgv(container({}), rules)).toEqual(['/opt/meshctl', '--help']);
  });

  it('replaces CMD with args', () => {
    expect(resolveArgv(container({ args: ['run', '--role', 'agent'] }), rules)).toEqual([
      '/opt/meshctl',
      'run',
      '--role',
      'agent',
    ]);
  });

  it('replaces ENTRYPOINT with command and maps in-image paths', () => {
    expect(
      resolveArgv(container({ command: ['/usr/bin/nginx-meshctl', 'version'] }), rules),
    ).toEqual(['/opt/meshctl', 'version']);
  });

  it('returns undefined for an image not in the table', () => {
    expect(resolveArgv(container({ image: 'example/unknown:1' }), rules)).toBeUndefined();
  });
});

describe('buildEnv', () => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'ns', labels: { app: 'a' } },
    spec: { containers: [], serviceAccountName: 'sa' },
  };
  const sources = {
    services: [
      {
        metadata: { name: 'my-svc' },
        spec: { clusterIP: '198.19.0.9', ports: [{ name: 'http-alt', port: 81 }] },
      },
    ],
    kubernetesService: {
      metadata: { name: 'kubernetes' },
      spec: { clusterIP: '198.19.0.1', ports: [{ name: 'https', port: 443 }] },
    },
    configMaps: new Map([['cm', { key: 'from-cm' }]]),
    secrets: new Map([['s', { token: 'from-secret' }]]),
    podIP: '198.18.101.10',
    hostIP: '198.18.1.2',
  };

  it('sets service variables, downward API fields, references and $(VAR) expansion in order', () => {
    const env = buildEnv(
      pod,
      {
        name: 'c',
        envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }],
        env: [
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } },
          { name: 'BOTH', value: '$(POD)@$(IP) $$(POD) $(MISSING)' },
        ],
      },
      sources,
    );
    expect(env).toMatchObject({
      MY_SVC_SERVICE_HOST: '198.19.0.9',
      MY_SVC_SERVICE_PORT: '81',
      MY_SVC_SERVICE_PORT_HTTP_ALT: '81',
      KUBERNETES_SERVICE_HOST: '198.19.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      CM_key: 'from-cm',
      POD: 'p',
      IP: '198.18.101.10',
      APP: 'a',
      SECRET: 'from-secret',
      BOTH: 'p@198.18.101.10 $(POD) $(MISSING)',
      HOSTNAME: 'p',
    });
  });

  it('leaves out service links when the pod disables them', () => {
    const env = buildEnv(
      { ...pod, spec: { containers: [], enableServiceLinks: false } },
      { name: 'c' },
      sources,
    );
    expect(env.MY_SVC_SERVICE_HOST).toBeUndefined();
    expect(env.KUBERNETES_SERVICE_HOST).toBe('198.19.0.1');
  });
});

function container(
  state: ContainerRuntime['state'],
  fields: Partial<ContainerRuntime> = {},
): ContainerRuntime {
  return {
    name: 'c',
    image: 'i',
    init: false,
    sidecar: false,
    state,
    ready: state.kind === 'running',
    started: state.kind === 'running',
    restartCount: 0,
    containerID: 'x',
    ...fields,
  };
}

function pod(fields: Partial<PodRuntime>): PodRuntime {
  return {
    restartPolicy: 'Always',
    containers: [],
    initContainers: [],
    initialized: true,
    initFailed: false,
    networkReady: true,
    podIP: '198.18.101.10',
    hostIP: '198.18.1.2',
    startTime: '2026-01-01T00:00:00Z',
    now: '2026-01-01T00:00:01Z',
    ...fields,
  };
}

const running = { kind: 'running', startedAt: 't' } as const;
const exited = (exitCode: number) =>
  ({
    kind: 'terminated',
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: 't',
    finishedAt: 't',
  }) as const;

describe('podPhase', () => {
  it.each([
    [
      'Pending before init containers finish',
      pod({ initialized: false, containers: [container(running)] }),
      'Pending',
    ],
    [
      'Failed when an init container failed for good',
      pod({ initialized: false, initFailed: true }),
      'Failed',
    ],
    [
      'Running while a container runs',
      pod({ containers: [container(running), container(exited(0))] }),
      'Running',
    ],
    [
      'Running while a crashed container waits to restart',
      pod({
        containers: [
          container({ kind: 'waiting', reason: 'CrashLoopBackOff' }, { restartCount: 1 }),
        ],
      }),
      'Running',
    ],
    [
      'Pending while a container is being created',
      pod({ containers: [container({ kind: 'waiting', reason: 'ContainerCreating' })] }),
      'Pending',
    ],
    [
      'Succeeded when all exit 0 and policy is Never',
      pod({ restartPolicy: 'Never', containers: [container(exited(0))] }),
      'Succeeded',
    ],
    [
      'Failed when one exits non-zero and policy is Never',
      pod({ restartPolicy: 'Never', containers: [container(exited(0)), container(exited(2))] }),
      'Failed',
    ],
    [
      'Succeeded under OnFailure when all exit 0',
      pod({ restartPolicy: 'OnFailure', containers: [container(exited(0))] }),
      'Succeeded',
    ],
  ])('%s', (_name, runtime, phase) => {
    expect(podPhase(runtime)).toBe(phase);
  });
});

describe('buildPodStatus', () => {
  it('is Ready only when every container and native sidecar is ready', () => {
    const sidecar = container(running, { sidecar: true, ready: false });
    const status = buildPodStatus(
      pod({ containers: [container(running)], initContainers: [sidecar] }),
    );
    expect(status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False' }),
    );
    const ready = buildPodStatus(
      pod({ containers: [container(running)], initContainers: [{ ...sidecar, ready: true }] }),
    );
    expect(ready.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'True' }),
    );
    expect(ready).toMatchObject({
      phase: 'Running',
      podIP: '198.18.101.10',
      podIPs: [{ ip: '198.18.101.10' }],
    });
  });

  it('reports a completed pod as not ready with reason PodCompleted', () => {
    const status = buildPodStatus(
      pod({ restartPolicy: 'Never', containers: [container(exited(0))] }),
    );
    expect(status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'PodCompleted' }),
    );
  });
});
