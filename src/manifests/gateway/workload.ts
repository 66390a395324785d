// What the controller runs for each Gateway of the mesh's GatewayClass: a ServiceAccount (the
// gateway's own SPIFFE identity), a Secret with its listeners' certificates, a Deployment of the
// sidecar image running `run --role gateway`, and a NodePort Service in front of it. Pure.
//
// Decisions:
// - Every object is named after the Gateway (gatewayObjectName) in the Gateway's namespace and
//   is owned by it (ownerReferences with controller: true), so deleting the Gateway deletes them
//   through the garbage collector, and a user's object of the same name is never taken over
//   (the controller refuses to apply over an object another owner controls).
// - The container is named and run like an injected sidecar (uid 2102, the same environment, the
//   projected token for the registrar), so the registrar issues it an SVID for its
//   ServiceAccount; it runs the gateway role instead of the agent role. No init container: the
//   gateway proxies to its backends itself, nothing is redirected.
// - Listeners bind their own ports, so the pod lets unprivileged processes bind every port
//   (the namespaced sysctl net.ipv4.ip_unprivileged_port_start=0) instead of granting a
//   capability.
// - Certificates reach the pod as a Secret volume ("<listener>.crt", "<listener>.key"); the
//   snapshot on the bus never carries a private key.
// - The Service is of type NodePort: it has a cluster address (the Gateway's status address)
//   and a port on every node. A cloud load balancer can be put in front of it by a Service of
//   type LoadBalancer selecting the same labels.
import {
  AUTO_INJECT_DISABLED,
  AUTO_INJECT_LABEL,
  INJECTION_STATUS_ANNOTATION,
  INJECTION_STATUS_INJECTED,
  OWNER_LABEL_PREFIX,
  IDENTITY_MOUNT_PATH,
  IDENTITY_VOLUME_NAME,
  SIDECAR_CONFIG_MOUNT_PATH,
  SIDECAR_CONFIG_VOLUME_NAME,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_METRICS_PORT,
  SIDECAR_READY_PATH,
  SIDECAR_UID,
} from '../constants';
import { buildIdentityVolume } from '../identity-volume';
import { buildSidecarEnv, sidecarSecurityContext } from '../inject/containers';
import type { JsonObject } from '../inject/json';
import type { InjectionSettings } from '../inject/types';

/** The label that selects a Gateway's pods; its value is the Gateway's name. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** Marks every object the controller made for a Gateway. */
export const GATEWAY_MANAGED_LABEL = 'nsm.nginx.com/gateway';
/** Where the gateway container finds its listeners' certificates. */
export const GATEWAY_CERTIFICATE_DIR = '/var/run/secrets/nginx-mesh-gateway';
const CERTIFICATE_VOLUME_NAME = 'nginx-mesh-gateway-tls';
/** The role the gateway container runs. */
export const GATEWAY_ROLE = 'gateway';
const NAME_SUFFIX = '-nginx-mesh';
const MAX_NAME = 63;

/** The Gateway the objects belong to. */
export interface GatewayRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** FNV-1a of text, as 8 hex digits. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * The name of every object made for Gateway `name`: "<name>-nginx-mesh", shortened with a hash
 * of the name when that would pass 63 characters (a Service name's limit).
 */
export function gatewayObjectName(name: string): string {
  const full = `${name}${NAME_SUFFIX}`;
  if (full.length <= MAX_NAME) return full;
  const hash = shortHash(name);
  const head = name.slice(0, MAX_NAME - NAME_SUFFIX.length - hash.length - 1).replace(/[-.]+$/, '');
  return `${head}-${hash}${NAME_SUFFIX}`;
}

function metadata(gateway: GatewayRef, extra: JsonObject = {}): JsonObject {
  return {
    name: gatewayObjectName(gateway.name),
    namespace: gateway.namespace,
    labels: { [GATEWAY_MANAGED_LABEL]: gateway.name },
    ownerReferences: [
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        name: gateway.name,
        uid: gateway.uid,
        controller: true,
      },
    ],
    ...extra,
  };
}

export function buildGatewayServiceAccount(gateway: GatewayRef): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(gateway),
    automountServiceAccountToken: false,
  };
}

/** The Secret of the listeners' certificates: listener name → PEM certificate chain and key. */
export function buildGatewayCertificateSecret(
  gateway: GatewayRef,
  certificates: ReadonlyMap<string, { readonly certificate: string; readonly key: string }>,
): JsonObject {
  const data: Record<string, string> = {};
  for (const listener of [...certificates.keys()].sort()) {
    const pair = certificates.get(listener);
    if (pair === undefined) continue;
    data[`${listener}.crt`] = pair.certificate;
    data[`${listener}.key`] = pair.key;
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(gateway),
    type: 'Opaque',
    data,
  };
}

/** The Service in front of the gateway's pods: one port per listener port. */
export function buildGatewayService(gateway: GatewayRef, ports: readonly number[]): JsonObject {
  const unique = [...new Set(ports)].sort((a, b) => a - b);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(gateway),
    spec: {
      type: 'NodePort',
      selector: { [GATEWAY_NAME_LABEL]: gateway.name },
      ports: unique.map((port) => ({
        name: `port-${port}`,
        port,
        targetPort: port,
        protocol: 'TCP',
      })),
    },
  };
}

function gatewayArgs(gateway: GatewayRef, settings: InjectionSettings): string[] {
  const args = ['run', '--role', GATEWAY_ROLE];
  args.push('--gateway', `${gateway.namespace}/${gateway.name}`);
  args.push('--owner', `deployment/${gatewayObjectName(gateway.name)}`);
  args.push('--mesh-namespace', settings.meshNamespace);
  if (settings.natsUrl !== undefined) args.push('--nats-url', settings.natsUrl);
  if (settings.registrarUrl !== undefined) args.push('--registrar-url', settings.registrarUrl);
  args.push('--certificate-dir', GATEWAY_CERTIFICATE_DIR);
  return args;
}

/** The Deployment of the gateway's pods. */
export function buildGatewayDeployment(
  gateway: GatewayRef,
  ports: readonly number[],
  settings: InjectionSettings,
): JsonObject {
  const name = gatewayObjectName(gateway.name);
  // The pod carries the mesh's proxy: it is never injected again, and the controller counts it
  // among the pods whose proxies acknowledge configurations.
  const labels = {
    [GATEWAY_NAME_LABEL]: gateway.name,
    [GATEWAY_MANAGED_LABEL]: gateway.name,
    [AUTO_INJECT_LABEL]: AUTO_INJECT_DISABLED,
    // As injection labels a pod by its workload: metrics and top name the gateway's Deployment.
    [`${OWNER_LABEL_PREFIX}deployment`]: name,
  };
  const annotations = { [INJECTION_STATUS_ANNOTATION]: INJECTION_STATUS_INJECTED };
  const unique = [...new Set(ports)].sort((a, b) => a - b);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(gateway),
    spec: {
      replicas: 1,
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: gateway.name } },
      template: {
        metadata: { labels, annotations },
        spec: {
          serviceAccountName: name,
          automountServiceAccountToken: false,
          ...(settings.registryKeyName === undefined
            ? {}
            : { imagePullSecrets: [{ name: settings.registryKeyName }] }),
          securityContext: {
            // The certificate files are the group's: the container runs as that group.
            fsGroup: SIDECAR_UID,
            sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
          },
          containers: [
            {
              name: SIDECAR_CONTAINER_NAME,
              image: settings.sidecarImage,
              imagePullPolicy: settings.imagePullPolicy,
              args: gatewayArgs(gateway, settings),
              ports: [
                { name: 'metrics', containerPort: SIDECAR_METRICS_PORT },
                ...unique.map((port) => ({ name: `port-${port}`, containerPort: port })),
              ],
              env: buildSidecarEnv({ kind: 'Deployment', name }),
              volumeMounts: [
                { name: IDENTITY_VOLUME_NAME, mountPath: IDENTITY_MOUNT_PATH, readOnly: true },
                { name: SIDECAR_CONFIG_VOLUME_NAME, mountPath: SIDECAR_CONFIG_MOUNT_PATH },
                {
                  name: CERTIFICATE_VOLUME_NAME,
                  mountPath: GATEWAY_CERTIFICATE_DIR,
                  readOnly: true,
                },
              ],
              readinessProbe: {
                httpGet: { path: SIDECAR_READY_PATH, port: SIDECAR_METRICS_PORT },
                periodSeconds: 2,
              },
              securityContext: sidecarSecurityContext(),
            },
          ],
          volumes: [
            buildIdentityVolume({ withBundle: true, bundleOptional: true }),
            { name: SIDECAR_CONFIG_VOLUME_NAME, emptyDir: { medium: 'Memory' } },
            {
              name: CERTIFICATE_VOLUME_NAME,
              secret: { secretName: name, optional: true, defaultMode: 0o440 },
            },
          ],
        },
      },
    },
  };
}
