// CircuitBreaker (specs.smi.nginx.com/v1alpha1), resolved. It becomes max_fails/fail_timeout on
// the guarded Service's servers and a `backup` server for the fallback. Decisions:
// - The destination is a Service that exists in the CircuitBreaker's namespace (CrossNamespace
//   otherwise: every sidecar calling another namespace's Service would change for it).
// - errors and timeoutSeconds are required integers >= 0.
// - fallback.service is "<namespace>/<name>" or "<name>" (namespace "default", as NGINX Service
//   Mesh); fallback.port defaults to 80. A fallback Service that does not exist is UnknownService.
// - nginx refuses `backup` with the random methods, so a guarded Service whose effective method
//   (its annotation, else the mesh's) is random* is IncompatibleLbMethod.
// Pure.
import { countOf, keyOf, objectOf, portOf, stringOf } from './kube-objects';
import type { Json, KubeObject, ObjectRef, PolicyType } from './kube-objects';
import { PolicyProblem, quoted } from './policy-problem';
import { ownNamespace, requiredName, unsupportedKind } from './smi-policies';
import type { SnapshotCircuitBreaker, SnapshotMesh, SnapshotService } from './types';

export const CIRCUIT_BREAKER: PolicyType = {
  apiVersion: 'specs.smi.nginx.com/v1alpha1',
  kind: 'CircuitBreaker',
};

const FALLBACK_NAMESPACE = 'default';
const FALLBACK_PORT = 80;

/** A CircuitBreaker resolved; throws a PolicyProblem when it cannot be used. */
export function toCircuitBreaker(
  object: KubeObject,
  ref: ObjectRef,
  services: ReadonlyMap<string, SnapshotService>,
  mesh: SnapshotMesh,
): SnapshotCircuitBreaker {
  const spec = objectOf(object.spec);
  const destination = objectOf(spec.destination);
  if (destination.kind !== 'Service') {
    throw unsupportedKind('spec.destination.kind', destination.kind, 'Service');
  }
  const name = requiredName(destination, 'spec.destination');
  const key = ownNamespace(
    keyOf(stringOf(destination.namespace) ?? ref.namespace, name),
    ref.namespace,
    'spec.destination.namespace',
  );
  const service = services.get(key);
  if (service === undefined) {
    throw new PolicyProblem('UnknownService', `spec.destination.name "${name}": no Service ${key}`);
  }
  const lbMethod = service.lbMethod ?? mesh.lbMethod;
  if (lbMethod.startsWith('random')) {
    throw new PolicyProblem(
      'IncompatibleLbMethod',
      `spec.destination.name "${name}": Service ${key} balances with "${lbMethod}", which cannot have a fallback server; use round_robin or least_conn`,
    );
  }
  const fallback = spec.fallback === undefined ? undefined : toFallback(spec.fallback, services);
  return {
    namespace: ref.namespace,
    name: ref.name,
    service: key,
    errors: requiredCount(spec, 'errors'),
    timeoutSeconds: requiredCount(spec, 'timeoutSeconds'),
    ...(fallback === undefined ? {} : { fallback }),
  };
}

function requiredCount(spec: Json, field: 'errors' | 'timeoutSeconds'): number {
  const count = countOf(spec[field]);
  if (count === undefined) {
    throw new PolicyProblem(
      'InvalidField',
      `spec.${field} ${quoted(spec[field])}: expected an integer >= 0`,
    );
  }
  return count;
}

function toFallback(
  value: unknown,
  services: ReadonlyMap<string, SnapshotService>,
): { service: string; port: number } {
  const fallback = objectOf(value);
  const text = stringOf(fallback.service);
  if (text === undefined)
    throw new PolicyProblem('InvalidField', 'spec.fallback.service is missing');
  const slash = text.indexOf('/');
  const key = slash < 0 ? keyOf(FALLBACK_NAMESPACE, text) : text;
  if (!services.has(key)) {
    throw new PolicyProblem('UnknownService', `spec.fallback.service "${text}": no Service ${key}`);
  }
  const port = fallback.port === undefined ? FALLBACK_PORT : portOf(fallback.port);
  if (port === undefined) {
    throw new PolicyProblem(
      'InvalidField',
      `spec.fallback.port ${quoted(fallback.port)}: expected a port 1-65535`,
    );
  }
  return { service: key, port };
}
