// Small builders of raw Gateway API objects (HTTPRoute, ReferenceGrant) for snapshot tests.
import type { KubeObject } from '../../src/manifests/snapshot/build';

export interface HttpRouteOptions {
  readonly parentRefs?: unknown;
  readonly rules?: unknown;
  readonly created?: string;
  readonly generation?: number;
  readonly spec?: Record<string, unknown>;
}

/** A Service parentRef as GAMMA routes write it. */
export function serviceParent(name: string, extra: Record<string, unknown> = {}): unknown {
  return { group: '', kind: 'Service', name, ...extra };
}

/** An HTTPRoute attached to Service `parent` of its namespace unless parentRefs say otherwise. */
export function httpRoute(
  namespace: string,
  name: string,
  parent: string,
  options: HttpRouteOptions = {},
): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name,
      namespace,
      generation: options.generation ?? 1,
      ...(options.created === undefined ? {} : { creationTimestamp: options.created }),
    },
    spec: {
      parentRefs: options.parentRefs ?? [serviceParent(parent)],
      ...(options.rules === undefined ? {} : { rules: options.rules }),
      ...options.spec,
    },
  };
}

/** A backendRef of a Service port. */
export function backend(name: string, port: number, extra: Record<string, unknown> = {}): unknown {
  return { name, port, ...extra };
}

/** A ReferenceGrant letting HTTPRoutes of `from` refer to Services (or the one named) of namespace. */
export function referenceGrant(
  namespace: string,
  name: string,
  from: string,
  serviceName?: string,
): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name, namespace },
    spec: {
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: from }],
      to: [
        { group: '', kind: 'Service', ...(serviceName === undefined ? {} : { name: serviceName }) },
      ],
    },
  };
}

/** A GRPCRoute: an HTTPRoute's shape with the kind changed. */
export function grpcRoute(
  namespace: string,
  name: string,
  parent: string,
  options: HttpRouteOptions = {},
): KubeObject {
  return { ...httpRoute(namespace, name, parent, options), kind: 'GRPCRoute' };
}
