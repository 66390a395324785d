// The leading controller's GET /sidecars (every sidecar's acknowledgements) through the API
// server's service proxy, as remove and supportpkg read it. The controller answers only with the
// token of its Secret, which these read with the user's own credentials: RBAC decides who may.
import {
  CONTROLLER_NAME,
  CONTROLLER_REPORT_SECRET_NAME,
  CONTROLLER_REPORT_TOKEN_HEADER,
  CONTROLLER_REPORT_TOKEN_KEY,
  CONTROLLER_VERSION_PORT,
} from '../../manifests/constants';
import type { RawResponse } from './access';
import type { KubeClient } from './client';

/**
 * GET /sidecars of the controller in namespace. Without the Secret (a controller from before
 * the token) the request goes without it; a Secret the user may not read throws the API
 * server's refusal, naming the Secret.
 */
export async function requestSidecarReport(
  client: KubeClient,
  namespace: string,
  timeoutMs?: number,
): Promise<RawResponse> {
  const ns = encodeURIComponent(namespace);
  const secret = await client.get<{ data?: Record<string, string> }>(
    `/api/v1/namespaces/${ns}/secrets/${CONTROLLER_REPORT_SECRET_NAME}`,
  );
  const data = secret?.data?.[CONTROLLER_REPORT_TOKEN_KEY];
  const token = data === undefined ? '' : Buffer.from(data, 'base64').toString('utf8');
  return client.connection.request({
    method: 'GET',
    path: `/api/v1/namespaces/${ns}/services/${CONTROLLER_NAME}:${CONTROLLER_VERSION_PORT}/proxy/sidecars`,
    ...(token === '' ? {} : { headers: { [CONTROLLER_REPORT_TOKEN_HEADER]: token } }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}
