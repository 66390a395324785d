// What the controller runs for a Gateway of the mesh's GatewayClass: objects named after the
// Gateway and owned by it, and a pod the registrar counts as a mesh member, so the gateway gets
// the mesh identity of its own ServiceAccount.
import {
  buildGatewayCertificateSecret,
  buildGatewayDeployment,
  buildGatewayService,
  buildGatewayServiceAccount,
  gatewayObjectName,
} from '../../src/manifests/gateway/workload';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import { toPodFacts } from '../../src/manifests/registrar/pod-facts';
import { authorizeWorkload } from '../../src/manifests/registrar/svid-policy';
import { TEST_IMAGES } from '../support/registrar-pods';

const gateway = { namespace: 'edge', name: 'public', uid: 'uid-1' };
const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: TEST_IMAGES.sidecarImage,
  initImage: 'registry.example/nginx-mesh-init:1.0.0',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
  natsUrl: 'tls://198.19.0.20:4222',
  registrarUrl: 'https://198.19.0.21:8443',
};
type Json = Record<string, unknown>;

describe('the objects of a Gateway', () => {
  it('are named after the Gateway, shortened with a hash past 63 characters', () => {
    expect(gatewayObjectName('public')).toBe('public-nginx-mesh');
    const long = 'a'.repeat(60);
    const name = gatewayObjectName(long);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^a+-[0-9a-f]{8}-nginx-mesh$/);
    expect(gatewayObjectName(`${'a'.repeat(59)}b`)).not.toBe(name);
  });

  it('are owned by the Gateway, so that deleting it deletes them', () => {
    for (const object of [
      buildGatewayServiceAccount(gateway),
      buildGatewayService(gateway, [80]),
      buildGatewayDeployment(gateway, [80], settings),
      buildGatewayCertificateSecret(gateway, new Map()),
    ]) {
      expect((object.metadata as Json).ownerReferences).toEqual([
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'public',
          uid: 'uid-1',
          controller: true,
        },
      ]);
      expect((object.metadata as Json).namespace).toBe('edge');
    }
  });

  it('exposes each listener port once on a NodePort Service selecting the gateway pods', () => {
    const service = buildGatewayService(gateway, [443, 80, 443]) as {
      spec: { type: string; selector: Json; ports: { port: number; targetPort: number }[] };
    };
    expect(service.spec.type).toBe('NodePort');
    expect(service.spec.selector).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'public' });
    expect(service.spec.ports.map((port) => [port.port, port.targetPort])).toEqual([
      [80, 80],
      [443, 443],
    ]);
  });

  it('carries each listener certificate as <listener>.crt and .key', () => {
    const secret = buildGatewayCertificateSecret(
      gateway,
      new Map([['https', { certificate: 'Y2VydA==', key: 'a2V5' }]]),
    );
    expect(secret.data).toEqual({ 'https.crt': 'Y2VydA==', 'https.key': 'a2V5' });
  });

  it('runs the gateway role as the sidecar user, never injected, binding low ports unprivileged', () => {
    const deployment = buildGatewayDeployment(gateway, [80, 443], settings) as {
      spec: { template: { metadata: { labels: Json; annotations: Json }; spec: Json } };
    };
    const template = deployment.spec.template;
    expect(template.metadata.labels['injector.nsm.nginx.com/auto-inject']).toBe('disabled');
    const spec = template.spec as {
      securityContext: { sysctls: Json[] };
      containers: { args: string[]; securityContext: Json }[];
    };
    expect(spec.securityContext.sysctls).toEqual([
      { name: 'net.ipv4.ip_unprivileged_port_start', value: '0' },
    ]);
    const [container] = spec.containers;
    expect(container?.args.slice(0, 5)).toEqual([
      'run',
      '--role',
      'gateway',
      '--gateway',
      'edge/public',
    ]);
    expect(container?.securityContext).toMatchObject({ runAsUser: 2102, runAsNonRoot: true });
  });

  it('makes a pod the registrar issues an SVID for its own ServiceAccount', () => {
    const deployment = buildGatewayDeployment(gateway, [80], settings) as {
      spec: { template: { metadata: Json; spec: Json } };
    };
    const ref = {
      namespace: 'edge',
      name: 'public-nginx-mesh-abc',
      uid: 'u2',
      serviceAccount: 'public-nginx-mesh',
    };
    const pod = toPodFacts(
      {
        metadata: { ...deployment.spec.template.metadata, name: ref.name, uid: 'u2' },
        spec: deployment.spec.template.spec,
      },
      ref,
    );
    const result = authorizeWorkload(
      { namespace: 'edge', serviceAccount: 'public-nginx-mesh', podName: ref.name, podUid: 'u2' },
      pod,
      { meshNamespace: 'nginx-mesh', trustDomain: 'example.org', ...TEST_IMAGES },
    );
    expect(result).toMatchObject({ spiffeId: 'spiffe://example.org/ns/edge/sa/public-nginx-mesh' });
  });
});
