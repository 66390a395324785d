// Pods as the registrar sees them, made by the product's own builders: an application pod as
// the injector renders it (native or classic layout), and the control-plane pods as deploy
// renders them, each read back through toPodFacts as the registrar reads a live pod.
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import type { InjectionSettings } from '../../src/manifests/inject/types';
import { buildInstallPlan, planObjects } from '../../src/manifests/install/plan';
import { buildMeshConfig, defaultDeployInput } from '../../src/manifests/mesh-config';
import type { MeshImages } from '../../src/manifests/registrar/mesh-member';
import {
  IDENTITY_TOKEN_AUDIENCE,
  TOKEN_POD_NAME_EXTRA,
  TOKEN_POD_UID_EXTRA,
} from '../../src/manifests/constants';
import type { PodFacts } from '../../src/manifests/registrar/pod-facts';
import type { TokenReviewFacts } from '../../src/manifests/registrar/svid-policy';
import { toPodFacts } from '../../src/manifests/registrar/pod-facts';

export const TEST_IMAGES: MeshImages = {
  sidecarImage: 'registry.example/nginx-mesh-sidecar:2.0.0',
  controlPlaneImage: 'registry.example/nginx-mesh-controller:2.0.0',
};

const SETTINGS: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: TEST_IMAGES.sidecarImage,
  initImage: 'registry.example/nginx-mesh-init:2.0.0',
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
}

/** The application pod most registrar tests use: app/web-1 of ServiceAccount web. */
export const WEB: PodRef = { namespace: 'app', name: 'web-1', uid: 'u1', serviceAccount: 'web' };

/** The injected Pod object (JSON), with one app container serving on 8080. */
export function injectedPod(ref: PodRef, native = true): Record<string, unknown> {
  const outcome = injectPodTemplate(
    {
      metadata: { name: ref.name, namespace: ref.namespace, uid: ref.uid },
      spec: {
        serviceAccountName: ref.serviceAccount,
        containers: [{ name: 'app', image: 'app:1', ports: [{ containerPort: 8080 }] }],
      },
    },
    { kind: 'Pod', name: ref.name },
    { ...SETTINGS, nativeSidecar: native },
    `pod/${ref.name}`,
  );
  if (outcome.status !== 'injected') throw new Error(`not injected: ${outcome.reason}`);
  return { apiVersion: 'v1', kind: 'Pod', ...outcome.template };
}

export function injectedPodFacts(ref: PodRef, native = true): PodFacts {
  return toPodFacts(injectedPod(ref, native), ref);
}

/**
 * What the API server answers a TokenReview of a valid registrar token bound to the pod ref
 * names; changes alter it (an unauthenticated token, another audience).
 */
export function tokenReviewOf(
  ref: PodRef,
  changes: Partial<TokenReviewFacts> = {},
): TokenReviewFacts {
  return {
    authenticated: true,
    username: `system:serviceaccount:${ref.namespace}:${ref.serviceAccount}`,
    extra: {
      [TOKEN_POD_NAME_EXTRA]: [ref.name],
      [TOKEN_POD_UID_EXTRA]: [ref.uid],
    },
    audiences: [IDENTITY_TOKEN_AUDIENCE],
    error: '',
    ...changes,
  };
}

interface PodTemplate {
  readonly metadata?: Record<string, unknown>;
  readonly spec: { readonly serviceAccountName: string } & Record<string, unknown>;
}

/** The control-plane Deployments' pod templates as deploy renders them, by Deployment name. */
export function controlPlanePods(): ReadonlyMap<string, PodTemplate> {
  const outcome = buildMeshConfig(
    { ...defaultDeployInput('2.0.0'), registryServer: 'registry.example' },
    { namespace: 'nginx-mesh', files: new Map() },
  );
  if ('problems' in outcome) throw new Error(outcome.problems.join('\n'));
  const plan = buildInstallPlan(
    {
      config: outcome.config,
      version: '2.0.0',
      upstreamCa: false,
      secrets: {},
    },
    (text) => Buffer.from(text).toString('base64'),
  );
  const pods = new Map<string, PodTemplate>();
  for (const object of planObjects(plan)) {
    if (object.kind !== 'Deployment') continue;
    const template = (object as unknown as { spec: { template: PodTemplate } }).spec.template;
    pods.set(String(object.metadata.name), template);
  }
  return pods;
}

/** A control-plane Deployment's pod as a live pod in the mesh namespace. */
export function controlPlanePodFacts(deployment: string, uid = 'uid-cp'): PodFacts {
  const template = controlPlanePods().get(deployment);
  if (template === undefined) throw new Error(`no Deployment ${deployment}`);
  const name = `${deployment}-0`;
  return toPodFacts(
    { metadata: { ...template.metadata, name, namespace: 'nginx-mesh', uid }, spec: template.spec },
    { namespace: 'nginx-mesh', name },
  );
}
