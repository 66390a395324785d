// The injection webhook's decision for one AdmissionReview (admission.k8s.io/v1), as data: the
// same injection function as `inject`, answered as a JSON Patch. Pure.
import { describeError } from '../errors';
import { createJsonPatch } from './json-patch';
import { InjectionError } from './inject/types';
import type { InjectionOutcome, InjectionSettings, PodOwner, PodTemplate } from './inject/types';

export type InjectPodTemplate = (
  template: PodTemplate,
  owner: PodOwner,
  settings: InjectionSettings,
  objectName: string,
) => InjectionOutcome;

export type AdmissionDecision =
  | { readonly kind: 'review'; readonly review: Record<string, unknown>; readonly summary: string }
  | { readonly kind: 'bad-request'; readonly reason: string };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The workload that owns the pod, as NSM labels it. Pods of a Deployment are owned by a
 * ReplicaSet named "<deployment>-<pod-template-hash>", which names the Deployment.
 */
export function podOwner(pod: Json): PodOwner {
  const metadata = isObject(pod.metadata) ? pod.metadata : {};
  const references = Array.isArray(metadata.ownerReferences) ? metadata.ownerReferences : [];
  const controller = references.find(
    (reference) => isObject(reference) && reference.controller === true,
  ) as Json | undefined;
  if (controller === undefined)
    return { kind: 'pod', name: text(metadata.name) || text(metadata.generateName) };
  const kind = text(controller.kind).toLowerCase();
  const name = text(controller.name);
  const labels = isObject(metadata.labels) ? metadata.labels : {};
  const hash = text(labels['pod-template-hash']);
  if (kind === 'replicaset' && hash !== '' && name.endsWith(`-${hash}`)) {
    return { kind: 'deployment', name: name.slice(0, -hash.length - 1) };
  }
  return { kind, name };
}

function response(uid: string, fields: Json): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: true, ...fields },
  };
}

function parseRequest(body: unknown): { uid: string; namespace: string; pod: Json } | string {
  if (!isObject(body)) return 'the request body is not a JSON object';
  if (body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview') {
    return `expected an admission.k8s.io/v1 AdmissionReview, got ${text(body.apiVersion) || '?'} ${text(body.kind) || '?'}`;
  }
  const request = body.request;
  if (!isObject(request)) return 'the AdmissionReview has no request';
  const uid = text(request.uid);
  if (uid === '') return 'the AdmissionReview request has no uid';
  const kind = isObject(request.kind) ? text(request.kind.kind) : '';
  if (kind !== 'Pod') return `the webhook admits Pods, not ${kind || 'an unknown kind'}`;
  if (!isObject(request.object)) return 'the AdmissionReview request has no object';
  return { uid, namespace: text(request.namespace), pod: request.object };
}

/** Decides one review: a patch that injects the pod, no patch, or a denial naming the problem. */
export function reviewPodAdmission(
  body: unknown,
  settings: InjectionSettings,
  inject: InjectPodTemplate,
): AdmissionDecision {
  const request = parseRequest(body);
  if (typeof request === 'string') return { kind: 'bad-request', reason: request };
  const { uid, namespace, pod } = request;
  const owner = podOwner(pod);
  const objectName = `${namespace === '' ? '' : `${namespace}/`}${owner.kind}/${owner.name}`;
  let outcome: InjectionOutcome;
  try {
    outcome = inject(
      { metadata: pod.metadata as Json | undefined, spec: pod.spec as Json | undefined },
      owner,
      settings,
      owner.name,
    );
  } catch (error) {
    if (!(error instanceof InjectionError)) throw error;
    return {
      kind: 'review',
      review: response(uid, {
        allowed: false,
        status: { code: 400, reason: 'BadRequest', message: describeError(error) },
      }),
      summary: `denied ${objectName}: ${describeError(error)}`,
    };
  }
  if (outcome.status !== 'injected') {
    const warnings = outcome.status === 'skipped' ? [`not injected: ${outcome.reason}`] : [];
    return {
      kind: 'review',
      review: response(uid, warnings.length === 0 ? {} : { warnings }),
      summary: `${outcome.status} ${objectName}: ${outcome.reason}`,
    };
  }
  const patch = createJsonPatch(pod, {
    ...pod,
    metadata: outcome.template.metadata,
    spec: outcome.template.spec,
  });
  return {
    kind: 'review',
    review: response(uid, {
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      ...(outcome.warnings.length === 0 ? {} : { warnings: outcome.warnings }),
    }),
    summary: `injected ${objectName}`,
  };
}
