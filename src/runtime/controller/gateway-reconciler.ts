// The controller's side of ingress: for every Gateway of the mesh's GatewayClass it keeps the
// gateway's objects applied (manifests/gateway/workload.ts: ServiceAccount, certificate Secret,
// Deployment, Service; all owned by the Gateway, so the garbage collector removes them with it),
// and it writes what the snapshot builder decided into the status of each GatewayClass and
// Gateway, adding what only the cluster knows: the Gateway is Programmed once a gateway pod is
// ready behind its Service, whose cluster address is the Gateway's address.
//
// Writes are server-side applies and status patches made only when something changed since the
// last write (a snapshot is rebuilt on every cluster change); a status patch carries the object's
// resourceVersion, so another writer's newer status is never overwritten unseen. Failures are
// logged and tried again on the next report. An object of a gateway's name that the Gateway does
// not own is never taken over: the Gateway stays not Programmed and says why.
import {
  buildGatewayCertificateSecret,
  buildGatewayDeployment,
  buildGatewayService,
  buildGatewayServiceAccount,
  gatewayObjectName,
} from '../../manifests/gateway/workload';
import type { GatewayRef } from '../../manifests/gateway/workload';
import type { InjectionSettings } from '../../manifests/inject/types';
import { objectPath } from '../../manifests/install/resources';
import { objectOf } from '../../manifests/snapshot/kube-objects';
import type {
  GatewayClassStatus,
  GatewayCondition,
  GatewayStatus,
  SnapshotGateway,
} from '../../manifests/snapshot/types';
import type { Clock } from '../clock';
import type { KubeClient } from '../kube/client';
import { isNotFound } from '../kube/client';
import type { Logger } from '../role/log';
import { canonical } from './route-status';

type Json = Readonly<Record<string, unknown>>;

/** The field manager of the gateway objects' server-side applies. */
const FIELD_MANAGER = 'nginx-mesh-gateway';
/**
 * An object applied this long ago is applied again even if unchanged here: one deleted or edited
 * by hand comes back without a human.
 */
const REAPPLY_MS = 60_000;

export interface GatewayReport {
  readonly gateways: Readonly<Record<string, SnapshotGateway>>;
  readonly gatewayStatuses: readonly GatewayStatus[];
  readonly gatewayClassStatuses: readonly GatewayClassStatus[];
  /** Which Secret ("<namespace>/<name>") holds each served HTTPS listener's certificate. */
  readonly gatewayCertificates: readonly {
    readonly gateway: string;
    readonly listener: string;
    readonly secret: string;
  }[];
}

/** The raw objects the report reads besides the snapshot's decisions. */
export interface GatewayObjects {
  readonly gateways: readonly Json[];
  readonly gatewayClasses: readonly Json[];
  readonly tlsSecrets: readonly Json[];
  readonly services: readonly Json[];
  readonly endpointSlices: readonly Json[];
}

export interface GatewayReconcilerOptions {
  readonly client: KubeClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** What the gateway pods run (the sidecar image and where NATS and the registrar are). */
  readonly settings: InjectionSettings;
}

export interface GatewayReconciler {
  /** Applies the gateways' objects and writes the statuses; never throws. */
  report(report: GatewayReport, objects: GatewayObjects): Promise<void>;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

const keyOf = (object: Json): string => {
  const metadata = objectOf(object.metadata);
  return `${text(metadata.namespace)}/${text(metadata.name)}`;
};

/**
 * Conditions as metav1.Condition wants them: a condition keeps its lastTransitionTime while its
 * status holds.
 */
export function stampConditions(
  wanted: readonly GatewayCondition[],
  current: unknown,
  generation: number,
  now: string,
): Json[] {
  const before = Array.isArray(current) ? current.map((each) => objectOf(each)) : [];
  return wanted.map((condition) => {
    const old = before.find((each) => each.type === condition.type);
    const kept = old?.status === condition.status ? text(old.lastTransitionTime) : '';
    return {
      type: condition.type,
      status: condition.status,
      reason: condition.reason,
      message: condition.message,
      observedGeneration: generation,
      lastTransitionTime: kept === '' ? now : kept,
    };
  });
}

/** A status without its times, to tell whether a write would change anything. */
function withoutTimes(value: unknown): string {
  const strip = (each: unknown): unknown => {
    if (Array.isArray(each)) return each.map(strip);
    if (typeof each === 'object' && each !== null) {
      return Object.fromEntries(
        Object.entries(each as Json)
          .filter(([key]) => key !== 'lastTransitionTime')
          .map(([key, inner]) => [key, strip(inner)]),
      );
    }
    return each;
  };
  return canonical(strip(value));
}

/** The gateway Service's cluster address and whether a ready pod stands behind it. */
function serving(
  namespace: string,
  name: string,
  objects: GatewayObjects,
): { address?: string; ready: boolean } {
  const service = objects.services.find((each) => keyOf(each) === `${namespace}/${name}`);
  const clusterIP = text(objectOf(service?.spec).clusterIP);
  const ready = objects.endpointSlices.some((slice) => {
    const metadata = objectOf(slice.metadata);
    if (text(metadata.namespace) !== namespace) return false;
    if (objectOf(metadata.labels)['kubernetes.io/service-name'] !== name) return false;
    const endpoints = Array.isArray(slice.endpoints) ? slice.endpoints : [];
    return endpoints.some((endpoint) => objectOf(objectOf(endpoint).conditions).ready === true);
  });
  return { ...(clusterIP === '' || clusterIP === 'None' ? {} : { address: clusterIP }), ready };
}

/** A Secret's data entry, base64 as the API gives it (and as a Secret's data takes it). */
function dataOf(secret: Json | undefined, key: string): string {
  return text(objectOf(secret?.data)[key]);
}

export function createGatewayReconciler(options: GatewayReconcilerOptions): GatewayReconciler {
  const { client, logger } = options;
  /** Object path → what was applied there last (canonical JSON), and when. */
  const applied = new Map<string, { readonly object: string; readonly atMs: number }>();
  /** Object path → the status written last, without times, over which resourceVersion. */
  const written = new Map<string, string>();
  /** Gateways whose objects another owner holds: path of the object in the way. */
  const blocked = new Map<string, string>();

  const applyOnce = async (gateway: GatewayRef, object: Json): Promise<void> => {
    const metadata = objectOf(object.metadata);
    const path = objectPath({
      apiVersion: text(object.apiVersion),
      kind: text(object.kind),
      namespace: text(metadata.namespace),
      name: text(metadata.name),
    });
    const wanted = canonical(object);
    const nowMs = options.clock.now().getTime();
    const last = applied.get(path);
    if (last?.object === wanted && nowMs - last.atMs < REAPPLY_MS) return;
    if (!applied.has(path)) {
      // First write from this controller: never take over what the Gateway does not own.
      const existing = await client.get<Json>(path);
      if (existing !== undefined) {
        const owners = objectOf(existing.metadata).ownerReferences;
        const owned =
          Array.isArray(owners) && owners.some((owner) => objectOf(owner).uid === gateway.uid);
        if (!owned) {
          blocked.set(`${gateway.namespace}/${gateway.name}`, path);
          throw new Error(`${path} exists and is not owned by the Gateway`);
        }
      }
    }
    await client.apply(path, object, FIELD_MANAGER);
    applied.set(path, { object: wanted, atMs: nowMs });
  };

  const applyGateway = async (
    gateway: GatewayRef,
    served: SnapshotGateway | undefined,
    certificates: ReadonlyMap<string, { certificate: string; key: string }>,
  ): Promise<void> => {
    const ports = (served?.listeners ?? []).map((listener) => listener.port);
    blocked.delete(`${gateway.namespace}/${gateway.name}`);
    await applyOnce(gateway, buildGatewayServiceAccount(gateway));
    await applyOnce(gateway, buildGatewayCertificateSecret(gateway, certificates));
    if (ports.length > 0) await applyOnce(gateway, buildGatewayService(gateway, ports));
    await applyOnce(gateway, buildGatewayDeployment(gateway, ports, options.settings));
  };

  const patchStatus = async (object: Json, status: Json): Promise<void> => {
    const metadata = objectOf(object.metadata);
    const path = `${objectPath({
      apiVersion: text(object.apiVersion),
      kind: text(object.kind),
      ...(text(metadata.namespace) === '' ? {} : { namespace: text(metadata.namespace) }),
      name: text(metadata.name),
    })}/status`;
    if (withoutTimes(status) === withoutTimes(objectOf(object.status))) return;
    const stamp = `${text(metadata.resourceVersion)}/${withoutTimes(status)}`;
    if (written.get(path) === stamp) return;
    await client.mergePatch(path, {
      metadata: { resourceVersion: text(metadata.resourceVersion) },
      status,
    });
    written.set(path, stamp);
  };

  const gatewayStatus = (
    wanted: GatewayStatus,
    object: Json,
    objects: GatewayObjects,
    now: string,
  ): Json => {
    const current = objectOf(object.status);
    const name = gatewayObjectName(wanted.name);
    const { address, ready } = serving(wanted.namespace, name, objects);
    const hindrance = blocked.get(`${wanted.namespace}/${wanted.name}`);
    const accepted = wanted.conditions.find((each) => each.type === 'Accepted');
    const programmed: GatewayCondition =
      accepted?.status !== 'True'
        ? { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'not accepted' }
        : hindrance !== undefined
          ? {
              type: 'Programmed',
              status: 'False',
              reason: 'Invalid',
              message: `${hindrance} exists and is not the Gateway's`,
            }
          : address !== undefined && ready
            ? {
                type: 'Programmed',
                status: 'True',
                reason: 'Programmed',
                message: `served by Deployment ${name} behind Service ${name}`,
              }
            : {
                type: 'Programmed',
                status: 'False',
                reason: 'Pending',
                message: `waiting for a ready pod of Deployment ${name} behind Service ${name}`,
              };
    const currentListeners = Array.isArray(current.listeners)
      ? current.listeners.map((each) => objectOf(each))
      : [];
    return {
      ...(address === undefined ? {} : { addresses: [{ type: 'IPAddress', value: address }] }),
      conditions: stampConditions(
        [...wanted.conditions, programmed],
        current.conditions,
        wanted.generation,
        now,
      ),
      listeners: wanted.listeners.map((listener) => ({
        name: listener.name,
        supportedKinds: listener.supportedKinds,
        attachedRoutes: listener.attachedRoutes,
        conditions: stampConditions(
          listener.conditions,
          currentListeners.find((each) => each.name === listener.name)?.conditions,
          wanted.generation,
          now,
        ),
      })),
    };
  };

  return {
    async report(report, objects) {
      const now = options.clock.now().toISOString();
      const secrets = new Map(objects.tlsSecrets.map((secret) => [keyOf(secret), secret]));
      for (const wanted of report.gatewayClassStatuses) {
        const object = objects.gatewayClasses.find(
          (each) => text(objectOf(each.metadata).name) === wanted.name,
        );
        if (object === undefined) continue;
        try {
          await patchStatus(object, {
            conditions: stampConditions(
              wanted.conditions,
              objectOf(object.status).conditions,
              wanted.generation,
              now,
            ),
          });
        } catch (error) {
          logger.warn('could not write the GatewayClass status', { name: wanted.name, error });
        }
      }
      for (const wanted of report.gatewayStatuses) {
        const key = `${wanted.namespace}/${wanted.name}`;
        const object = objects.gateways.find((each) => keyOf(each) === key);
        if (object === undefined) continue;
        const uid = text(objectOf(object.metadata).uid);
        const certificates = new Map<string, { certificate: string; key: string }>();
        for (const entry of report.gatewayCertificates) {
          if (entry.gateway !== key) continue;
          const secret = secrets.get(entry.secret);
          const certificate = dataOf(secret, 'tls.crt');
          const privateKey = dataOf(secret, 'tls.key');
          if (certificate !== '' && privateKey !== '')
            certificates.set(entry.listener, { certificate, key: privateKey });
        }
        const accepted = wanted.conditions.some(
          (each) => each.type === 'Accepted' && each.status === 'True',
        );
        try {
          if (accepted && uid !== '') {
            await applyGateway(
              { namespace: wanted.namespace, name: wanted.name, uid },
              report.gateways[key],
              certificates,
            );
          }
        } catch (error) {
          logger.warn('could not apply the gateway', { gateway: key, error });
        }
        try {
          await patchStatus(object, gatewayStatus(wanted, object, objects, now));
        } catch (error) {
          if (!isNotFound(error))
            logger.warn('could not write the Gateway status', { gateway: key, error });
        }
      }
    },
  };
}
