// One request to the Traffic Metrics API, from path to answer: route, authenticate, authorize,
// query Prometheus, build the SMI object. Every failure is a Kubernetes Status naming its cause.
import { describeError } from '../../errors';
import { formatDuration } from '../../manifests/duration';
import { buildTrafficItems, buildTrafficList } from '../../manifests/traffic-metrics/build';
import type { TrafficResults } from '../../manifests/traffic-metrics/build';
import { buildTrafficQueries, TRAFFIC_METRIC_NAMES } from '../../manifests/traffic-metrics/promql';
import { buildStatus, routeTrafficRequest } from '../../manifests/traffic-metrics/routes';
import type { TrafficQuery } from '../../manifests/traffic-metrics/types';
import type { Logger } from '../role/log';
import type { AccessReviewer } from './access-review';
import { attributesOf, forbiddenMessage } from './access-review';
import type { ClientCertificate, RequestHeaderConfig } from './front-proxy';
import { authenticateRequest } from './front-proxy';
import type { PrometheusClient } from './prometheus-client';
import { PrometheusError } from './prometheus-client';

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly search: URLSearchParams;
  /** Header values by lower-case name, each header's values kept apart. */
  readonly headers: Readonly<Record<string, readonly string[] | undefined>>;
  readonly client: ClientCertificate;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface TrafficApiDeps {
  /** undefined when --prometheus-address is not set. */
  readonly prometheus: PrometheusClient | undefined;
  readonly requestHeader: RequestHeaderConfig;
  readonly reviewer: AccessReviewer;
  readonly now: () => Date;
  readonly logger: Logger;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

function failure(status: number, message: string): ApiAnswer {
  return { status, body: buildStatus(status, REASONS[status] ?? 'Unknown', message) };
}

async function queryPrometheus(
  prometheus: PrometheusClient,
  query: TrafficQuery,
  at: Date,
): Promise<{ groupBy: readonly string[]; results: TrafficResults }> {
  const { groupBy, queries } = buildTrafficQueries(query);
  const answers = await Promise.all(
    TRAFFIC_METRIC_NAMES.map((name) => prometheus.query(queries[name], at)),
  );
  const results = Object.fromEntries(
    TRAFFIC_METRIC_NAMES.map((name, index) => [name, answers[index] ?? []]),
  ) as unknown as TrafficResults;
  return { groupBy, results };
}

async function answerQuery(
  query: TrafficQuery,
  path: string,
  deps: TrafficApiDeps,
): Promise<ApiAnswer> {
  if (deps.prometheus === undefined) {
    return failure(
      503,
      'Prometheus is not configured: start the metrics role with --prometheus-address <service-name>.<namespace>:<port> or an http(s) URL',
    );
  }
  const now = deps.now();
  let answer: Awaited<ReturnType<typeof queryPrometheus>>;
  try {
    answer = await queryPrometheus(deps.prometheus, query, now);
  } catch (error) {
    deps.logger.warn('prometheus query failed', { error: describeError(error) });
    if (error instanceof PrometheusError && error.unavailable) {
      return failure(503, error.message);
    }
    return failure(500, describeError(error));
  }
  const items = buildTrafficItems(query, answer.groupBy, answer.results, now);
  if (query.scope !== 'get') return { status: 200, body: buildTrafficList(query, items, path) };
  const item = items[0];
  if (item === undefined) {
    const where = query.namespace === undefined ? '' : ` in namespace "${query.namespace}"`;
    return failure(
      404,
      `no traffic to ${query.kind.plural} "${query.name ?? ''}"${where} in the last ${formatDuration(query.windowMs)}`,
    );
  }
  return { status: 200, body: item };
}

export async function answerTrafficRequest(
  request: ApiRequest,
  deps: TrafficApiDeps,
): Promise<ApiAnswer> {
  if (request.method !== 'GET') return failure(405, `method ${request.method} is not supported`);
  const authentication = authenticateRequest(deps.requestHeader, request.client, request.headers);
  if (authentication.kind === 'rejected') return failure(401, authentication.message);
  const route = routeTrafficRequest(request.path, request.search);
  switch (route.kind) {
    case 'document':
      return { status: 200, body: route.body };
    case 'error':
      return failure(route.code, route.message);
    case 'query':
      break;
  }
  const remote = authentication.remote;
  if (remote === undefined) return failure(401, 'Unauthorized: the request names no user');
  const attributes = attributesOf(route.query);
  let allowed: boolean;
  try {
    allowed = (await deps.reviewer.review(remote, attributes)).allowed;
  } catch (error) {
    deps.logger.warn('access review failed', { error: describeError(error) });
    return failure(500, `unable to authorize the request: ${describeError(error)}`);
  }
  if (!allowed) return failure(403, forbiddenMessage(remote, attributes));
  return answerQuery(route.query, request.path, deps);
}
