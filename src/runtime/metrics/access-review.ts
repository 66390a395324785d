// Authorization of Traffic Metrics requests through the API server (SubjectAccessReview), so the
// cluster's RBAC decides who may read which metrics. Decisions are cached briefly.
import type * as K8s from '@kubernetes/client-node';
import { TRAFFIC_METRICS_GROUP, TRAFFIC_METRICS_VERSION } from '../../manifests/constants';
import type { TrafficQuery } from '../../manifests/traffic-metrics/types';
import type { RemoteUser } from './front-proxy';

/** The request as RBAC sees it (Kubernetes' RequestInfo for an aggregated API path). */
export interface ResourceAttributes {
  readonly verb: 'get' | 'list';
  readonly resource: string;
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

export interface AccessDecision {
  readonly allowed: boolean;
  readonly reason: string;
}

export interface AccessReviewer {
  review(user: RemoteUser, attributes: ResourceAttributes): Promise<AccessDecision>;
}

export function attributesOf(query: TrafficQuery): ResourceAttributes {
  const isNamespace = query.kind.plural === 'namespaces';
  return {
    verb: query.scope === 'list' ? 'list' : 'get',
    resource: query.kind.plural,
    subresource: query.scope === 'edges' ? 'edges' : undefined,
    // For the namespaces resource, Kubernetes puts the named namespace in the namespace field.
    namespace: isNamespace ? query.name : query.namespace,
    name: query.name,
  };
}

/** The API server's own wording for a denied request. */
export function forbiddenMessage(user: RemoteUser, attributes: ResourceAttributes): string {
  const resource =
    attributes.subresource === undefined
      ? attributes.resource
      : `${attributes.resource}/${attributes.subresource}`;
  const object = attributes.name === undefined ? '' : ` "${attributes.name}"`;
  const scope =
    attributes.namespace === undefined || attributes.resource === 'namespaces'
      ? 'at the cluster scope'
      : `in the namespace "${attributes.namespace}"`;
  return `${attributes.resource}.${TRAFFIC_METRICS_GROUP}${object} is forbidden: User "${user.user}" cannot ${attributes.verb} resource "${resource}" in API group "${TRAFFIC_METRICS_GROUP}" ${scope}`;
}

const ALLOWED_TTL_MS = 10_000;
const DENIED_TTL_MS = 5_000;
const MAX_CACHED = 1_000;

export function kubeAccessReviewer(
  k8s: typeof K8s,
  config: K8s.KubeConfig,
  now: () => number,
): AccessReviewer {
  const api = config.makeApiClient(k8s.AuthorizationV1Api);
  const cache = new Map<string, AccessDecision & { expires: number }>();
  return {
    async review(user, attributes) {
      const spec: K8s.V1SubjectAccessReviewSpec = {
        user: user.user,
        groups: [...user.groups],
        extra: Object.fromEntries(
          Object.entries(user.extra).map(([key, list]) => [key, [...list]]),
        ),
        resourceAttributes: {
          group: TRAFFIC_METRICS_GROUP,
          version: TRAFFIC_METRICS_VERSION,
          ...attributes,
        },
      };
      const key = JSON.stringify(spec);
      const cached = cache.get(key);
      if (cached !== undefined && cached.expires > now()) return cached;
      const answer = await api.createSubjectAccessReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
      });
      const allowed = answer.status?.allowed === true;
      const decision = { allowed, reason: answer.status?.reason ?? '' };
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, { ...decision, expires: now() + (allowed ? ALLOWED_TTL_MS : DENIED_TTL_MS) });
      return decision;
    },
  };
}
