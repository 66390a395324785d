// The pod-template annotations that tune injection (config.nsm.nginx.com/*). Port lists are
// errors when malformed, because a wrong redirect silently breaks traffic; the other values are
// warnings and are ignored, as NGINX Service Mesh did.
import {
  CLIENT_MAX_BODY_SIZE_ANNOTATION,
  DEFAULT_EGRESS_ALLOWED_ANNOTATION,
  IGNORE_INCOMING_PORTS_ANNOTATION,
  IGNORE_OUTGOING_PORTS_ANNOTATION,
  MTLS_MODE_ANNOTATION,
} from '../constants';
import { CLIENT_MAX_BODY_SIZE_PATTERN, MTLS_MODES } from '../mesh-config/deploy-flags';
import { injectionError } from './errors';
import type { InjectionError, MtlsMode } from './types';

export interface PodAnnotations {
  /** Ports from the ignore-incoming-ports annotation; undefined when it is absent or blank. */
  readonly ignoreIncomingPorts: readonly number[] | undefined;
  readonly ignoreOutgoingPorts: readonly number[] | undefined;
  /** The mtls-mode annotation, lower-cased; undefined when absent or invalid. */
  readonly mtlsMode: MtlsMode | undefined;
  /** The client-max-body-size annotation; undefined when absent or invalid. */
  readonly clientMaxBodySize: string | undefined;
  readonly defaultEgressAllowed: boolean;
  readonly warnings: readonly string[];
}

const MAX_PORT = 65_535;

/**
 * Reads the injection annotations of a pod template. Throws an InjectionError for a malformed
 * port list; returns warnings (naming `objectName`) for other values it ignores.
 */
export function parsePodAnnotations(
  annotations: Readonly<Record<string, string>>,
  objectName: string,
): PodAnnotations {
  const warnings: string[] = [];
  const ignoring = (key: string, value: string, expected: string): void => {
    warnings.push(
      `ignoring annotation ${key}: "${value}" of "${objectName}": expected ${expected}`,
    );
  };
  return {
    ignoreIncomingPorts: parseAnnotatedPorts(
      annotations,
      IGNORE_INCOMING_PORTS_ANNOTATION,
      objectName,
    ),
    ignoreOutgoingPorts: parseAnnotatedPorts(
      annotations,
      IGNORE_OUTGOING_PORTS_ANNOTATION,
      objectName,
    ),
    mtlsMode: parseMtlsMode(annotations[MTLS_MODE_ANNOTATION], ignoring),
    clientMaxBodySize: parseBodySize(annotations[CLIENT_MAX_BODY_SIZE_ANNOTATION], ignoring),
    defaultEgressAllowed: parseEgress(annotations[DEFAULT_EGRESS_ALLOWED_ANNOTATION], ignoring),
    warnings,
  };
}

type Ignoring = (key: string, value: string, expected: string) => void;

function parseMtlsMode(value: string | undefined, ignoring: Ignoring): MtlsMode | undefined {
  if (value === undefined) return undefined;
  const mode = MTLS_MODES.find((candidate) => candidate === value.trim().toLowerCase());
  if (mode === undefined) ignoring(MTLS_MODE_ANNOTATION, value, 'off, permissive or strict');
  return mode;
}

function parseBodySize(value: string | undefined, ignoring: Ignoring): string | undefined {
  if (value === undefined) return undefined;
  if (CLIENT_MAX_BODY_SIZE_PATTERN.test(value)) return value;
  ignoring(CLIENT_MAX_BODY_SIZE_ANNOTATION, value, 'a size such as 0, 64k or 10m');
  return undefined;
}

function parseEgress(value: string | undefined, ignoring: Ignoring): boolean {
  if (value === undefined) return false;
  const normalized = value.trim().toLowerCase();
  if (normalized === 'true') return true;
  if (normalized !== 'false') ignoring(DEFAULT_EGRESS_ALLOWED_ANNOTATION, value, 'true or false');
  return false;
}

function parseAnnotatedPorts(
  annotations: Readonly<Record<string, string>>,
  key: string,
  objectName: string,
): readonly number[] | undefined {
  const value = annotations[key];
  if (value === undefined || value.trim() === '') return undefined;
  return parsePortList(value, `annotation ${key}`, objectName);
}

/**
 * Parses a comma-separated port list. Spaces around each value are allowed (NGINX Service Mesh
 * documented "port1, port2" but rejected it); an empty item is an error.
 */
export function parsePortList(text: string, source: string, objectName: string): number[] {
  return text.split(',').map((item) => {
    const trimmed = item.trim();
    const port = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!isValidPort(port)) throw invalidPort(trimmed, source, objectName);
    return port;
  });
}

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= MAX_PORT;
}

export function invalidPort(value: string, source: string, objectName: string): InjectionError {
  return injectionError(objectName, `invalid port "${value}" in ${source}: expected 1-65535`);
}
