// The messages of the configuration bus, as JSON on NATS. Down, on the config subject: deltas
// between generations. Up, on the subscription subject: an agent's subscribe request (answered
// with the full snapshot) and its acknowledgement of each generation it applied or failed. Down,
// on the ping subject: a new controller asking every agent to subscribe again.
//
// Every message received is parsed here before use: one of the wrong shape is refused with a
// one-line reason naming the field, for the receiver to log and ignore.
import { isObject } from '../inject/json';
import type { SnapshotDelta } from './delta';
import type { MeshSnapshot, SnapshotCollection, SnapshotMesh } from './types';
import { SNAPSHOT_COLLECTIONS } from './types';

/** Controller → agents, config subject: the change from generation base to generation. */
export interface DeltaMessage extends SnapshotDelta {
  readonly kind: 'delta';
}

/** Agent → controller, a request on the subscription subject; the reply is a FullMessage. */
export interface SubscribeMessage {
  readonly kind: 'subscribe';
  /** "<namespace>/<pod name>" of the agent's pod. */
  readonly pod: string;
  /** The agent's version, for the controller's view of the sidecars. */
  readonly version: string;
  /** The generation the agent holds, when it holds one. */
  readonly generation?: number;
}

/**
 * Controller → agent, the reply to a subscribe request: the whole current snapshot, as
 * gzip-compressed JSON with the NATS header Content-Encoding: gzip. A controller that has no
 * snapshot yet replies with a PingMessage of generation 0 instead, and pings when it has one;
 * to an agent that already holds the current generation it replies with a PingMessage of it.
 */
export interface FullMessage {
  readonly kind: 'full';
  readonly generation: number;
  readonly snapshot: MeshSnapshot;
}

/** Agent → controller, subscription subject: a generation applied, or failed with error. */
export interface AckMessage {
  readonly kind: 'ack';
  readonly pod: string;
  readonly generation: number;
  /** Why the generation could not be applied; absent when it was. */
  readonly error?: string;
}

/** Controller → agents, ping subject: subscribe again (a controller started or took over). */
export interface PingMessage {
  readonly kind: 'ping';
  /** The controller's current generation; 0 before its first snapshot. */
  readonly generation: number;
}

/** What agents send up on the subscription subject. */
export type UpMessage = SubscribeMessage | AckMessage;
/** What agents receive on the config and ping subjects and as replies. */
export type DownMessage = DeltaMessage | FullMessage | PingMessage;

/** A parsed message, or why the text is not one. */
export type Parsed<T> = { readonly message: T } | { readonly refused: string };

/** Parses a message sent by an agent on the subscription subject. */
export function parseUpMessage(text: string): Parsed<UpMessage> {
  return parseWith(text, (value) => {
    const pod = requireString(value, 'pod');
    if (value.kind === 'subscribe') {
      const generation = optionalGeneration(value, 'generation');
      return {
        kind: 'subscribe',
        pod,
        version: requireString(value, 'version'),
        ...(generation === undefined ? {} : { generation }),
      };
    }
    if (value.kind === 'ack') {
      const error = value.error;
      if (error !== undefined && typeof error !== 'string') {
        throw new Refusal(`field "error" is ${typeof error}: expected a string`);
      }
      return {
        kind: 'ack',
        pod,
        generation: requireGeneration(value, 'generation'),
        ...(error === undefined ? {} : { error }),
      };
    }
    throw new Refusal(`kind ${JSON.stringify(value.kind)}: expected "subscribe" or "ack"`);
  });
}

/** Parses a message an agent receives: a delta, a full snapshot or a ping. */
export function parseDownMessage(text: string): Parsed<DownMessage> {
  return parseWith(text, (value) => {
    const generation = requireGeneration(value, 'generation');
    switch (value.kind) {
      case 'ping':
        return { kind: 'ping', generation };
      case 'full':
        return { kind: 'full', generation, snapshot: snapshotOf(value.snapshot) };
      case 'delta':
        return deltaOf(value, generation);
      default:
        throw new Refusal(`kind ${JSON.stringify(value.kind)}: expected "delta", "full" or "ping"`);
    }
  });
}

class Refusal extends Error {}

function parseWith<T>(
  text: string,
  read: (value: Readonly<Record<string, unknown>>) => T,
): Parsed<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { refused: `not JSON: ${text.slice(0, 60)}` };
  }
  if (!isObject(value)) return { refused: 'not a JSON object' };
  try {
    return { message: read(value) };
  } catch (error) {
    if (error instanceof Refusal) return { refused: error.message };
    throw error;
  }
}

function requireString(value: Readonly<Record<string, unknown>>, field: string): string {
  const found = value[field];
  if (typeof found !== 'string' || found === '') {
    throw new Refusal(`field "${field}" is ${JSON.stringify(found)}: expected a non-empty string`);
  }
  return found;
}

function requireGeneration(value: Readonly<Record<string, unknown>>, field: string): number {
  const found = value[field];
  if (typeof found !== 'number' || !Number.isSafeInteger(found) || found < 0) {
    throw new Refusal(`field "${field}" is ${JSON.stringify(found)}: expected an integer >= 0`);
  }
  return found;
}

function optionalGeneration(
  value: Readonly<Record<string, unknown>>,
  field: string,
): number | undefined {
  return value[field] === undefined ? undefined : requireGeneration(value, field);
}

/** Entries of a collection: a record of objects. */
function entriesOf(value: unknown, where: string): Record<string, unknown> {
  if (!isObject(value)) throw new Refusal(`${where} is not an object`);
  for (const [key, entry] of Object.entries(value)) {
    if (!isObject(entry)) throw new Refusal(`${where}["${key}"] is not an object`);
  }
  return { ...value };
}

/** Collections a controller of an earlier version does not send; absent reads as empty. */
const LATER_COLLECTIONS: ReadonlySet<SnapshotCollection> = new Set([
  'httpRoutes',
  'grpcRoutes',
  'gateways',
  'gatewayRoutes',
  'peers',
]);

/** The structure of a snapshot: an object "mesh" and every collection a record of objects. */
function snapshotOf(value: unknown): MeshSnapshot {
  if (!isObject(value)) throw new Refusal('field "snapshot" is not an object');
  if (!isObject(value.mesh)) throw new Refusal('field "snapshot.mesh" is not an object');
  const snapshot: Record<string, unknown> = { ...value };
  for (const collection of SNAPSHOT_COLLECTIONS) {
    if (snapshot[collection] === undefined && LATER_COLLECTIONS.has(collection)) {
      snapshot[collection] = {};
    }
    entriesOf(snapshot[collection], `field "snapshot.${collection}"`);
  }
  return snapshot as unknown as MeshSnapshot;
}

function deltaOf(value: Readonly<Record<string, unknown>>, generation: number): DeltaMessage {
  const base = requireGeneration(value, 'base');
  if (base >= generation) {
    throw new Refusal(`field "base" is ${base}: expected less than generation ${generation}`);
  }
  const mesh = value.mesh;
  if (mesh !== undefined && !isObject(mesh)) throw new Refusal('field "mesh" is not an object');
  const upserts = collectionsOf(value.upserts, 'upserts', entriesOf);
  const deletes = collectionsOf(value.deletes, 'deletes', keysOf);
  return {
    kind: 'delta',
    generation,
    base,
    ...(mesh === undefined ? {} : { mesh: mesh as unknown as SnapshotMesh }),
    upserts,
    deletes,
  };
}

/** A record by collection name (absent: empty), each value read by read. */
function collectionsOf<T>(
  value: unknown,
  field: string,
  read: (entry: unknown, where: string) => T,
): Partial<Record<SnapshotCollection, T>> {
  if (value === undefined) return {};
  if (!isObject(value)) throw new Refusal(`field "${field}" is not an object`);
  const result: Partial<Record<SnapshotCollection, T>> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (!isCollection(key)) {
      throw new Refusal(`collection "${key}": expected one of ${SNAPSHOT_COLLECTIONS.join(', ')}`);
    }
    result[key] = read(entry, `field "${field}.${key}"`);
  }
  return result;
}

function isCollection(key: string): key is SnapshotCollection {
  return (SNAPSHOT_COLLECTIONS as readonly string[]).includes(key);
}

function keysOf(value: unknown, where: string): readonly string[] {
  if (!Array.isArray(value) || !value.every((key) => typeof key === 'string')) {
    throw new Refusal(`${where} is not a list of strings`);
  }
  return value;
}
