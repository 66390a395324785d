// The demo's sample application: two HTTP services of the echo server, one of which fails a small
import { CLIENT_IMAGE, ECHO_SERVER_IMAGE } from '../../test/support/images';
// share of its requests, and a traffic generator that calls both through its sidecar. The local
// cluster has no DNS, so the generator is given the Services' ClusterIPs once they exist.

export const DEMO_NAMESPACE = 'demo';
/** The share of the api service's requests that answer 500. */
export const API_FAIL_PERCENT = 10;
const ECHO_PORT = 8080;
/** The generator stops after this many rounds (about 3 hours at 5 rounds a second). */
const GENERATOR_ROUNDS = 50_000;

type Labels = Record<string, string>;

function echoDeployment(name: string, env: Record<string, string>): object {
  const labels: Labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: DEMO_NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'echo',
              image: ECHO_SERVER_IMAGE,
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ...Object.entries(env).map(([key, value]) => ({ name: key, value })),
              ],
              ports: [{ name: 'http', containerPort: ECHO_PORT }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
            },
          ],
        },
      },
    },
  };
}

function service(name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: DEMO_NAMESPACE },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
}

/** The namespace, labelled for injection, the two services and their Deployments. */
export function sampleServices(): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: DEMO_NAMESPACE,
        labels: { 'injector.nsm.nginx.com/auto-inject': 'enabled' },
      },
    },
    echoDeployment('web', {}),
    echoDeployment('api', { FAIL_PERCENT: String(API_FAIL_PERCENT) }),
    service('web'),
    service('api'),
  ];
}

/**
 * The traffic generator: about 5 requests a second to each service, for a bounded time. It
 * names the services as apps do, through cluster DNS: one by its full name, one by its short one.
 */
export function trafficGenerator(): object {
  const labels: Labels = { app: 'traffic' };
  const script = [
    'i=0',
    `while [ "$i" -lt ${GENERATOR_ROUNDS} ]; do`,
    `  curl -s -o /dev/null --max-time 2 http://web.${DEMO_NAMESPACE}.svc.cluster.local/`,
    '  curl -s -o /dev/null --max-time 2 http://api/',
    '  i=$((i + 1))',
    '  sleep 0.2',
    'done',
  ].join('\n');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'traffic', namespace: DEMO_NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            { name: 'generator', image: CLIENT_IMAGE, command: ['/bin/sh', '-c', script] },
          ],
        },
      },
    },
  };
}
