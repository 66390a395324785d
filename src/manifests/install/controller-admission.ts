// The controller runs an ingress gateway for each Gateway of the mesh's GatewayClass, in the
// Gateway's namespace, so its ClusterRole grants creating and patching Secrets, ServiceAccounts,
// Services and Deployments everywhere: RBAC cannot narrow create by name, nor patch to names
// unknown at install time. This ValidatingAdmissionPolicy does what RBAC cannot: outside the mesh
// namespace, every such object the controller's ServiceAccount creates or updates must be a
// gateway's (manifests/gateway/workload.ts): named "<gateway>-nginx-mesh", labelled with its
// Gateway, and controlled by that Gateway alone. So the account can neither overwrite a user's
// Secret, Service or Deployment nor plant one of its own elsewhere. (admissionregistration.k8s.io/v1:
// Kubernetes 1.30 or newer.) Pure.
import { CONTROLLER_NAME } from '../constants';
import { GATEWAY_MANAGED_LABEL } from '../gateway/workload';
import type { Labels, Manifest } from './objects';
import { meta } from './objects';
import { CONTROLLER_RBAC_NAME } from './rbac';

const ADMISSION = 'admissionregistration.k8s.io/v1';

/** The policy and its binding; the binding denies, and a policy that cannot be evaluated fails. */
export function buildControllerAdmission(namespace: string, labels: Labels): Manifest[] {
  const user = `system:serviceaccount:${namespace}:${CONTROLLER_NAME}`;
  const label = `object.metadata.labels['${GATEWAY_MANAGED_LABEL}']`;
  return [
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicy',
      metadata: meta(CONTROLLER_RBAC_NAME, undefined, labels),
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['secrets', 'serviceaccounts', 'services'],
            },
            {
              apiGroups: ['apps'],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['deployments'],
            },
          ],
        },
        // Only the controller's requests outside its own namespace are judged.
        matchConditions: [
          { name: 'controller', expression: `request.userInfo.username == '${user}'` },
          { name: 'outside-mesh-namespace', expression: `request.namespace != '${namespace}'` },
        ],
        validations: [
          {
            // The name is "<gateway>-nginx-mesh", or for a long Gateway name its first
            // characters, a hash and the suffix (gatewayObjectName).
            expression: `has(object.metadata.labels) && '${GATEWAY_MANAGED_LABEL}' in object.metadata.labels && (object.metadata.name == ${label} + '-nginx-mesh' || size(${label}) > 52 && object.metadata.name.startsWith(${label}.substring(0, 40)) && object.metadata.name.endsWith('-nginx-mesh'))`,
            message: `${CONTROLLER_NAME} may write only a gateway's objects, named after their Gateway and labelled ${GATEWAY_MANAGED_LABEL}`,
          },
          {
            expression: `has(object.metadata.ownerReferences) && size(object.metadata.ownerReferences) == 1 && object.metadata.ownerReferences.all(owner, owner.apiVersion == 'gateway.networking.k8s.io/v1' && owner.kind == 'Gateway' && owner.name == ${label} && has(owner.controller) && owner.controller)`,
            message: `a gateway's objects from ${CONTROLLER_NAME} must be controlled by their Gateway alone`,
          },
        ],
      },
    },
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: meta(CONTROLLER_RBAC_NAME, undefined, labels),
      spec: { policyName: CONTROLLER_RBAC_NAME, validationActions: ['Deny'] },
    },
  ];
}
