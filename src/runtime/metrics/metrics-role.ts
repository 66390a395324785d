// `run --role metrics`: SMI Traffic Metrics (metrics.smi-spec.io/v1alpha1) as an aggregated API,
// computed from the sidecars' metrics in Prometheus. Only the flags live here; the work loads
// when the role starts.
import {
  DEFAULT_MESH_NAMESPACE,
  METRICS_API_PORT,
  METRICS_API_SERVICE_NAME,
} from '../../manifests/constants';
import { clusterRoleFlag } from '../kube/owner';
import type { RoleDefinition } from '../role/role';
import { METRICS_RBAC_NAME } from '../../manifests/install/rbac';

export const metricsRole: RoleDefinition = {
  name: 'metrics',
  description: `serves SMI Traffic Metrics (APIService ${METRICS_API_SERVICE_NAME}) from Prometheus`,
  flags: [
    {
      long: 'prometheus-address',
      type: 'string',
      usage:
        'Prometheus server: <service-name>.<namespace>:<port> or an http(s) URL; empty answers every query 503',
    },
    {
      long: 'mesh-namespace',
      type: 'string',
      usage: 'namespace of the control plane',
      defaultValue: DEFAULT_MESH_NAMESPACE,
    },
    clusterRoleFlag(METRICS_RBAC_NAME),
    {
      long: 'api-bind-address',
      type: 'string',
      usage: 'address of the Traffic Metrics API (HTTPS)',
      defaultValue: `:${METRICS_API_PORT}`,
    },
  ],
  start: async (context) => (await import('./start-metrics')).startMetrics(context),
};
