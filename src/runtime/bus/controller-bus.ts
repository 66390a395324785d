// The controller's side of the configuration bus. Each new snapshot goes out on the config subject
// as a delta from the previous generation, so a change costs every agent the bytes of what
// changed; an agent that holds another generation (new, reconnected, or one that missed a delta)
// asks with a subscribe request and gets the whole snapshot, gzip-compressed. Acks tell the
// controller which generation each sidecar runs and why one failed.
//
// Generations are numbers that only grow, also across controller restarts and leadership
// changes: the next one is max(previous + 1, now() in milliseconds, 1 + the highest generation an
// agent reported), so a new controller starts above anything an agent holds as long as clocks do
// not go back, and still does when they do, once an agent has told it what it holds.
//
// Agents are tenants' processes and are not trusted. NATS tells who sent a message by the subject
// it arrived on (each identity may publish only on its own, see nats-config.ts); a message counts
// only when its pod is in the sender's namespace and the controller knows that pod as injected
// and running as the sender's ServiceAccount. A reported generation no controller can have issued
// is ignored (beyond MAX_GENERATION_AHEAD_MS past the highest of this controller's clock, its
// current generation and the one recorded in the leader Lease), an ack above the current
// generation too; a reply goes only to the sender's own inbox; strings are cut to a bound. So the
// table of agents holds at most one entry per injected pod, and no agent can move the generation
// out of reach (2^53, where it could no longer grow) or speak for another tenant's pods.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { headers } from 'nats';
import { NATS_CONFIG_SUBJECT, NATS_PING_SUBJECT } from '../../manifests/constants';
import type { BusIdentity } from '../../manifests/install/nats-config';
import {
  agentInboxPrefix,
  NATS_AGENT_SUBSCRIPTIONS,
  senderOfSubject,
} from '../../manifests/install/nats-config';
import { diffSnapshots, isEmptyDelta } from '../../manifests/snapshot/delta';
import type {
  AckMessage,
  DeltaMessage,
  FullMessage,
  PingMessage,
  SubscribeMessage,
} from '../../manifests/snapshot/messages';
import { parseUpMessage } from '../../manifests/snapshot/messages';
import type { MeshSnapshot } from '../../manifests/snapshot/types';
import type { Logger } from '../role/log';

const compress = promisify(gzip);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Header of a full snapshot reply: the body is gzip-compressed JSON. */
export const CONTENT_ENCODING_HEADER = 'Content-Encoding';
export const GZIP = 'gzip';

/** What the controller knows of one sidecar's agent. */
export interface AgentState {
  /** "<namespace>/<pod name>". */
  readonly pod: string;
  readonly version: string;
  /** The generation the agent last reported: applied, or failed when error is set. */
  readonly generation: number | undefined;
  /** Why the agent could not apply that generation. */
  readonly error?: string;
  /** When the controller last heard from the agent, by the now() it was given. */
  readonly lastSeenMs: number;
}

export interface ControllerBus {
  /** Sends what changed since the last snapshot; returns its generation (unchanged if nothing). */
  publish(snapshot: MeshSnapshot): number;
  /** The current generation; 0 before the first snapshot. */
  generation(): number;
  /** Every agent heard from, sorted by pod. */
  agents(): readonly AgentState[];
  /** Agents not on the current generation, or whose last apply failed. */
  behind(): readonly AgentState[];
  /**
   * Forgets every agent whose pod is not in pods ("<namespace>/<name>"): a deleted pod never
   * acknowledges again and would otherwise stay behind for good.
   */
  retain(pods: ReadonlySet<string>): void;
  /** Stops answering and listening; the connection stays open (its owner closes it). */
  close(): Promise<void>;
}

export interface ControllerBusOptions {
  readonly logger: Logger;
  /** Milliseconds since the epoch; generations are never below it. */
  readonly now: () => number;
  /** The controller's version, for its logs. */
  readonly version: string;
  /** The least generation to use, e.g. one remembered from a previous controller. */
  readonly firstGeneration?: number;
  /** The highest generation recorded as issued by any controller (the leader Lease's); 0 if none. */
  readonly recordedGeneration?: () => number;
  /**
   * The ServiceAccount ("<namespace>/<name>") of an injected, running pod ("<namespace>/<name>"),
   * or undefined when the controller knows no such pod.
   */
  readonly accountOf: (pod: string) => string | undefined;
}

/**
 * How far a reported generation may lie beyond what this controller knows was issued: the
 * highest of its clock (controllers issue milliseconds since the epoch), its own generation and
 * the leader Lease's record (written at every renewal, so a previous leader issued at most a few
 * seconds past it; more for a clock that ran ahead). Beyond it, a generation is a lie; believed,
 * an agent could push the mesh to 2^53, where x + 1 === x and no generation could follow.
 */
export const MAX_GENERATION_AHEAD_MS = 10 * 60_000;
/** Bounds of the strings an agent sends that the controller keeps. */
const MAX_VERSION_LENGTH = 64;
const MAX_ERROR_LENGTH = 1024;
/** At most one warning per reason in this window: refused messages can come by the thousand. */
const REFUSAL_LOG_WINDOW_MS = 10_000;

interface Current {
  readonly snapshot: MeshSnapshot;
  readonly generation: number;
  /** The gzip-compressed full reply, built once per generation on the first request. */
  full?: Promise<Uint8Array>;
}

/** Starts listening for subscribe requests and acks, then pings every agent to subscribe. */
export async function startControllerBus(
  nc: NatsConnection,
  options: ControllerBusOptions,
): Promise<ControllerBus> {
  const logger = options.logger.with({ component: 'controller-bus' });
  const agents = new Map<string, AgentState>();
  let current: Current | undefined;
  let previousGeneration = (options.firstGeneration ?? 1) - 1;
  let reported = 0;

  const nextGeneration = (): number => {
    previousGeneration = Math.max(previousGeneration + 1, options.now(), reported + 1);
    return previousGeneration;
  };

  const send = (subject: string, message: DeltaMessage | PingMessage): number => {
    const data = encoder.encode(JSON.stringify(message));
    nc.publish(subject, data);
    return data.length;
  };

  const ping = (): void => {
    send(NATS_PING_SUBJECT, { kind: 'ping', generation: current?.generation ?? 0 });
  };

  const publish = (snapshot: MeshSnapshot): number => {
    if (current === undefined) {
      // No agent can hold a base of this controller's yet: all of them ask for the whole thing.
      current = { snapshot, generation: nextGeneration() };
      logger.info('first snapshot', { generation: current.generation });
      ping();
      return current.generation;
    }
    const delta = diffSnapshots(current.snapshot, snapshot, current.generation, 0);
    if (isEmptyDelta(delta)) return current.generation;
    const generation = nextGeneration();
    const bytes = send(NATS_CONFIG_SUBJECT, { kind: 'delta', ...delta, generation });
    logger.debug('published a delta', { generation, base: delta.base, bytes });
    current = { snapshot, generation };
    return generation;
  };

  /** Moves past a generation an agent holds (a controller whose clock went back). */
  const overtake = (held: number): void => {
    reported = Math.max(reported, held);
    if (current === undefined || held <= current.generation) return;
    const base = current.generation;
    const generation = nextGeneration();
    logger.warn('an agent holds a later generation: moving past it', { held, generation });
    send(NATS_CONFIG_SUBJECT, { kind: 'delta', generation, base, upserts: {}, deletes: {} });
    current = { snapshot: current.snapshot, generation };
  };

  const fullReply = (state: Current): Promise<Uint8Array> => {
    const message: FullMessage = {
      kind: 'full',
      generation: state.generation,
      snapshot: state.snapshot,
    };
    state.full ??= compress(JSON.stringify(message));
    return state.full;
  };

  const answer = async (msg: Msg, request: SubscribeMessage): Promise<void> => {
    const state = current;
    if (state === undefined) {
      // Nothing to send yet: a ping says so at once (rather than letting the request time out),
      // and the first publish pings every agent to ask again.
      const notYet: PingMessage = { kind: 'ping', generation: 0 };
      msg.respond(encoder.encode(JSON.stringify(notYet)));
      return;
    }
    if (request.generation === state.generation) {
      // The agent is current (typically after a NATS restart): a ping of that generation says
      // so in a few bytes instead of the whole snapshot.
      const upToDate: PingMessage = { kind: 'ping', generation: state.generation };
      msg.respond(encoder.encode(JSON.stringify(upToDate)));
      return;
    }
    const body = await fullReply(state);
    const replyHeaders = headers();
    replyHeaders.set(CONTENT_ENCODING_HEADER, GZIP);
    msg.respond(body, { headers: replyHeaders });
  };

  const record = (message: SubscribeMessage | AckMessage): void => {
    const known = agents.get(message.pod);
    const version =
      message.kind === 'subscribe'
        ? message.version.slice(0, MAX_VERSION_LENGTH)
        : (known?.version ?? '');
    const generation = message.generation;
    const error = errorAfter(message, known)?.slice(0, MAX_ERROR_LENGTH);
    agents.set(message.pod, {
      pod: message.pod,
      version,
      generation,
      ...(error === undefined ? {} : { error }),
      lastSeenMs: options.now(),
    });
    if (message.kind === 'ack' && message.error !== undefined) {
      logger.warn('an agent could not apply a generation', {
        pod: message.pod,
        generation: message.generation,
        error,
      });
    }
  };

  // Refusals are counted, and logged once per reason and window: the reasons are fixed texts, so
  // the map stays as small as this list.
  const lastLogged = new Map<string, number>();
  let refused = 0;
  const refuse = (reason: string, fields: Readonly<Record<string, unknown>>): void => {
    refused += 1;
    const nowMs = options.now();
    const last = lastLogged.get(reason);
    if (last !== undefined && nowMs - last < REFUSAL_LOG_WINDOW_MS) return;
    lastLogged.set(reason, nowMs);
    logger.warn(`ignored an agent's message: ${reason}`, { ...fields, refusedSoFar: refused });
  };

  /** Whether the sender may speak for pod: yes, not known (yet), or why not. */
  const senderFor = (pod: string, sender: BusIdentity): SenderVerdict => {
    if (!pod.startsWith(`${sender.namespace}/`)) return { refused: 'a pod of another namespace' };
    const account = options.accountOf(pod);
    if (account === undefined) return 'unknown';
    return account === `${sender.namespace}/${sender.serviceAccount}`
      ? 'known'
      : { refused: 'a pod of another service account' };
  };

  const onAck = (message: AckMessage, sender: BusIdentity): void => {
    const verdict = senderFor(message.pod, sender);
    if (verdict === 'unknown') {
      refuse('an ack for a pod that is not injected', { sender, pod: message.pod.slice(0, 300) });
    } else if (verdict !== 'known') {
      refuse(verdict.refused, { sender, pod: message.pod.slice(0, 300) });
    } else if (message.generation > (current?.generation ?? 0)) {
      refuse('an ack of a generation not issued', { sender, generation: message.generation });
    } else {
      record(message);
    }
  };

  const onSubscribe = (msg: Msg, message: SubscribeMessage, sender: BusIdentity): void => {
    const verdict = senderFor(message.pod, sender);
    if (typeof verdict === 'object') {
      refuse(verdict.refused, { sender, pod: message.pod.slice(0, 300) });
      return;
    }
    if (msg.reply === undefined || !msg.reply.startsWith(`${agentInboxPrefix(sender)}.`)) {
      refuse("a reply subject outside the sender's inbox", {
        sender,
        reply: msg.reply?.slice(0, 300),
      });
      return;
    }
    const held = message.generation;
    const issued = Math.max(
      current?.generation ?? 0,
      options.recordedGeneration?.() ?? 0,
      options.now(),
    );
    if (held !== undefined && held > issued + MAX_GENERATION_AHEAD_MS) {
      refuse('a generation beyond any issued', { sender, generation: held });
      return;
    }
    // A pod the controller does not know yet (its watch lags the pod's start) gets its answer,
    // which every agent can read on the config subject anyway, but is neither kept nor believed.
    if (verdict === 'known') {
      record(message);
      if (held !== undefined) overtake(held);
    }
    answer(msg, message).catch((error: unknown) =>
      logger.error('could not answer a subscribe request', { pod: message.pod, error }),
    );
  };

  const onMessage = (msg: Msg): void => {
    const sender = senderOfSubject(msg.subject);
    if (sender === undefined) {
      refuse('not on an agent subject', { subject: msg.subject.slice(0, 300) });
      return;
    }
    const parsed = parseUpMessage(decoder.decode(msg.data));
    if ('refused' in parsed) {
      refuse('malformed', { sender, reason: parsed.refused.slice(0, 300) });
      return;
    }
    const message = parsed.message;
    if (message.kind === 'ack') onAck(message, sender);
    else onSubscribe(msg, message, sender);
  };

  const subscription: Subscription = nc.subscribe(NATS_AGENT_SUBSCRIPTIONS, {
    callback: (error, msg) => {
      if (error !== null) logger.warn('subscription error', { error });
      else onMessage(msg);
    },
  });
  // The subscription must be in place before agents are told to subscribe.
  await nc.flush();
  ping();
  logger.info('controller bus started', { version: options.version });

  const agentList = (): AgentState[] =>
    [...agents.values()].sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));

  return {
    publish,
    generation: () => current?.generation ?? 0,
    agents: agentList,
    behind: () =>
      agentList().filter(
        (agent) =>
          agent.error !== undefined ||
          agent.generation === undefined ||
          agent.generation < (current?.generation ?? 0),
      ),
    retain: (pods) => {
      for (const pod of [...agents.keys()]) if (!pods.has(pod)) agents.delete(pod);
    },
    close: async () => {
      subscription.unsubscribe();
      if (!nc.isClosed()) await nc.flush().catch(() => undefined);
    },
  };
}

/** Whether a sender may speak for a pod: it may, the pod is not known (yet), or why not. */
type SenderVerdict = 'known' | 'unknown' | { readonly refused: string };

/** An ack says whether its generation failed; a subscribe keeps the failure of the one it holds. */
function errorAfter(
  message: SubscribeMessage | AckMessage,
  known: AgentState | undefined,
): string | undefined {
  if (message.kind === 'ack') return message.error;
  return known?.generation === message.generation ? known?.error : undefined;
}
