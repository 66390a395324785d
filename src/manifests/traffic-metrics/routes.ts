// The Traffic Metrics API's paths (smi-metrics' and NSM's) and its discovery documents. Pure.
import {
  DEFAULT_TRAFFIC_METRICS_WINDOW_MS,
  MAX_TRAFFIC_METRICS_WINDOW_MS,
  TRAFFIC_METRICS_GROUP,
  TRAFFIC_METRICS_VERSION,
} from '../constants';
import { formatDuration, parseDuration } from '../duration';
import { TRAFFIC_TRAFFIC_METRICS_VERSION, TRAFFIC_METRICS_BASE_PATH } from './build';
import { TRAFFIC_KINDS, trafficKind } from './kinds';
import type { TrafficQuery } from './types';

export type TrafficRoute =
  | { readonly kind: 'document'; readonly body: unknown }
  | { readonly kind: 'query'; readonly query: TrafficQuery }
  | { readonly kind: 'error'; readonly code: 400 | 404; readonly message: string };

/** A Kubernetes Status object for a failed request. */
export function buildStatus(code: number, reason: string, message: string): unknown {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
}

const groupVersion = {
  groupVersion: TRAFFIC_TRAFFIC_METRICS_VERSION,
  version: TRAFFIC_METRICS_VERSION,
};

function apiGroup(): Record<string, unknown> {
  return { name: TRAFFIC_METRICS_GROUP, versions: [groupVersion], preferredVersion: groupVersion };
}

/** The APIResourceList of metrics.smi-spec.io/v1alpha1: each kind, and its edges. */
export function buildResourceList(): unknown {
  const resources = TRAFFIC_KINDS.flatMap((kind) => [
    {
      name: kind.plural,
      singularName: '',
      namespaced: kind.namespaced,
      kind: 'TrafficMetrics',
      verbs: ['get', 'list'],
    },
    {
      name: `${kind.plural}/edges`,
      singularName: '',
      namespaced: kind.namespaced,
      kind: 'TrafficMetrics',
      verbs: ['get'],
    },
  ]);
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: TRAFFIC_TRAFFIC_METRICS_VERSION,
    resources,
  };
}

/** A window's text is a few units long ("1h30m0s"); a longer one is refused unread. */
const MAX_WINDOW_TEXT = 32;

/** The window of ?t= in ms, or why it is refused (one t, 1s up to MAX_TRAFFIC_METRICS_WINDOW_MS). */
function windowOf(search: URLSearchParams): number | string {
  const given = search.getAll('t');
  if (given.length > 1) return `invalid window: parameter t is given ${given.length} times`;
  const text = given[0];
  if (text === undefined || text === '') return DEFAULT_TRAFFIC_METRICS_WINDOW_MS;
  const max = formatDuration(MAX_TRAFFIC_METRICS_WINDOW_MS);
  const shown = text.length > MAX_WINDOW_TEXT ? `${text.slice(0, MAX_WINDOW_TEXT)}…` : text;
  const ms = text.length > MAX_WINDOW_TEXT ? undefined : parseDuration(text);
  if (ms === undefined || ms < 1_000 || ms > MAX_TRAFFIC_METRICS_WINDOW_MS)
    return `invalid window t="${shown}": expected a duration from 1s to ${max}, such as 30s or 5m`;
  return ms;
}

/** Namespaces are DNS labels; the workloads' and pods' names DNS subdomains. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why the query's namespace or name cannot name a Kubernetes object, or undefined. */
function invalidName(query: Omit<TrafficQuery, 'windowMs'>): string | undefined {
  const shown = (value: string): string => (value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (query.namespace !== undefined && !DNS_LABEL.test(query.namespace))
    return `invalid namespace "${shown(query.namespace)}": expected a DNS label of at most 63 characters`;
  if (query.name === undefined) return undefined;
  const isNamespace = query.kind.plural === 'namespaces';
  if (isNamespace ? DNS_LABEL.test(query.name) : DNS_SUBDOMAIN.test(query.name)) return undefined;
  return `invalid ${isNamespace ? 'namespace' : `${query.kind.kind} name`} "${shown(query.name)}": expected a DNS ${isNamespace ? 'label of at most 63' : 'subdomain of at most 253'} characters`;
}

type Scope = TrafficQuery['scope'];

function toQuery(segments: readonly string[]): Omit<TrafficQuery, 'windowMs'> | string {
  const [first, second, third, fourth, fifth] = segments;
  const namespaces = trafficKind('namespaces');
  if (first === undefined || namespaces === undefined) return 'not found';
  const query = (
    plural: string,
    scope: Scope,
    namespace?: string,
    name?: string,
  ): Omit<TrafficQuery, 'windowMs'> | string => {
    const kind = trafficKind(plural);
    if (kind === undefined) return `Unsupported resource: ${plural}`;
    return { scope, kind, namespace, name };
  };
  if (first !== 'namespaces') return segments.length === 1 ? query(first, 'list') : 'not found';
  if (second === undefined) return query('namespaces', 'list');
  if (third === undefined) return query('namespaces', 'get', undefined, second);
  if (third === 'edges' && fourth === undefined)
    return query('namespaces', 'edges', undefined, second);
  if (third === 'namespaces') return `Unsupported resource: namespaces/${second}/namespaces`;
  if (fourth === undefined) return query(third, 'list', second);
  if (fifth === undefined) return query(third, 'get', second, fourth);
  if (fifth === 'edges' && segments.length === 5) return query(third, 'edges', second, fourth);
  return 'not found';
}

function decodeSegments(rest: string): string[] | undefined {
  try {
    return rest.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Routes a GET of path (without the query string) with its query parameters. */
export function routeTrafficRequest(path: string, search: URLSearchParams): TrafficRoute {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '/apis')
    return {
      kind: 'document',
      body: { kind: 'APIGroupList', apiVersion: 'v1', groups: [apiGroup()] },
    };
  if (trimmed === `/apis/${TRAFFIC_METRICS_GROUP}`)
    return { kind: 'document', body: { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup() } };
  if (trimmed === TRAFFIC_METRICS_BASE_PATH) return { kind: 'document', body: buildResourceList() };
  if (!trimmed.startsWith(`${TRAFFIC_METRICS_BASE_PATH}/`))
    return {
      kind: 'error',
      code: 404,
      message: `the server could not find the requested resource ${path}`,
    };
  const segments = decodeSegments(trimmed.slice(TRAFFIC_METRICS_BASE_PATH.length + 1));
  if (segments === undefined) {
    return { kind: 'error', code: 400, message: `malformed path ${path}` };
  }
  const query = toQuery(segments);
  if (typeof query === 'string')
    return {
      kind: 'error',
      code: 404,
      message:
        query === 'not found' ? `the server could not find the requested resource ${path}` : query,
    };
  const badName = invalidName(query);
  if (badName !== undefined) return { kind: 'error', code: 400, message: badName };
  const windowMs = windowOf(search);
  if (typeof windowMs === 'string') return { kind: 'error', code: 400, message: windowMs };
  return { kind: 'query', query: { ...query, windowMs } };
}
