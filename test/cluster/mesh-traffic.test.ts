// Injected workloads on the test cluster's node: the init container redirects the pod's traffic,
// the agent runs nginx as a transparent proxy, rewritten probes reach the app through it, and an
// injected Job talks to an injected service through both proxies and completes.
import { injectPodTemplate } from '../../src/manifests/inject/inject-pod';
import type { InjectionSettings, PodTemplate } from '../../src/manifests/inject/types';
import type { KubeRest } from './harness/kube-rest';
import { isReady, listPods, useTestNamespace, waitFor } from './support/kube';
import {
  CLIENT_IMAGE,
  ECHO_SERVER_IMAGE,
  INIT_IMAGE_REF,
  SIDECAR_IMAGE_REF,
} from '../support/images';

const namespace = 'mesh-traffic';
let rest: KubeRest;

const settings: InjectionSettings = {
  meshNamespace: 'nginx-mesh',
  sidecarImage: SIDECAR_IMAGE_REF,
  initImage: INIT_IMAGE_REF,
  imagePullPolicy: 'IfNotPresent',
  mtlsMode: 'permissive',
  enableUdp: false,
  nativeSidecar: true,
};

function inject(template: PodTemplate, kind: string, name: string): PodTemplate {
  const outcome = injectPodTemplate(template, { kind, name }, settings, name);
  if (outcome.status !== 'injected') throw new Error(`${name} was not injected: ${outcome.reason}`);
  return outcome.template;
}

const client = useTestNamespace(namespace);

beforeAll(() => {
  rest = client();
});

describe('injected workloads', () => {
  it('become Ready through the proxy, with probes rewritten to the sidecar', async () => {
    const template = inject(
      {
        metadata: { labels: { app: 'echo' } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'echo',
              image: ECHO_SERVER_IMAGE,
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            },
          ],
        },
      },
      'deployment',
      'echo',
    );
    await rest.request('POST', `/apis/apps/v1/namespaces/${namespace}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'echo' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'echo' } }, template },
    });
    await rest.request('POST', `/api/v1/namespaces/${namespace}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo' },
      spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 'http' }] },
    });
    const pod = await waitFor('the injected echo pod to be Ready', async () => {
      const [item] = await listPods(rest, namespace, 'app=echo');
      return item !== undefined && isReady(item) ? item : undefined;
    });
    expect(pod.status?.phase).toBe('Running');
  });

  it('runs an injected Job to completion after talking to the service through both proxies', async () => {
    // Through the inbound proxy the app sees the connection coming from its own pod, not from
    // the client: the client checks that the answer did not come straight to it.
    const script = [
      'set -e',
      'exec 3<>/dev/tcp/$ECHO_SERVICE_HOST/$ECHO_SERVICE_PORT',
      'printf "GET /through-the-mesh HTTP/1.0\\r\\n\\r\\n" >&3',
      'answer=$(cat <&3)',
      'echo "$answer"',
      'echo "$answer" | grep -q "^HTTP/1.[01] 200"',
      'echo "$answer" | grep -q "\\"path\\":\\"/through-the-mesh\\""',
      '! echo "$answer" | grep -q "\\"remote\\":\\"$POD_IP\\""',
    ].join('\n');
    const template = inject(
      {
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'client',
              image: CLIENT_IMAGE,
              command: ['bash', '-c', script],
              env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            },
          ],
        },
      },
      'job',
      'client',
    );
    await rest.request('POST', `/apis/batch/v1/namespaces/${namespace}/jobs`, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'client' },
      spec: { backoffLimit: 0, template },
    });
    const outcome = await waitFor('the injected Job to finish', async () => {
      const job = await rest.request<{
        status?: { conditions?: { type: string; status: string }[] };
      }>('GET', `/apis/batch/v1/namespaces/${namespace}/jobs/client`);
      return job.status?.conditions?.find(
        (c) => c.status === 'True' && ['Complete', 'Failed'].includes(c.type),
      )?.type;
    });
    expect(outcome).toBe('Complete');
  });
});
