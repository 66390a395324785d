// SMI Traffic Metrics (metrics.smi-spec.io/v1alpha1) as JSON, and what one request asks for. Pure.
import type { TrafficKind } from './kinds';

/** What a request to the Traffic Metrics API asks for. */
export interface TrafficQuery {
  /** list: every resource of the kind; get: one resource; edges: one resource's peers. */
  readonly scope: 'list' | 'get' | 'edges';
  readonly kind: TrafficKind;
  /** The namespace of namespaced kinds; undefined lists across all namespaces. */
  readonly namespace: string | undefined;
  /** The resource's name (get and edges); for the namespaces kind, the namespace. */
  readonly name: string | undefined;
  /** Aggregation window. */
  readonly windowMs: number;
}

/** core/v1 ObjectReference as SMI uses it; every field may be absent ({} means "all peers"). */
export interface ObjectReference {
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
}

export type EdgeDirection = 'from' | 'to';

export interface TrafficMetric {
  readonly name: string;
  readonly unit?: string;
  /** A Kubernetes quantity. */
  readonly value: string;
}

export interface TrafficMetrics {
  readonly kind: 'TrafficMetrics';
  readonly apiVersion: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly selfLink: string;
    readonly creationTimestamp: string;
  };
  readonly timestamp: string;
  readonly window: string;
  readonly resource: ObjectReference;
  readonly edge: { readonly direction: EdgeDirection; readonly resource: ObjectReference };
  readonly metrics: readonly TrafficMetric[];
}

export interface TrafficMetricsList {
  readonly kind: 'TrafficMetricsList';
  readonly apiVersion: string;
  readonly metadata: { readonly selfLink: string };
  readonly resource: ObjectReference;
  readonly items: readonly TrafficMetrics[];
}
