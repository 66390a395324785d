// The HTTP health-probe rewrite. The kubelet probes from outside the pod, so under strict mTLS a
// plaintext probe to the app would be refused by the proxy. Each httpGet probe is pointed at a
// sidecar port the redirect leaves alone (8895 for HTTP, 8896 for HTTPS), under a path naming the
// container and the probe; the sidecar forwards it to the original target it finds in the table.
import {
  HEALTH_REDIRECTS_PATH_PREFIX,
  SIDECAR_HEALTH_HTTPS_PORT,
  SIDECAR_HEALTH_HTTP_PORT,
} from '../constants';
import { isValidPort } from './annotations';
import { injectionError } from './errors';
import type { JsonObject } from './json';
import { isObject, stringOf } from './json';
import { containerPorts, nameOf } from './validate-pod';

const PROBE_KINDS = ['liveness', 'readiness', 'startup'] as const;
type ProbeKind = (typeof PROBE_KINDS)[number];

export interface ProbeRewrite {
  readonly container: JsonObject;
  /** Original httpGet actions (port resolved, scheme and path defaulted) by rewritten path. */
  readonly redirects: Readonly<Record<string, JsonObject>>;
  readonly usesHttp: boolean;
  readonly usesHttps: boolean;
}

/**
 * Rewrites the httpGet liveness, readiness and startup probes of one container; other probe
 * kinds (tcpSocket, exec, grpc) are left as they are. Probes with an explicit `host` target
 * another machine, which the pod's redirect never sees, so they are left alone too. Throws when
 * a probe names a port the container does not declare.
 */
export function rewriteProbes(container: JsonObject, objectName: string): ProbeRewrite {
  let rewritten: Record<string, unknown> = { ...container };
  const redirects: Record<string, JsonObject> = {};
  let usesHttp = false;
  let usesHttps = false;
  for (const kind of PROBE_KINDS) {
    const field = `${kind}Probe`;
    const probe = container[field];
    if (!isObject(probe)) continue;
    const action = probe.httpGet;
    if (!isObject(action) || hasHost(action)) continue;
    const path = `${HEALTH_REDIRECTS_PATH_PREFIX}/${nameOf(container)}/${kind}`;
    const https = stringOf(action.scheme)?.toUpperCase() === 'HTTPS';
    redirects[path] = {
      ...action,
      path: stringOf(action.path) ?? '/',
      port: resolvePort(container, kind, action.port, objectName),
      scheme: stringOf(action.scheme) ?? 'HTTP',
    };
    const port = https ? SIDECAR_HEALTH_HTTPS_PORT : SIDECAR_HEALTH_HTTP_PORT;
    rewritten = { ...rewritten, [field]: { ...probe, httpGet: { ...action, path, port } } };
    usesHttps ||= https;
    usesHttp ||= !https;
  }
  return { container: rewritten, redirects, usesHttp, usesHttps };
}

function hasHost(action: JsonObject): boolean {
  const host = stringOf(action.host);
  return host !== undefined && host !== '';
}

/** A probe's port as a number: numbers as given, names looked up in the container's ports. */
function resolvePort(
  container: JsonObject,
  kind: ProbeKind,
  port: unknown,
  objectName: string,
): number {
  const where = `the ${kind} probe of container "${nameOf(container)}"`;
  if (typeof port === 'string' && !/^\d+$/.test(port)) {
    const named = containerPorts(container).find((entry) => entry.name === port);
    const number = named?.containerPort;
    if (typeof number !== 'number') {
      throw injectionError(
        objectName,
        `unknown port "${port}" in ${where}: the container declares no port of that name`,
      );
    }
    return number;
  }
  const number = typeof port === 'string' || typeof port === 'number' ? Number(port) : Number.NaN;
  if (!isValidPort(number)) {
    throw injectionError(
      objectName,
      `invalid port "${String(port)}" in ${where}: expected 1-65535`,
    );
  }
  return number;
}
