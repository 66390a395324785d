// The registrar publishes the trust bundle as ConfigMap nginx-mesh-bundle in every namespace, so
// its ClusterRole must grant `configmaps create` cluster-wide: RBAC cannot narrow create by name.
// This ValidatingAdmissionPolicy does what RBAC cannot: a ConfigMap the registrar's
// ServiceAccount creates or updates must be that one name holding only the bundle key, owned by
// nothing but the registrar's own ClusterRole, so the account cannot plant any other ConfigMap
// anywhere, nor hang one on another owner whose deletion would take it along. (admissionregistration.k8s.io/v1:
// Kubernetes 1.30 or newer.) Pure.
import { REGISTRAR_NAME, TRUST_BUNDLE_CONFIG_MAP_NAME, TRUST_BUNDLE_KEY } from '../constants';
import type { Labels, Manifest } from './objects';
import { meta } from './objects';
import { REGISTRAR_RBAC_NAME } from './rbac';

const ADMISSION = 'admissionregistration.k8s.io/v1';

/** The policy and its binding; the binding denies, and a policy that cannot be evaluated fails. */
export function buildRegistrarAdmission(namespace: string, labels: Labels): Manifest[] {
  const user = `system:serviceaccount:${namespace}:${REGISTRAR_NAME}`;
  return [
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicy',
      metadata: meta(REGISTRAR_RBAC_NAME, undefined, labels),
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [''],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['configmaps'],
            },
          ],
        },
        // Only the registrar's own requests are judged; nobody else's ConfigMaps are touched.
        matchConditions: [
          { name: 'registrar', expression: `request.userInfo.username == '${user}'` },
        ],
        validations: [
          {
            expression: `object.metadata.name == '${TRUST_BUNDLE_CONFIG_MAP_NAME}'`,
            message: `${REGISTRAR_NAME} may write only ConfigMap ${TRUST_BUNDLE_CONFIG_MAP_NAME}`,
          },
          {
            expression: `!has(object.binaryData) && (!has(object.data) || object.data.all(key, key == '${TRUST_BUNDLE_KEY}'))`,
            message: `ConfigMap ${TRUST_BUNDLE_CONFIG_MAP_NAME} from ${REGISTRAR_NAME} may hold only ${TRUST_BUNDLE_KEY}`,
          },
          {
            expression: `!has(object.metadata.ownerReferences) || object.metadata.ownerReferences.all(owner, owner.apiVersion == 'rbac.authorization.k8s.io/v1' && owner.kind == 'ClusterRole' && owner.name == '${REGISTRAR_RBAC_NAME}')`,
            message: `ConfigMap ${TRUST_BUNDLE_CONFIG_MAP_NAME} from ${REGISTRAR_NAME} may be owned only by ClusterRole ${REGISTRAR_RBAC_NAME}`,
          },
        ],
      },
    },
    {
      apiVersion: ADMISSION,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: meta(REGISTRAR_RBAC_NAME, undefined, labels),
      spec: { policyName: REGISTRAR_RBAC_NAME, validationActions: ['Deny'] },
    },
  ];
}
