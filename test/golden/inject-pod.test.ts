// Injected pod templates, pinned byte for byte. The golden text is JSON.stringify of the whole
// outcome, so key order, container order and warnings are all part of what is reviewed.
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import type { InjectionSettings, PodOwner, PodTemplate } from '../../src/manifests/inject/types';
import { expectGolden } from '../support/golden';

const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: 'docker-registry.nginx.com/nsm/nginx-mesh-sidecar:0.1.0',
  initImage: 'docker-registry.nginx.com/nsm/nginx-mesh-init:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: false,
};
const native: InjectionSettings = { ...settings, nativeSidecar: true };
const deployment: PodOwner = { kind: 'deployment', name: 'web' };

const plainPod: PodTemplate = {
  metadata: { labels: { app: 'web' } },
  spec: {
    serviceAccountName: 'web',
    containers: [
      {
        name: 'web',
        image: 'nginx:1.27',
        ports: [
          { name: 'http', containerPort: 8080 },
          { name: 'dns', containerPort: 5353, protocol: 'UDP' },
        ],
      },
      { name: 'admin', image: 'admin:1', ports: [{ containerPort: 3000, protocol: 'TCP' }] },
    ],
  },
};

const probedPod: PodTemplate = {
  metadata: { labels: { app: 'web' } },
  spec: {
    containers: [
      {
        name: 'web',
        image: 'web:1',
        ports: [{ name: 'http', containerPort: 8080 }],
        livenessProbe: { httpGet: { path: '/live', port: 'http' }, periodSeconds: 10 },
        readinessProbe: {
          httpGet: {
            path: '/ready',
            port: 'http',
            scheme: 'HTTP',
            httpHeaders: [{ name: 'X-Probe', value: 'ready' }],
          },
        },
        startupProbe: { httpGet: { port: 8080 }, failureThreshold: 30 },
      },
      {
        name: 'secure',
        image: 'secure:1',
        ports: [{ name: 'https', containerPort: 8443 }],
        livenessProbe: { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' } },
        readinessProbe: { tcpSocket: { port: 8443 } },
        startupProbe: { exec: { command: ['true'] } },
      },
      {
        name: 'external',
        image: 'external:1',
        livenessProbe: { httpGet: { host: 'example.test', path: '/', port: 80 } },
      },
    ],
  },
};

const withInitContainers: PodTemplate = {
  metadata: { labels: { app: 'web' }, annotations: { team: 'payments' } },
  spec: {
    initContainers: [
      { name: 'migrate', image: 'migrate:1', args: ['up'] },
      {
        name: 'log-shipper',
        image: 'shipper:1',
        restartPolicy: 'Always',
        ports: [{ name: 'shipper', containerPort: 9000 }],
        readinessProbe: { httpGet: { path: '/ready', port: 'shipper' } },
      },
    ],
    containers: [{ name: 'web', image: 'web:1', ports: [{ containerPort: 8080 }] }],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
};

const annotatedPod: PodTemplate = {
  metadata: {
    annotations: {
      'config.nsm.nginx.com/ignore-incoming-ports': '5432, 8887 ,6379',
      'config.nsm.nginx.com/ignore-outgoing-ports': ' 1433,1434 ',
      'config.nsm.nginx.com/mtls-mode': 'Strict',
      'config.nsm.nginx.com/client-max-body-size': '10m',
      'config.nsm.nginx.com/default-egress-allowed': 'true',
    },
  },
  spec: { containers: [{ name: 'db-client', image: 'client:1', ports: [{ containerPort: 80 }] }] },
};

const cases: ReadonlyArray<[string, PodTemplate, PodOwner, InjectionSettings]> = [
  ['plain-pod', plainPod, deployment, settings],
  ['plain-pod-native', plainPod, deployment, native],
  ['bare-pod-owner', { spec: { containers: [{ name: 'c', image: 'c' }] } }, { kind: 'Pod', name: 'one' }, settings],
  ['named-port-probes', probedPod, deployment, settings],
  ['named-port-probes-native', probedPod, deployment, native],
  ['init-containers-classic', withInitContainers, { kind: 'statefulset', name: 'web' }, settings],
  ['init-containers-native', withInitContainers, { kind: 'statefulset', name: 'web' }, native],
  ['annotations', annotatedPod, { kind: 'job', name: 'report' }, settings],
  [
    'annotations-with-matching-flags',
    annotatedPod,
    { kind: 'job', name: 'report' },
    { ...settings, ignoreIncomingPorts: [6379, 5432, 8887], ignoreOutgoingPorts: [1434, 1433] },
  ],
  [
    'flags-only',
    plainPod,
    deployment,
    { ...settings, ignoreIncomingPorts: [9090, 9090], ignoreOutgoingPorts: [53] },
  ],
  [
    'registry-key',
    { spec: { containers: [{ name: 'c', image: 'c' }], imagePullSecrets: [{ name: 'mine' }] } },
    deployment,
    { ...settings, registryKeyName: 'nginx-mesh-registry-key' },
  ],
  [
    'registry-key-already-listed',
    {
      spec: {
        containers: [{ name: 'c', image: 'c' }],
        imagePullSecrets: [{ name: 'nginx-mesh-registry-key' }],
      },
    },
    deployment,
    { ...settings, registryKeyName: 'nginx-mesh-registry-key' },
  ],
  ['enable-udp', plainPod, deployment, { ...settings, enableUdp: true, imagePullPolicy: 'Always' }],
  [
    'bad-annotation-values-warn',
    {
      metadata: {
        annotations: {
          'config.nsm.nginx.com/mtls-mode': 'sometimes',
          'config.nsm.nginx.com/client-max-body-size': '10 MB',
          'config.nsm.nginx.com/default-egress-allowed': 'yes',
        },
      },
      spec: { containers: [{ name: 'c', image: 'c' }] },
    },
    deployment,
    settings,
  ],
];

describe('injectPodTemplate', () => {
  it.each(cases)('injects %s as its golden file shows', (name, template, owner, config) => {
    const outcome = injectPodTemplate(template, owner, config, `${owner.kind}/${owner.name}`);
    expect(outcome.status).toBe('injected');
    expectGolden(`inject-pod/${name}.json`, `${JSON.stringify(outcome, null, 2)}\n`);
  });
});
