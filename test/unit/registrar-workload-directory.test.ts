// The registrar's two questions to the API server over the mesh's client: the TokenReview it
// sends and what it reads from the answer, the pod read, and the answers that are no pod.
import { IDENTITY_TOKEN_AUDIENCE } from '../../src/manifests/constants';
import { KubeApiError } from '../../src/runtime/kube/client';
import { kubeWorkloadDirectory } from '../../src/runtime/registrar/kube-registrar-api';
import { kubeScripted, okJson, statusAnswer } from '../support/fake-kube';
import { injectedPod, injectedPodFacts, WEB } from '../support/registrar-pods';

describe('kubeWorkloadDirectory', () => {
  it('reviews the token for the audience asked and returns the status it was given', async () => {
    const { connection, requests } = kubeScripted(() =>
      okJson({
        status: {
          authenticated: true,
          user: {
            username: 'system:serviceaccount:app:web',
            extra: { 'authentication.kubernetes.io/pod-name': ['web-1'] },
          },
          audiences: [IDENTITY_TOKEN_AUDIENCE],
        },
      }),
    );
    const review = await kubeWorkloadDirectory(connection).reviewToken(
      'tok',
      IDENTITY_TOKEN_AUDIENCE,
    );
    expect(requests).toEqual([
      {
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/tokenreviews',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token: 'tok', audiences: [IDENTITY_TOKEN_AUDIENCE] },
        },
      },
    ]);
    expect(review).toEqual({
      authenticated: true,
      username: 'system:serviceaccount:app:web',
      extra: { 'authentication.kubernetes.io/pod-name': ['web-1'] },
      audiences: [IDENTITY_TOKEN_AUDIENCE],
      error: '',
    });
  });

  it('reads an unauthenticated review as not authenticated, with its error', async () => {
    const { connection } = kubeScripted(() =>
      okJson({ status: { authenticated: false, error: 'token has expired' } }),
    );
    await expect(
      kubeWorkloadDirectory(connection).reviewToken('tok', IDENTITY_TOKEN_AUDIENCE),
    ).resolves.toEqual({
      authenticated: false,
      username: '',
      extra: {},
      audiences: [],
      error: 'token has expired',
    });
  });

  it('reads the pod the token is bound to as the registrar sees pods', async () => {
    const { connection, requests } = kubeScripted(() => okJson(injectedPod(WEB)));
    const pod = await kubeWorkloadDirectory(connection).readPod(WEB.namespace, WEB.name);
    expect(requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      'GET /api/v1/namespaces/app/pods/web-1',
    ]);
    expect(pod).toEqual(injectedPodFacts(WEB));
  });

  it('answers undefined for a pod that does not exist', async () => {
    const { connection } = kubeScripted(() =>
      statusAnswer(404, 'NotFound', 'pods "web-1" not found'),
    );
    await expect(
      kubeWorkloadDirectory(connection).readPod('app', 'web-1'),
    ).resolves.toBeUndefined();
  });

  it('throws the API server’s refusal with its message', async () => {
    const { connection } = kubeScripted(() =>
      statusAnswer(403, 'Forbidden', 'tokenreviews.authentication.k8s.io is forbidden'),
    );
    const review = kubeWorkloadDirectory(connection).reviewToken('tok', IDENTITY_TOKEN_AUDIENCE);
    await expect(review).rejects.toBeInstanceOf(KubeApiError);
    await expect(review).rejects.toThrow('tokenreviews.authentication.k8s.io is forbidden');
  });
});
